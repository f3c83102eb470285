"""The Connection screen never shows a password typed or pasted into the URL field, and still uses it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from textual import events
from textual.widgets import Input

from move_helpers import execute
from tui_support import make_app, press, screen_text, screenshot_text, settle
from wizard import commands
from wizard.errors import WizardError


def _role_owning_a_database(pg_server: str, password: str) -> Iterator[tuple[str, str, str]]:
    """(URL with the password, role, password): a role with `password`, owning a database of its own."""
    role = f"wizard_tui_{uuid.uuid4().hex[:8]}"
    database = f"{role}_db"
    execute(pg_server, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'",
                       f'CREATE DATABASE "{database}" OWNER "{role}"')
    url = make_url(pg_server).set(drivername="postgresql", username=role, password=password, database=database)
    try:
        yield url.render_as_string(hide_password=False), role, password
    finally:
        execute(pg_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                           f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def owned_db(pg_server: str) -> Iterator[tuple[str, str, str]]:
    yield from _role_owning_a_database(pg_server, f"Zx{uuid.uuid4().hex[:12]}")


@pytest.fixture
def at_in_password(pg_server: str) -> Iterator[tuple[str, str, str]]:
    """As owned_db, its password holding an @, and the URL as an operator pastes it: that @ unescaped."""
    for url, role, password in _role_owning_a_database(pg_server, f"Ab@{uuid.uuid4().hex[:12]}"):
        yield url.replace("%40", "@"), role, password


def assert_hidden(app, password: str) -> None:
    """Neither the screen nor a screenshot of it holds the password, or any 4 characters of its start."""
    for shown in (screen_text(app), screenshot_text(app)):
        for n in range(4, len(password) + 1):
            assert password[:n] not in shown, shown


async def _on_connection_screen(pilot, app) -> None:
    await settle(pilot)
    await press(pilot, "enter")  # Move to PostgreSQL
    assert "step 1 of 7" in screen_text(app), screen_text(app)


@pytest.mark.slow  # over 12 s: run by `pytest -m slow`
async def test_a_url_typed_key_by_key_never_shows_its_password(tmp_path: Path, engine_db: Path,
                                                             owned_db: tuple[str, str, str]) -> None:
    url, role, password = owned_db
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        url_field = app.screen.query_one("#url", Input)
        password_field = app.screen.query_one("#password", Input)
        assert url_field.has_focus
        after_at = False
        for key in url:
            await press(pilot, key)
            assert_hidden(app, password)
            after_at = after_at or key == "@"
            if after_at:  # the password is out of the URL field and in the masked one
                assert password not in url_field.value and ":" not in url_field.value.split("//", 1)[1].split("@")[0]
                assert password_field.value == password
        assert url_field.value == url.replace(f":{password}@", "@")
        assert "•" * len(password) in screen_text(app)  # the Password field, masked

        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        assert "Ready." in shown, shown
        assert_hidden(app, password)
        await press(pilot, "ctrl+n")  # to the pre-flight checks, which connect with it too
        assert "step 2 of 7" in screen_text(app), screen_text(app)
        assert_hidden(app, password)

    target = app.session.target
    assert target is not None
    assert (target.url.username, target.url.password) == (role, password)
    assert target.sync_str() == url
    # The service connects with what the session holds.
    conn = await asyncpg.connect(**target.pg_connect_kwargs())
    try:
        assert await conn.fetchval("SELECT current_user") == role
    finally:
        await conn.close()


@pytest.fixture(params=["owned_db", "at_in_password"])
def pasted_role(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    return request.getfixturevalue(request.param)


async def test_a_pasted_url_never_shows_its_password(tmp_path: Path, engine_db: Path,
                                                     pasted_role: tuple[str, str, str]) -> None:
    """at_in_password: `postgresql://role:Ab@cd...@host/db`, the @ unescaped. The field took the password up to
    its first @, so the rest of it stayed in the URL field and went into the user name and the server's error."""
    url, role, password = pasted_role
    tail = password.split("@")[-1]  # the whole password when it holds no @
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        url_field = app.screen.query_one("#url", Input)
        url_field.post_message(events.Paste(url))
        await settle(pilot)
        assert_hidden(app, password)
        assert_hidden(app, tail)
        assert password not in url_field.value and tail not in url_field.value
        assert app.screen.query_one("#password", Input).value == password
        assert app.screen.query_one("#user", Input).value == role
        await press(pilot, "ctrl+t")
        assert "Ready." in screen_text(app), screen_text(app)  # the server took the whole password
        assert_hidden(app, password)
        assert_hidden(app, tail)
        await press(pilot, "ctrl+n")
    assert app.session.target.url.password == password
    assert app.session.target.url.username == role


def test_the_url_field_hides_the_client_keys_password_too() -> None:
    from screens.widgets import hide_password

    shown = hide_password("postgresql://app:pw@db/engine?sslcert=c.crt&sslpassword=key-S3cret&sslmode=verify-full")
    assert shown == "postgresql://app:••@db/engine?sslcert=c.crt&sslpassword=••••••••••&sslmode=verify-full"


async def _type_into(pilot, app, field_id: str, text: str) -> None:
    """Clear a field and type `text` into it, key by key, as an operator does."""
    field = app.screen.query_one(f"#{field_id}", Input)
    field.focus()
    await settle(pilot)
    field.value = ""
    await settle(pilot)
    for key in text:
        await press(pilot, {"/": "slash", ".": "full_stop", "_": "underscore", "-": "minus"}.get(key, key))


async def test_ca_file_and_schema_follow_the_url_both_ways(tmp_path: Path, engine_db: Path) -> None:
    given = ("postgresql://app@db.example:5432/engine?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt"
             "&sslcert=/etc/ssl/app.crt&options=-csearch_path%3Dapp")
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=given)
    async with app.run_test(size=(80, 24)) as pilot:
        await _on_connection_screen(pilot, app)
        value = lambda name: app.screen.query_one(f"#{name}", Input).value  # noqa: E731
        assert (value("sslrootcert"), value("schema")) == ("/etc/ssl/ca.crt", "app")  # the URL -> the fields
        shown = screen_text(app)
        assert "CA file  /etc/ssl/ca.crt" in shown and "Schema      app" in shown, shown

        await _type_into(pilot, app, "schema", "tenant_1")  # the fields -> the URL, the rest of it kept
        await _type_into(pilot, app, "sslrootcert", "/srv/ca.pem")
        url = commands.parse_url(value("url"), "target")
        assert commands.schema_of(url) == "tenant_1"
        assert url.tls() == {"sslmode": "verify-full", "sslrootcert": "/srv/ca.pem", "sslcert": "/etc/ssl/app.crt"}
        assert (url.url.host, url.database, url.url.username) == ("db.example", "engine", "app")

        await _type_into(pilot, app, "schema", "")  # emptied: the role's own search_path
        assert "options" not in value("url") and "sslrootcert=/srv/ca.pem" in value("url")

        url_field = app.screen.query_one("#url", Input)
        url_field.focus()
        await settle(pilot)
        url_field.value = ""  # a URL pasted over it: the fields follow it again
        url_field.post_message(events.Paste("postgresql://app@db/engine?options=-csearch_path%3Dother"))
        await settle(pilot)
        assert (value("schema"), value("sslrootcert")) == ("other", "")

        url_field.value = ""
        url_field.post_message(events.Paste("mysql://root@127.0.0.1:3306/engine"))
        await settle(pilot)
        assert all(app.screen.query_one(f"#{f}").disabled for f in ("sslmode", "sslrootcert", "schema"))
        assert value("host") == "127.0.0.1" and value("port") == "3306"
        await _type_into(pilot, app, "database", "other")  # a field edited keeps the URL's kind
        assert value("url") == "mysql://root@127.0.0.1:3306/other"
        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        # Tested as a MySQL target now (the screens move onto it too): the server says the database is not there.
        assert _squeezed("database 'other' does not exist") in _squeezed(shown), shown
        assert app.screen.can_go_next() is False


def _squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("field, typed, base", [
    ("sslrootcert", "/nonexistent/ca.crt", "sslmode=verify-full"),  # a CA file that is not there
    ("schema", "nosuch", ""),  # a schema that is not there
    ("url", None, "sslmode=require"),  # TLS required of a server that has it off
])
async def test_the_test_says_a_tls_or_schema_error_in_the_clis_one_line(
        tmp_path: Path, engine_db: Path, pg_url: str, field: str, typed: str | None, base: str) -> None:
    given = f"{pg_url}?{base}" if base else pg_url
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=given)
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        if typed is not None:
            await _type_into(pilot, app, field, typed)
        target = commands.parse_url(app.screen.query_one("#url", Input).value, "target")
        with pytest.raises(WizardError) as said:  # what `wizard plan`/`migrate` print, the same call
            await commands.check_target(target)
        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        assert _squeezed(said.value.message) in _squeezed(shown), shown
        assert "Traceback" not in shown and app.screen.can_go_next() is False


@pytest.fixture
def latin1_url(mysql_server: str) -> Iterator[str]:
    from mysql_server import fresh_database

    yield from fresh_database(mysql_server, "latin1")


@pytest.mark.parametrize("case", ["latin1", "wrong password"])
async def test_a_mysql_target_that_cannot_be_moved_to_says_why_in_one_line(tmp_path: Path, engine_db: Path,
                                                                            latin1_url: str, case: str) -> None:
    """Test on a MySQL target says what the command line says (its character set, a refused password), and Ctrl+N
    stays greyed: nothing written."""
    given = latin1_url if case == "latin1" else make_url(latin1_url).set(password="wrong-password").render_as_string(
        hide_password=False)
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=given)
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        if case == "latin1":
            info = await commands.check_target(commands.parse_url(latin1_url))
            assert "character set latin1" in info.problem and _squeezed(info.problem) in _squeezed(shown), shown
        else:
            assert _squeezed("the password was refused: check the user and password in the URL") in _squeezed(shown)
            assert "wrong-pa" not in shown
        assert app.screen.can_go_next() is False
        await press(pilot, "ctrl+n")
        assert "step 1 of 7" in screen_text(app)
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("journal.jsonl"))


@pytest.mark.parametrize("field", ["url", "port", "port-minus", "database"])
async def test_a_field_that_makes_no_url_is_said_in_the_clis_one_line(tmp_path: Path, engine_db: Path, pg_url: str,
                                                                     field: str) -> None:
    """A port of 99999 pasted in the URL or typed in the Port field, a lone '-' there (the integer field takes it),
    or the Database field emptied: Test says the line `wizard migrate` prints, with no crash, and connects to
    nothing (not to the URL the fields said before); Ctrl+N stays greyed."""
    database = make_url(pg_url).database
    says = {"database": "the target URL names no database: add /dbname to postgresql://postgres@127.0.0.1:5432",
            "port-minus": f"cannot read the target URL '...127.0.0.1:-/{database}': use sqlite:///path/to/file.db, "
                          f"postgresql://user@host:5432/db or mysql://user@host:3306/db"}.get(
        field, "the target URL's port 99999 is not a port: use one from 1 to 65535, or leave it out for the default")
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        if field == "port":
            await _type_into(pilot, app, "port", "99999")
        elif field == "port-minus":
            await _type_into(pilot, app, "port", "-")
        elif field == "database":
            await _type_into(pilot, app, "database", "")
        else:
            url_field = app.screen.query_one("#url", Input)
            url_field.value = ""
            url_field.post_message(events.Paste(make_url(pg_url).set(port=99999).render_as_string(False)))
            await settle(pilot)
        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        assert _squeezed(says) in _squeezed(shown), shown
        assert "Traceback" not in shown and app.screen.can_go_next() is False
    assert not (tmp_path / "state").exists()


async def test_a_lone_minus_in_the_port_with_no_url_is_said_not_a_crash(tmp_path: Path, engine_db: Path) -> None:
    """The fields alone (no URL), a Port of '-', Enter in the Password field: the URL's one line, no crash (int('-')
    raised in the screen)."""
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        app.screen.query_one("#port", Input).focus()
        await press(pilot, "minus")
        app.screen.query_one("#password", Input).focus()
        await press(pilot, "s", "enter")
        shown = screen_text(app)
        says = "cannot read the target URL '...127.0.0.1:-': use sqlite:///path/to/file.db, " \
               "postgresql://user@host:5432/db or mysql://user@host:3306/db"
        assert _squeezed(says) in _squeezed(shown), shown
        assert app.screen.can_go_next() is False


async def test_the_port_and_schema_placeholders_follow_the_targets_kind(tmp_path: Path, engine_db: Path) -> None:
    """With a MySQL URL the empty Schema field read 'public (PostgreSQL: ...)' and the Port '5432': now what an empty
    field means on MySQL (a schema is its database, as `--schema` refuses it there), and back on a PostgreSQL URL."""
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}",
                   target_text="mysql://root@127.0.0.1/engine")
    async with app.run_test(size=(80, 24)) as pilot:
        await _on_connection_screen(pilot, app)
        shown = screen_text(app)
        assert "Schema      none on MySQL: its schema is the Database above" in shown, shown
        assert "PostgreSQL" not in shown.split("Schema", 1)[1] and "Port        3306" in shown, shown
        assert app.screen.query_one("#schema", Input).disabled

        url_field = app.screen.query_one("#url", Input)
        url_field.focus()
        await settle(pilot)
        url_field.value = ""
        url_field.post_message(events.Paste("postgresql://app@db/engine"))
        await settle(pilot)
        shown = screen_text(app)
        assert "Schema      public (PostgreSQL: a schema of the target's own)" in shown, shown
        assert "Port        5432" in shown and not app.screen.query_one("#schema", Input).disabled, shown


async def test_the_header_names_the_target_ctrl_t_checked(tmp_path: Path, engine_db: Path, mysql_url: str,
                                                          pg_url: str) -> None:
    """README (The TUI): once Ctrl+T has checked a MySQL/MariaDB URL the header says "Move to MySQL/MariaDB"; it kept
    "Move to PostgreSQL or MySQL" until Ctrl+N. It follows each target checked, and nothing is written to either."""
    from engine_data import read

    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=mysql_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _on_connection_screen(pilot, app)
        assert "Move to PostgreSQL or MySQL — step 1 of 7" in screen_text(app), screen_text(app)
        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        assert "Ready." in shown and "Move to MySQL/MariaDB — step 1 of 7" in shown, shown
        assert app.session.target is None  # not the journey's target until Ctrl+N

        url_field = app.screen.query_one("#url", Input)
        url_field.focus()
        await settle(pilot)
        url_field.value = ""
        url_field.post_message(events.Paste(pg_url))
        await press(pilot, "ctrl+t")
        shown = screen_text(app)
        assert "Ready." in shown and "Move to PostgreSQL — step 1 of 7" in shown, shown
    assert await asyncio.to_thread(read, mysql_url, "SELECT count(*) FROM information_schema.tables "
                                   "WHERE table_schema = DATABASE()") == [(0,)]
    assert await asyncio.to_thread(read, pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") \
        == [(0,)]
    assert not list((tmp_path / "state").rglob("journal.jsonl"))

"""The Connection screen never shows a password typed or pasted into the URL field, and still uses it."""

from __future__ import annotations

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


@pytest.fixture
def owned_db(pg_server: str) -> Iterator[tuple[str, str, str]]:
    """(URL with the password, role, password): a role with a password, owning a database of its own."""
    role = f"wizard_tui_{uuid.uuid4().hex[:8]}"
    password = f"Zx{uuid.uuid4().hex[:12]}"
    database = f"{role}_db"
    execute(pg_server, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'",
                       f'CREATE DATABASE "{database}" OWNER "{role}"')
    url = make_url(pg_server).set(drivername="postgresql", username=role, password=password, database=database)
    try:
        yield url.render_as_string(hide_password=False), role, password
    finally:
        execute(pg_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                           f'DROP ROLE IF EXISTS "{role}"')


def assert_hidden(app, password: str) -> None:
    """Neither the screen nor a screenshot of it holds the password, or any 4 characters of its start."""
    for shown in (screen_text(app), screenshot_text(app)):
        for n in range(4, len(password) + 1):
            assert password[:n] not in shown, shown


async def _on_connection_screen(pilot, app) -> None:
    await settle(pilot)
    await press(pilot, "enter")  # Move to PostgreSQL
    assert "step 1 of 7" in screen_text(app), screen_text(app)


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


async def test_a_pasted_url_never_shows_its_password(tmp_path: Path, engine_db: Path,
                                                     owned_db: tuple[str, str, str]) -> None:
    url, role, password = owned_db
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(100, 30)) as pilot:
        await _on_connection_screen(pilot, app)
        url_field = app.screen.query_one("#url", Input)
        url_field.post_message(events.Paste(url))
        await settle(pilot)
        assert_hidden(app, password)
        assert password not in url_field.value
        assert app.screen.query_one("#password", Input).value == password
        await press(pilot, "ctrl+t")
        assert "Ready." in screen_text(app), screen_text(app)
        assert_hidden(app, password)
        await press(pilot, "ctrl+n")
    assert app.session.target.url.password == password
    assert app.session.target.url.username == role


def test_the_url_field_hides_the_client_keys_password_too() -> None:
    from screens.widgets import hide_password

    shown = hide_password("postgresql://app:pw@db/engine?sslcert=c.crt&sslpassword=key-S3cret&sslmode=verify-full")
    assert shown == "postgresql://app:••@db/engine?sslcert=c.crt&sslpassword=••••••••••&sslmode=verify-full"

"""Secrets never show, the state directory is private whatever the umask, the source's identifiers are quoted.

Each test runs the real `wizard` (a process of its own; the TUI through the Pilot) on real SQLite files and a
real PostgreSQL, then reads back everything the wizard printed or wrote: stdout, stderr, every file it made,
every screen it drew (as the SVG `export_screenshot` gives), and the target database itself.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import sqlite3
import stat
import uuid
from pathlib import Path
from typing import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from fault_support import rows_lost, source_counts, wizard
from move_helpers import execute, fetch, tables_in
from mysql_server import admin
from wizard import sample
from wizard.db import quote
from wizard.envfile import database_url

TARGET_PASSWORD = "S3cr3t-pw-tGt7q2Zx"
SOURCE_PASSWORD = "Src-pw-9Lk42abW"  # SQLite ignores it, but the URL grammar has a place for it
API_KEY = "sk-proj-Zq9distinctive7Kx3wqR"
SECRETS = {"the target's password": TARGET_PASSWORD, "the source URL's password": SOURCE_PASSWORD,
           "OPENAI_API_KEY": API_KEY}
ENGINE_TABLES = {"users", "workflows", "executions", "settings"}


def fragments(secret: str) -> set[str]:
    """The secret, and every 8 characters of it beyond what a masked key may show (its first 3, its last 4)."""
    core = secret[3:-4]
    return {secret} | {core[i:i + 8] for i in range(len(core) - 7)}


def assert_no_secret(data: str | bytes, where: str) -> None:
    blob = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    for name, secret in SECRETS.items():
        for piece in fragments(secret):
            assert piece.encode() not in blob, f"{name} ({piece!r}) shows in {where}"


def svg_text(svg: str) -> str:
    """What a screenshot says: its markup unescaped, and the text of its lines joined in order."""
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]
    return html.unescape(svg) + "\n" + "".join(texts).replace("\xa0", " ")


def unwrapped(shown: str) -> str:
    """A screen's text without its blanks and borders: a value wrapped over two lines reads whole."""
    return re.sub(r"[\s│┃▏▕]", "", shown)


def assert_private(path: Path) -> None:
    """Files 0600, folders 0700, exactly (DESIGN.md: backups and .env copies 0600; the state directory 0700)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    want = 0o700 if path.is_dir() else 0o600
    assert mode == want, f"{path} is {oct(mode)}, not {oct(want)}"


def plain_env() -> dict[str, str]:
    """The environment of an operator's shell with no password in it (PGPASSWORD would hide a missing one)."""
    return {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "WIZARD_STATE_DIR")}


def run_ok(*args: str, code: int = 0, **kwargs) -> tuple[str, str]:
    done = wizard(*args, env=kwargs.pop("env", plain_env()), **kwargs)
    assert done.returncode == code, \
        f"wizard {args[0]}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout, done.stderr


async def _where_in(url: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        found: dict[str, list[str]] = {secret: [] for secret in SECRETS.values()}
        for (table,) in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
            for (row,) in await conn.fetch(f"SELECT t::text FROM {quote(table)} t"):
                found.update({s: [*found[s], table] for s in found if s in row})
        return found
    finally:
        await conn.close()


def where_in_target(url: str) -> dict[str, list[str]]:
    """Per secret: the table of every row in the target that holds it, read as text."""
    return asyncio.run(_where_in(url))


def providers(url: str) -> list[dict]:
    (row,) = fetch(url, "SELECT settings_data FROM settings WHERE user_id = 'anonymous'")
    return json.loads(row[0])["providers"]


@pytest.fixture
def private_target(pg_server: str) -> Iterator[str]:
    """A fresh database owned by a role of its own with a password: the URL, the password in it."""
    tag = uuid.uuid4().hex[:10]
    role, name = f"wizard_secret_{tag}", f"wizard_secret_db_{tag}"
    execute(pg_server, f"CREATE ROLE {role} LOGIN PASSWORD '{TARGET_PASSWORD}'",
                       f'CREATE DATABASE "{name}" OWNER {role}')
    url = make_url(pg_server).set(drivername="postgresql", username=role, password=TARGET_PASSWORD, database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f"DROP ROLE IF EXISTS {role}")


def write_env(path: Path, source_url: str) -> bytes:
    data = (f"# the workflow engine\nDATABASE_URL=\"{source_url}\"\nOPENAI_API_KEY={API_KEY}\nLOG_LEVEL=info\n"
            ).encode()
    path.write_bytes(data)
    os.chmod(path, 0o640)
    return data


def secret_source_url(db: Path) -> str:
    """sqlite://user:password@//abs/path: SQLAlchemy's grammar takes a password for SQLite too."""
    url = f"sqlite+aiosqlite://engine:{SOURCE_PASSWORD}@/{db.resolve()}"
    assert make_url(url).password == SOURCE_PASSWORD and make_url(url).database == str(db.resolve())
    return url


@pytest.mark.slow  # over 15 s: run by `pytest -m slow`
def test_no_secret_in_anything_a_headless_move_prints_or_writes(tmp_path: Path, private_target: str,
                                                                 survived) -> None:
    target = private_target
    db = sample.build_dirty(tmp_path / "dirty.db", executions=300)
    source = secret_source_url(db)
    env = tmp_path / ".env"
    original_env = write_env(env, source)
    state = tmp_path / "state"
    report = tmp_path / "reports" / "verify.md"
    printed: list[tuple[str, str]] = []  # (what, text)
    backups: list[Path] = []
    lost = None

    for as_json in (True, False):
        move = ["migrate", "--source", source, "--target", target, "--env-file", str(env), "--yes",
                "--on-orphans", "quarantine", "--state-dir", str(state)]
        before = set(os.listdir(state / "runs")) if state.exists() else set()
        out, err = run_ok(*move, *(["--json"] if as_json else []), cwd=tmp_path)
        printed += [(f"migrate{' --json' if as_json else ''} stdout", out), ("migrate stderr", err)]
        (run_id,) = set(os.listdir(state / "runs")) - before
        if as_json:
            summary = json.loads(out.splitlines()[-1])
            assert summary["event"] == "Summary" and summary["state"] == "finished" and summary["run_id"] == run_id
        else:
            assert f"move {run_id}" in out and "verified:" in out, out
        folder = state / "runs" / run_id
        assert (folder / "quarantine" / "users.jsonl").is_file()  # a row with a hashed password, set aside

        # The key left .env for the target's settings, and is nowhere else there.
        after = env.read_bytes()
        assert API_KEY.encode() not in after and b"LOG_LEVEL=info" in after
        assert database_url(env) == make_url(target).set(drivername="postgresql+asyncpg").render_as_string(
            hide_password=False)  # the engine's own config must hold its password: by design, the one place
        assert {"id": "openai", "name": "OpenAI", "type": "openai", "apiKey": API_KEY, "enabled": True} \
            in providers(target)
        assert where_in_target(target) == {API_KEY: ["settings"], TARGET_PASSWORD: [], SOURCE_PASSWORD: []}
        # .env's backup is its exact copy (secrets and all): private instead.
        env_backup = folder / "env.backup"
        assert env_backup.read_bytes() == original_env
        assert_private(env_backup)
        backups.append(env_backup)
        # The .env the switch wrote, kept so a rollback can keep the operator's later edits: .env itself (whose
        # DATABASE_URL holds the target's password by design), private like the backup.
        env_switched = folder / "env.switched"
        assert env_switched.read_bytes() == after
        assert_private(env_switched)
        backups.append(env_switched)
        lost = rows_lost(db, target, folder)
        assert lost == 0

        out, err = run_ok("status", "--state-dir", str(state), *(["--json"] if as_json else []), cwd=tmp_path)
        assert run_id in out
        printed += [("status stdout", out), ("status stderr", err)]

        # With the run, its settings change is expected, and named; without it, it is the settings
        # table's one difference, shown with its key masked.
        out, err = run_ok("verify", "--source", source, "--target", target, "--report", str(report),
                          "--state-dir", str(state), "--run", run_id, *(["--json"] if as_json else []),
                          cwd=tmp_path)
        printed += [("verify stdout", out), ("verify stderr", err)]
        written = json.loads(report.with_suffix(".json").read_text())
        assert not [t["table"] for t in written["tables"] if t["diffs"]]
        (settings,) = [t for t in written["tables"] if t["table"] == "settings"]
        assert "1 row(s) changed on purpose (OPENAI_API_KEY moved into provider" in settings["note"]
        alone = tmp_path / f"settings-{as_json}.md"
        out, err = run_ok("verify", "--source", source, "--target", target, "--report", str(alone),
                          "--table", "settings", *(["--json"] if as_json else []), code=1, cwd=tmp_path)
        printed += [("verify --table settings stdout", out), ("verify --table settings stderr", err)]
        written = json.loads(alone.with_suffix(".json").read_text())
        differing = {t["table"]: [(d["pk"], [c["column"] for c in d["columns"]]) for d in t["diffs"]]
                     for t in written["tables"] if t["diffs"]}
        assert differing == {"settings": [(1, ["settings_data", "updated_at"])]}, differing
        assert '"apiKey": "***"' in alone.read_text()  # the difference is shown, its key is not
        for path in (report, report.with_suffix(".json"), alone, alone.with_suffix(".json")):
            assert_private(path)
            printed.append((str(path), path.read_text()))

        out, err = run_ok("rollback", "--last", "--yes", "--state-dir", str(state), "--env-file", str(env),
                          cwd=tmp_path)
        printed += [("rollback stdout", out), ("rollback stderr", err)]
        assert env.read_bytes() == original_env
        assert tables_in(target) == []

    for what, text in printed:
        assert_no_secret(text, what)
    assert "***@" in "".join(text for _, text in printed)  # the URLs were shown, masked
    # Every file the wizard made: the state directory (journal, reports, quarantine, the backup of the
    # source), the reports' folder, anything left beside .env. Only .env and its copies may hold a secret.
    seen = set()
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path != env and path not in backups:
            assert_no_secret(path.read_bytes(), str(path.relative_to(tmp_path)))
            seen.add(path.name)
    assert {"journal.jsonl", "report.json", "report.md", "verify.md", "verify.json", "lock", "dirty.db.backup",
            "users.jsonl", "executions.jsonl"} <= seen, seen
    assert not list(tmp_path.glob(".*wizard-tmp"))
    survived(fault="a password in the target's and the source's URL, OPENAI_API_KEY in .env; migrate (JSON and "
                   "text), status, verify --report, rollback",
             did="neither shows in what it printed or wrote (journal, reports, quarantine, backups); the key is only "
                 "in the target's settings; .env's copies are 0600; rollback took the password from the switched "
                 ".env before restoring it",
             rows_lost=lost)


@pytest.mark.slow  # over 12 s: run by `pytest -m slow`
async def test_no_secret_on_any_screen_of_the_move_journey(tmp_path: Path, private_target: str, survived) -> None:
    from textual.widgets import Input

    from screens.connection import ConnectionScreen
    from screens.finish import FinishScreen
    from screens.runs import RunsScreen
    from tui_support import make_app, press, screen_text, settle

    target = private_target
    db = sample.build_dirty(tmp_path / "dirty.db", executions=300)
    env = tmp_path / ".env"
    original_env = write_env(env, secret_source_url(db))
    state = tmp_path / "state"
    app = make_app(state, env_file=env, source_text=database_url(env), target_text=target)  # as --target gives it
    shots: dict[str, str] = {}

    def look(name: str) -> str:
        """The screen as the terminal shows it, and its screenshot; neither may hold a secret."""
        shown = screen_text(app)
        shots[name] = svg_text(app.export_screenshot())
        assert_no_secret(shown, f"the {name} screen")
        assert_no_secret(unwrapped(shown), f"the {name} screen, its lines joined")
        assert_no_secret(shots[name], f"the screenshot of the {name} screen")
        return shown

    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        assert "Move to PostgreSQL" in look("start")
        await press(pilot, "enter")
        assert isinstance(app.screen, ConnectionScreen)
        password = app.screen.query_one("#password", Input)
        assert password.value == TARGET_PASSWORD  # --target's password went to the masked field
        look("connection, from --target")
        password.value = ""
        password.focus()
        await press(pilot, *TARGET_PASSWORD)  # typed again by the operator, key by key
        assert password.value == TARGET_PASSWORD
        look("connection, password typed")
        await press(pilot, "ctrl+t")
        shown = look("connection, tested")
        assert "Ready." in shown and ":***@" in shown, shown  # the URL is shown, its password is not
        await press(pilot, "ctrl+n")
        assert "Cannot start" in look("pre-flight")
        await press(pilot, "tab", "tab", "down", "down", "enter")  # the checks, the scan, then the policy
        assert app.session.policy == "quarantine"
        look("pre-flight, quarantine chosen")
        await press(pilot, "n", "y")  # the move runs
        assert app.session.log.state == "done", app.session.log.error
        assert "Backup proven" in look("backup")
        await press(pilot, "n")
        look("schema")
        await press(pilot, "n")
        look("copy")
        await press(pilot, "n")
        assert "Every row accounted for" in look("verify")
        await press(pilot, "n")
        assert isinstance(app.screen, FinishScreen)
        shown = look("finish")
        role = make_url(target).username
        lines = unwrapped(shown)  # the before/after line, masked both sides
        assert re.search(r'-DATABASE_URL="?sqlite\+aiosqlite://engine:\*\*\*@//', lines), shown
        assert re.search(rf'\+DATABASE_URL="?postgresql\+asyncpg://{role}:\*\*\*@', lines), shown
        await press(pilot, "a")
        assert "Rewrite DATABASE_URL" in look("finish, confirm the switch")
        await press(pilot, "y")
        shown = look("finish, switched")
        assert "now says" in shown and "sk-..." in shown, shown  # the key's move is said, masked
        # The helpers run their own event loop: in a thread, beside the app's.
        assert {"id": "openai", "name": "OpenAI", "type": "openai", "apiKey": API_KEY, "enabled": True} \
            in await asyncio.to_thread(providers, target)
        assert await asyncio.to_thread(where_in_target, target) == {
            API_KEY: ["settings"], TARGET_PASSWORD: [], SOURCE_PASSWORD: []}
        assert API_KEY.encode() not in env.read_bytes()
        lost = await asyncio.to_thread(rows_lost, db, target, app.session.run.folder)
        await press(pilot, "ctrl+r")
        assert "Roll back?" in look("roll back, confirm")
        await press(pilot, "y")
        assert isinstance(app.screen, RunsScreen)
        assert "rolled back and checked" in look("runs, rolled back")

    assert env.read_bytes() == original_env
    assert await asyncio.to_thread(tables_in, target) == []
    for path in sorted(state.rglob("*")):
        if path.name == "env.backup":
            assert path.read_bytes() == original_env
            assert_private(path)
        elif path.name == "env.switched":  # .env as the switch wrote it: its DATABASE_URL holds the password
            assert API_KEY.encode() not in path.read_bytes()
            assert_private(path)
        elif path.is_file():
            assert_no_secret(path.read_bytes(), str(path.relative_to(state)))
    survived(fault="the TUI's move journey with the target's password typed in, a password in .env's "
                   "DATABASE_URL, OPENAI_API_KEY in .env",
             did=f"none of its {len(shots)} screens (their SVG screenshots too: Connection with the password typed, "
                 "Finish's .env before/after line, the confirmations) nor the run's files shows one; the key is only "
                 "in the target's settings; ctrl+r undid it all",
             rows_lost=lost)


async def test_a_password_in_the_urls_query_shows_nowhere_on_the_connection_screen(tmp_path: Path,
                                                                                     mysql_url: str) -> None:
    """`?password=` is a password the MySQL driver logs in with: the URL field, the line said while connecting and
    the tested target's header show it as the userinfo's is shown, never as given."""
    from screens.connection import ConnectionScreen
    from tui_support import make_app, press, screen_text, settle

    user, database = f"wizard_secret_{uuid.uuid4().hex[:10]}", make_url(mysql_url).database
    admin(mysql_url, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{TARGET_PASSWORD}'")
    try:
        admin(mysql_url, f"GRANT ALL ON `{database}`.* TO '{user}'@'%'")
        target = make_url(mysql_url).set(username=user).update_query_dict({"password": TARGET_PASSWORD})
        db = sample.build(tmp_path / "engine.db", executions=20, workflows=2, users=1)
        app = make_app(tmp_path / "state", source_text=f"sqlite:///{db}",
                       target_text=target.render_as_string(hide_password=False))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "enter")
            assert isinstance(app.screen, ConnectionScreen)
            await press(pilot, "ctrl+t")
            shown = screen_text(app)
            assert "Ready." in shown, shown  # the server took the password
            for what, text in (("the screen", shown), ("its lines joined", unwrapped(shown)),
                               ("its screenshot", svg_text(app.export_screenshot()))):
                assert_no_secret(text, f"the Connection screen, {what}")
            assert "password=***" in shown and "password=•" in shown, shown  # the URL is shown, its password is not
    finally:
        admin(mysql_url, f"DROP USER IF EXISTS '{user}'@'%'")


async def test_a_crash_of_the_tui_reports_no_password_typed(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual's report of an unhandled exception lists each frame's locals by default, and the Connection
    screen's hold the Password field's value. The crash is a bug planted where the real one was (int('-') of a
    Port of '-' in _from_fields, fixed since): the URL made of the fields raises, under the frame that read the
    password, on Enter in the Password field."""
    from textual.widgets import Input

    from tui_support import make_app, press, settle
    from wizard import commands

    def planted(*args: object, **kwargs: object) -> None:
        raise ValueError("a planted bug")

    db = sample.build(tmp_path / "engine.db", executions=20, workflows=2, users=1)
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{db}")
    with pytest.raises(ValueError):
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "enter")
            monkeypatch.setattr(commands, "form_url", planted)
            app.screen.query_one("#password", Input).focus()
            await press(pilot, *TARGET_PASSWORD, "enter")
    report = capsys.readouterr().err
    assert "Traceback" in report and "_from_fields" in report, report  # the report was printed
    assert_no_secret(report, "the TUI's crash report")


PROVIDER_KEY = "AIzaSyQ-distinctive9Lk2Wx"  # a provider's key without OpenAI's sk- shape (Google's)


def test_a_quarantined_settings_row_shows_no_key_in_json_cut_short_or_under_another_name(tmp_path: Path,
                                                                                        engine_db: Path,
                                                                                        pg_url: str) -> None:
    """The quarantine keeps the rows PostgreSQL will not take, secrets masked: in settings, JSON that does not
    parse, so its keys are found in the text, cut short inside one, or under a name of the operator's own."""
    cut = '{"providers": [{"id": "g", "type": "gemini", "apiKey": "' + PROVIDER_KEY
    named = '{"providers": [{"id": "g", "geminiApiKey": "' + PROVIDER_KEY + '"}], "theme": dark}'
    with sqlite3.connect(engine_db) as conn:
        conn.executemany("INSERT INTO settings (user_id, settings_data, created_at, updated_at) "
                         "VALUES (?, ?, '2025-01-01 00:00:00', '2025-01-01 00:00:00')", [("cut", cut), ("named", named)])
    conn.close()
    state = tmp_path / "state"
    out, err = run_ok("migrate", "--source", f"sqlite:///{engine_db}", "--target", pg_url, "--yes",
                      "--on-orphans", "quarantine", "--state-dir", str(state), cwd=tmp_path)
    (held,) = state.glob("runs/*/quarantine/settings.jsonl")
    rows = {r["row"]["user_id"]: r for r in map(json.loads, held.read_text().splitlines())}
    assert set(rows) == {"cut", "named"} and {r["rule"] for r in rows.values()} == {
        "text that is not valid JSON in a JSON column"}
    files = [(str(p.relative_to(tmp_path)), p.read_bytes()) for p in sorted(state.rglob("*"))
             if p.is_file() and p.suffix != ".backup"]  # the source's backup holds its data, by design
    for what, data in [("migrate stdout", out.encode()), ("migrate stderr", err.encode()), *files]:
        for piece in fragments(PROVIDER_KEY):
            assert piece.encode() not in data, f"the provider's key ({piece!r}) shows in {what}"
    assert rows["cut"]["row"]["settings_data"].endswith('"apiKey": "***')  # the row as it was, less the key


@pytest.mark.slow  # over 15 s: run by `pytest -m slow`
def test_every_file_the_wizard_keeps_is_private_whatever_the_umask(tmp_path: Path, pg_url: str, survived) -> None:
    """Under umask 0 (every file the process makes world-readable unless it says otherwise): a move with
    --env-file, an upgrade of its target (pg_dump), a verification report, the move's rollback."""
    db = sample.build_dirty(tmp_path / "dirty.db", executions=200)
    env = tmp_path / ".env"
    original_env = write_env(env, f"sqlite:///{db}")
    report = tmp_path / "verify.md"
    state = tmp_path / ".wizard"  # the default, in the folder the operator runs it from

    def as_world(*args: str, code: int = 0) -> tuple[str, str]:
        return run_ok(*args, code=code, cwd=tmp_path, preexec_fn=lambda: os.umask(0))

    as_world("migrate", "--target", pg_url, "--env-file", str(env), "--yes", "--on-orphans", "null")
    (move_run,) = os.listdir(state / "runs")
    move_folder = state / "runs" / move_run
    assert stat.S_IMODE(env.stat().st_mode) == 0o640  # .env rewritten, its mode kept
    lost = rows_lost(db, pg_url, move_folder)
    as_world("upgrade", "--db", pg_url, "--yes")
    # Exit 1: without --run the quarantined and nulled rows, and the settings the move changed, differ.
    as_world("verify", "--source", f"sqlite:///{db}", "--target", pg_url, "--report", str(report), code=1)
    as_world("rollback", "--last", "--yes")  # the upgrade of the move's target first: it came after the move
    as_world("rollback", "--run", move_run, "--yes", "--env-file", str(env))
    assert env.read_bytes() == original_env and stat.S_IMODE(env.stat().st_mode) == 0o640
    assert tables_in(pg_url) == []

    kept = sorted(state.rglob("*"))
    names = {p.name for p in kept}
    assert {"lock", "runs", "journal.jsonl", "env.backup", "dirty.db.backup", "report.json",
            "report.md", "verify.md", "verify.json", "quarantine", "nulled"} <= names, names
    assert any(p.suffix == ".dump" for p in kept), names
    for path in [state, *kept]:
        assert_private(path)
    for path in (report, report.with_suffix(".json")):
        assert_private(path)
    survived(fault="umask 0: a move with --env-file and --on-orphans null, an upgrade of its target, a "
                   "verification report, the move's rollback",
             did="every file in the state directory is 0600 (backups, the dump, .env's copy, journals, reports, "
                 "quarantine), every folder 0700, the report 0600; .env keeps its own mode",
             rows_lost=lost)


# Tables the engine does not know, named to break whatever splices a name into SQL or into markup unquoted.
ODD_SQL = """
CREATE TABLE "select" ("order" INTEGER PRIMARY KEY, "a""b" TEXT NOT NULL, "Group By" TEXT);
CREATE UNIQUE INDEX "uq select a""b" ON "select" ("a""b");
CREATE TABLE "Mixed Case" ("Id" INTEGER PRIMARY KEY, "select" INTEGER REFERENCES "select" ("order"),
                           "with space" TEXT, "User" TEXT);
CREATE INDEX "ix ""quoted"" Mixed" ON "Mixed Case" ("with space", "User");
CREATE TABLE "with space" ("key col" TEXT PRIMARY KEY, "a""b" INTEGER REFERENCES "Mixed Case" ("Id"), "from" TEXT);
CREATE TABLE "x""; DROP TABLE users; --" ("id" INTEGER PRIMARY KEY, "order" TEXT, "a""b" TEXT,
                                          "Group By" INTEGER REFERENCES "select" ("order"));
CREATE INDEX "x""; DROP TABLE users; --_idx" ON "x""; DROP TABLE users; --" ("Group By");
CREATE TABLE "tag[/]" ("[b]old" TEXT PRIMARY KEY, "[red]x[/red]" INTEGER);
INSERT INTO "select" VALUES (1, 'one', 'g1'), (2, 'two"', NULL);
INSERT INTO "Mixed Case" VALUES (10, 1, 'a b', 'U'), (11, 2, NULL, NULL), (12, NULL, ''';--', 'x');
INSERT INTO "with space" VALUES ('k 1', 10, 'f'), ('k"2', 11, NULL);
INSERT INTO "x""; DROP TABLE users; --" VALUES (1, 'o', 'q"q', 1), (2, NULL, NULL, 2),
                                              (3, 'DROP TABLE users', 'z', NULL);
INSERT INTO "tag[/]" VALUES ('[i]v', 1), ('[/]', 2);
"""
ODD = {  # table: (columns, primary key, rows)
    "select": (["order", 'a"b', "Group By"], ["order"], 2),
    "Mixed Case": (["Id", "select", "with space", "User"], ["Id"], 3),
    "with space": (["key col", 'a"b', "from"], ["key col"], 2),
    'x"; DROP TABLE users; --': (["id", "order", 'a"b', "Group By"], ["id"], 3),
    "tag[/]": (["[b]old", "[red]x[/red]"], ["[b]old"], 2),
}
ODD_INDEXES = {("select", 'uq select a"b', True), ("Mixed Case", 'ix "quoted" Mixed', False),
               ('x"; DROP TABLE users; --', 'x"; DROP TABLE users; --_idx', False)}
ODD_FOREIGN_KEYS = {("Mixed Case", ("select",), "select", ("order",)),
                    ("with space", ('a"b',), "Mixed Case", ("Id",)),
                    ('x"; DROP TABLE users; --', ("Group By",), "select", ("order",))}


@pytest.mark.slow  # 7 s or more: run by `pytest -m slow`
def test_the_sources_identifiers_are_quoted_everywhere(tmp_path: Path, engine_db: Path, pg_url: str,
                                                       survived) -> None:
    db = tmp_path / "odd.db"
    db.write_bytes(engine_db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.executescript(ODD_SQL)
    conn.close()
    users = source_counts(db)["users"]
    # Bystanders in the target, one letter from two of the move's tables: the rollback must leave them.
    fetch(pg_url, 'CREATE TABLE "mixed case" (id int)')
    fetch(pg_url, 'INSERT INTO "mixed case" VALUES (1)')
    fetch(pg_url, 'CREATE TABLE "Select" (id int)')
    wide = {**plain_env(), "COLUMNS": "200"}  # names whole on one line, to be read back
    source = f"sqlite:///{db}"

    shown, _ = run_ok("plan", "--source", source, cwd=tmp_path, env=wide)
    for table, (columns, _, rows) in ODD.items():
        assert re.search(rf"^{re.escape(table)} +{rows} +other", shown, re.M), (table, shown)
        for column in columns:
            assert re.search(rf" {re.escape(column)} +[A-Z]+ +[a-z]", shown), (column, shown)

    out, err = run_ok("migrate", "--source", source, "--target", pg_url, "--yes", cwd=tmp_path, env=wide)
    for table in ODD:
        assert re.search(rf"^{re.escape(table)} +\d+ +\d+ +0 +\d+ +ok", out, re.M), (table, out)
        assert re.search(rf"^{re.escape(table)} +━", err, re.M), (table, err)  # its progress bar
    assert set(tables_in(pg_url)) == ENGINE_TABLES | {"alembic_version", "mixed case", "Select"} | set(ODD)
    for table, (columns, key, rows) in ODD.items():
        got = [r[0] for r in fetch(pg_url, "SELECT column_name FROM information_schema.columns WHERE "
                                           "table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                                   table)]
        assert got == columns, table
        pk = [r[0] for r in fetch(pg_url, "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = "
                                          "x.indrelid AND a.attnum = ANY(x.indkey) WHERE x.indisprimary AND "
                                          "x.indrelid = $1::regclass", quote(table))]
        assert pk == key, table
        with sqlite3.connect(db) as conn:
            want = conn.execute(f"SELECT * FROM {quote(table)} ORDER BY 1").fetchall()
        conn.close()
        assert [tuple(r) for r in fetch(pg_url, f"SELECT * FROM {quote(table)} ORDER BY 1")] == want, table
        assert len(want) == rows
    indexes = {(r[0], r[1], r[2]) for r in fetch(pg_url, "SELECT c.relname, i.relname, x.indisunique FROM pg_index x "
                                                         "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c "
                                                         "ON c.oid = x.indrelid WHERE NOT x.indisprimary")
               if r[0] in ODD}
    assert indexes == ODD_INDEXES
    fks = {(r[0], tuple(r[1]), r[2], tuple(r[3])) for r in fetch(pg_url, """
        SELECT c.relname,
               array(SELECT attname FROM pg_attribute WHERE attrelid = k.conrelid AND attnum = ANY(k.conkey)),
               p.relname,
               array(SELECT attname FROM pg_attribute WHERE attrelid = k.confrelid AND attnum = ANY(k.confkey))
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
        WHERE k.contype = 'f'""") if r[0] in ODD}
    assert fks == ODD_FOREIGN_KEYS
    assert fetch(pg_url, "SELECT count(*) FROM users")[0][0] == users  # nothing was dropped by a name
    lost = rows_lost(db, pg_url)

    out, err = run_ok("rollback", "--last", "--yes", cwd=tmp_path, env=wide)
    for table in ODD:
        assert table in out, (table, out)
    assert tables_in(pg_url) == ["Select", "mixed case"]
    assert fetch(pg_url, 'SELECT id FROM "mixed case"')[0][0] == 1
    survived(fault="tables and columns named x\"; DROP TABLE users; --, Mixed Case, with space, select, a\"b, "
                   "Group By, tag[/], [b]old, with a primary key, indexes and foreign keys among them",
             did="plan shows them, the move creates each under its exact name with its rows, keys and indexes, "
                 "verify passes, rollback drops exactly those (two look-alike tables stay)",
             rows_lost=lost)

"""Every journey end to end through the screens, keys only, against real SQLite files and PostgreSQL.

Each test asserts what the databases and .env hold afterwards, not only what the screen says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from engine_data import build_1_0_0, read
from move_helpers import execute
from tui_support import make_app, press, screen_text, settle
from wizard import commands
from wizard.commands import schema_of
from wizard.envfile import database_url
from wizard.schema import head
from wizard.urls import parse_url

ENGINE_TABLES = ("users", "workflows", "executions", "settings")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ENGINE_TABLES}


async def pg_counts(url: str) -> dict[str, int]:
    """Rows per engine table in the target (tables that are not there are left out)."""
    conn = await asyncpg.connect(url)
    try:
        present = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ENGINE_TABLES if t in present}
    finally:
        await conn.close()


def sqlite_revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        except sqlite3.OperationalError:
            return None


@pytest.fixture
def engine_env(tmp_path: Path, engine_db: Path) -> Path:
    """The engine's .env as an operator has it: comments, a key, the SQLite URL."""
    env = tmp_path / ".env"
    env.write_bytes(
        b"# workflow engine\nLOG_LEVEL=info\n"
        + f'DATABASE_URL="sqlite+aiosqlite:///{engine_db}"\n'.encode()
        + b"OPENAI_API_KEY=sk-test-0123456789abcdef\n"
    )
    return env


async def _move_to_verify(pilot, app) -> None:
    """Start -> Connection -> Pre-flight -> the move -> Backup -> Schema -> Copy -> Verify."""
    await _to_connection(pilot, app)
    await _connection_to_verify(pilot, app)


async def _to_connection(pilot, app) -> None:
    await settle(pilot)
    assert "Move to PostgreSQL" in screen_text(app)
    await press(pilot, "enter")
    assert "step 1 of 7" in screen_text(app)


async def _connection_to_verify(pilot, app) -> None:
    await press(pilot, "ctrl+t")
    assert "Ready." in screen_text(app), screen_text(app)
    await press(pilot, "ctrl+n")
    assert "n starts the move" in screen_text(app), screen_text(app)
    await press(pilot, "n", "y")  # the move runs once confirmed; settle waits for it
    assert app.session.log.state == "done", app.session.log.error
    assert "Backup proven" in screen_text(app)
    await press(pilot, "n")
    assert "step 4 of 7" in screen_text(app)
    # The schema was built by the move under way: where the target started, not 'Now: empty' beside 'Schema at'.
    assert "From: empty   To: 0001" in screen_text(app) and "Now:" not in screen_text(app), screen_text(app)
    await press(pilot, "n")
    assert "step 5 of 7" in screen_text(app)
    assert "Phase: done" in screen_text(app), screen_text(app)  # onto MySQL too, which has no index step
    await press(pilot, "n")
    assert "Every row accounted for" in screen_text(app), screen_text(app)


async def test_move_journey(tmp_path: Path, engine_db: Path, engine_env: Path, pg_url: str) -> None:
    source_sha, env_before = sha256(engine_db), engine_env.read_bytes()
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env), target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _move_to_verify(pilot, app)
        await press(pilot, "n")
        assert "step 7 of 7" in screen_text(app)
        # The guide's way back is the key: the TUI names no CLI command the operator did not ask about.
        shown = " ".join(screen_text(app).split())
        assert "its backups are the way back (ctrl+r)." in shown and "wizard rollback" not in shown, shown
        assert engine_env.read_bytes() == env_before  # nothing switched before the operator says so
        # Everything the switch will change in .env is said before it: the key leaves it too, masked.
        key_move = "OPENAI_API_KEY (sk-...cdef) moves into the target's settings"
        assert key_move in screen_text(app), screen_text(app)
        await press(pilot, "a")
        assert "Rewrite DATABASE_URL" in screen_text(app) and key_move in screen_text(app), screen_text(app)
        assert "0123456789" not in screen_text(app)
        await press(pilot, "y")
        assert "now says" in screen_text(app)

    assert sha256(engine_db) == source_sha  # the source is never written
    assert await pg_counts(pg_url) == sqlite_counts(engine_db)
    assert parse_url(database_url(engine_env)).database == parse_url(pg_url).database
    assert b"LOG_LEVEL=info" in engine_env.read_bytes() and b"OPENAI_API_KEY" not in engine_env.read_bytes()


async def test_backup_screen_shows_the_proofs_own_result(tmp_path: Path, engine_db: Path, engine_env: Path,
                                                         pg_url: str) -> None:
    """A move's backup is taken proven by its sha256 and its integrity_check runs beside the copy: once
    "Backup proven", the screen's integrity line is what that check found (as the journal records it), not the
    sha256 the backup was taken with."""
    from wizard.journal import load_run

    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env), target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_connection(pilot, app)
        await press(pilot, "ctrl+t", "ctrl+n", "n", "y")
        assert app.session.log.state == "done", app.session.log.error
        shown = screen_text(app)
    (proof,) = [r for r in load_run(tmp_path / "state").finished_steps() if r["step"] == "backup_check"]
    assert "integrity_check: ok" in proof["check"], proof
    assert "Backup proven" in shown and f"integrity: {proof['check']}" in shown, shown
    assert "integrity: sha256 equal to the source's" not in shown, shown


@pytest.fixture
def mysql_source(engine_db: Path, mysql_url: str) -> str:
    """A 1.0.0 engine database on MariaDB with the sample's rows."""
    return build_1_0_0(mysql_url, engine_db)


@pytest.fixture
def mysql_env(tmp_path: Path, mysql_source: str, pg_url: str) -> Path:
    """The engine's .env naming a 1.0.0 engine database on MariaDB; the target holds an empty schema app."""
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL={mysql_source}\n")
    execute(pg_url, "CREATE SCHEMA app")
    return env


async def test_move_off_mysql_into_a_schema_of_its_own(tmp_path: Path, mysql_env: Path, pg_url: str) -> None:
    """The source is .env's DATABASE_URL on MariaDB; the target's tables go into the schema typed on Connection."""
    env = mysql_env
    source = database_url(env)
    app = make_app(tmp_path / "state", env_file=env, source_text=database_url(env), source_from_env=True,
                   target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_connection(pilot, app)
        schema = app.screen.query_one("#schema")
        schema.focus()
        await press(pilot, "a", "p", "p")
        await _connection_to_verify(pilot, app)

    target = app.session.target
    assert schema_of(target) == "app" and target.database == parse_url(pg_url).database  # the URL it moved to
    expected = {t: (await asyncio.to_thread(read, source, f"SELECT count(*) FROM {t}"))[0][0] for t in ENGINE_TABLES}
    assert expected["executions"] == 300
    conn = await asyncpg.connect(pg_url)
    try:
        for table, rows in expected.items():
            assert await conn.fetchval(f"SELECT count(*) FROM app.{table}") == rows, table
        assert not await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()


def _keys_and_statuses(url: str, table: str = "executions") -> list[tuple]:
    return sorted((str(k), s) for k, s in read(url, f"SELECT id, status FROM {table}"))


async def test_move_onto_mysql_journey_and_ctrl_r(tmp_path: Path, engine_db: Path, engine_env: Path,
                                                  mysql_url: str) -> None:
    """SQLite onto MariaDB by keys alone, the same screens as onto PostgreSQL; then Ctrl+R puts it all back."""
    source_sha, env_before = sha256(engine_db), engine_env.read_bytes()
    sqlite_url = f"sqlite:///{engine_db}"
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env),
                   target_text=mysql_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "Move to PostgreSQL or MySQL" in screen_text(app)  # from a SQLite file: either
        await _to_connection(pilot, app)
        await press(pilot, "ctrl+t")
        assert "MariaDB" in screen_text(app) and "utf8mb4" in screen_text(app), screen_text(app)
        await _connection_to_verify(pilot, app)
        await press(pilot, "n")
        assert "Move to MySQL/MariaDB — step 7 of 7" in screen_text(app), screen_text(app)
        assert engine_env.read_bytes() == env_before  # nothing switched before the operator says so
        await press(pilot, "a")
        assert "Rewrite DATABASE_URL" in screen_text(app)
        await press(pilot, "y")
        assert "now says" in screen_text(app), screen_text(app)

        assert sha256(engine_db) == source_sha  # the source is never written
        counts = {t: (await asyncio.to_thread(read, mysql_url, f"SELECT count(*) FROM {t}"))[0][0]
                  for t in ENGINE_TABLES}
        assert counts == sqlite_counts(engine_db) and counts["executions"] == 300
        assert await asyncio.to_thread(_keys_and_statuses, mysql_url) == \
            await asyncio.to_thread(_keys_and_statuses, sqlite_url)
        switched = parse_url(database_url(engine_env))
        assert switched.is_mysql and switched.database == parse_url(mysql_url).database
        assert b"LOG_LEVEL=info" in engine_env.read_bytes() and b"OPENAI_API_KEY" not in engine_env.read_bytes()
        (data,), = await asyncio.to_thread(read, mysql_url, "SELECT settings_data FROM settings "
                                                            "WHERE user_id = 'anonymous'")
        assert [p["apiKey"] for p in json.loads(data)["providers"] if p["type"] == "openai"] == \
            ["sk-test-0123456789abcdef"]

        await press(pilot, "ctrl+r")
        shown = screen_text(app)
        assert "Roll back?" in shown, shown
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)

    assert engine_env.read_bytes() == env_before
    left = await asyncio.to_thread(read, mysql_url, "SELECT table_name FROM information_schema.tables "
                                                   "WHERE table_schema = DATABASE()")
    assert left == []
    assert sha256(engine_db) == source_sha


async def test_after_a_move_onto_mysql_and_its_switch_the_next_move_goes_to_postgresql(
        tmp_path: Path, engine_db: Path, engine_env: Path, mysql_url: str) -> None:
    """After Done, .env names the MariaDB database: the Start screen's source. A move off it goes to PostgreSQL only,
    but the Start screen offered 'Move to MySQL/MariaDB' (the target tested last) and its Connection screen came
    filled with that database, the source itself (seen walking the journey in tmux at 80x24)."""
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env),
                   source_from_env=True, target_text=mysql_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_connection(pilot, app)
        await _connection_to_verify(pilot, app)
        await press(pilot, "n", "a", "y", "d")
        shown = screen_text(app)
        assert app.session.source_text.startswith("mysql") and "a move goes off it, to PostgreSQL" in shown, shown
        assert "Move to PostgreSQL" in shown and "Move to MySQL" not in shown, shown
        await press(pilot, "enter")
        shown = screen_text(app)
        assert "Move to PostgreSQL — step 1 of 7" in shown, shown
        assert app.screen.query_one("#url").value == "", app.screen.query_one("#url").value
    assert parse_url(database_url(engine_env)).database == parse_url(mysql_url).database  # the switch made
    assert await asyncio.to_thread(read, mysql_url, "SELECT count(*) FROM executions") == [(300,)]


async def test_upgrade_in_place_on_mysql_journey(tmp_path: Path, mysql_source: str) -> None:
    app = make_app(tmp_path / "state", source_text=mysql_source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter", "a")  # Upgrade in place, Apply
        shown = screen_text(app)
        assert "then, each revision on its own (MySQL" in shown and "one transaction" not in shown, shown
        await press(pilot, "y")
        assert app.session.log.state == "done", app.session.log.error
    rows = await asyncio.to_thread(read, mysql_source, "SELECT version_num FROM alembic_version")
    assert rows == [(head(),)]


async def test_ctrl_r_mid_journey_puts_everything_back(tmp_path: Path, engine_db: Path, engine_env: Path,
                                                       pg_url: str) -> None:
    source_sha, env_before = sha256(engine_db), engine_env.read_bytes()
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env), target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _move_to_verify(pilot, app)
        await press(pilot, "n", "a", "y")  # Finish, switch .env
        assert engine_env.read_bytes() != env_before
        await press(pilot, "ctrl+r")
        shown = screen_text(app)
        assert "Roll back?" in shown and "1." in shown, shown
        assert engine_env.read_bytes() != env_before  # the confirmation alone changes nothing
        await press(pilot, "y")
        shown = screen_text(app)
        assert "rolled back and checked" in shown, shown
        # The runs table, refilled after the rollback, shows each cell whole (not cut to its header).
        assert f"{app.session.run.id}  move     rolled back" in shown, shown

    assert engine_env.read_bytes() == env_before
    assert await pg_counts(pg_url) == {}
    assert sha256(engine_db) == source_sha


async def test_ctrl_r_carries_the_rows_back_before_it_restores_env_switched_on_the_finish_screen(
        tmp_path: Path, engine_db: Path, pg_url: str) -> None:
    """.env without OPENAI_API_KEY: the Finish screen's switch writes nothing to the target, so the end state,
    recorded before it, is older than the switch; the rollback still carries the rows back first, as its
    confirmation says ("before .env points at it again") and as after the CLI's move."""
    env = tmp_path / ".env"
    env.write_text(f'DATABASE_URL="sqlite:///{engine_db}"\n')
    env_before = env.read_bytes()
    app = make_app(tmp_path / "state", env_file=env, source_text=database_url(env), target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _move_to_verify(pilot, app)
        await press(pilot, "n", "a", "y")  # Finish, switch .env
        assert env.read_bytes() != env_before
        await asyncio.to_thread(execute, pg_url, "INSERT INTO executions (workflow_id, status) "
                                                 "SELECT id, 'written since' FROM workflows LIMIT 1")
        await press(pilot, "ctrl+r")
        question = app.screen.question
        assert "before .env points at it again" in question, question
        assert question.index("1. carry the 1 row(s)") < question.index(f"2. restore {env}"), question
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)

    undone = [r["action"] for r in app.session.run.records() if r["kind"] == "undo_done"]
    assert undone == ["carry_back", "restore_env", "drop_tables"]
    assert env.read_bytes() == env_before
    with sqlite3.connect(engine_db) as conn:
        assert conn.execute("SELECT count(*) FROM executions WHERE status = 'written since'").fetchone() == (1,)


async def test_ctrl_r_says_it_is_reading_takes_no_key_meanwhile_and_escape_gives_the_read_up(
        tmp_path: Path, engine_db: Path, engine_env: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before it asks, a rollback reads every row of the target: on a large database that takes a while (about
    20 s at 1M executions on a busy 2-core machine), during which the screen used to show nothing new. Here
    the read is held until the test lets it go, as a large database would hold it."""
    held = asyncio.Event()
    measure = commands.rollback_plan

    async def held_measure(*args: object, **kwargs: object) -> object:
        await held.wait()
        return await measure(*args, **kwargs)

    monkeypatch.setattr(commands, "rollback_plan", held_measure)
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env), target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _move_to_verify(pilot, app)
        await press(pilot, "n", "a", "y")  # Finish, switch .env
        env_after, counts = engine_env.read_bytes(), await pg_counts(pg_url)
        await pilot.press("ctrl+r")
        await pilot.pause(0.2)
        assert "Reading every row of the database the run left" in screen_text(app), screen_text(app)
        reading = [w for w in app.workers if w.group == "rollback-plan" and w.is_running]
        await pilot.press("ctrl+r", "y", "a")  # the read is not started again; no key reaches the screen beneath
        await pilot.pause(0.2)
        assert [w for w in app.workers if w.group == "rollback-plan" and w.is_running] == reading
        assert len(reading) == 1 and "Reading every row" in screen_text(app), screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert reading[0].is_cancelled
        shown = screen_text(app)
        assert "Reading every row" not in shown and "Roll back?" not in shown and "step 7 of 7" in shown, shown

        held.set()
        await press(pilot, "ctrl+r")  # read to its end, the choices follow
        assert "Roll back?" in screen_text(app), screen_text(app)
        await press(pilot, "n")
    assert engine_env.read_bytes() == env_after and await pg_counts(pg_url) == counts


async def test_upgrade_in_place_journey(tmp_path: Path, engine_db: Path) -> None:
    source_sha = sha256(engine_db)
    counts = sqlite_counts(engine_db)
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter")  # Upgrade in place
        shown = screen_text(app)
        assert "step 1 of 3" in shown and "0004" in shown and "baseline" in shown, shown
        assert "--yes" not in shown  # keys and screens, never the CLI's flags
        await press(pilot, "a")  # asks first: the database, the revisions from and to
        shown = screen_text(app)
        assert "Upgrade?" in shown and engine_db.name in shown and f"to {head()}" in shown, shown
        assert app.session.log.state == "waiting" and sha256(engine_db) == source_sha
        await press(pilot, "y")
        assert app.session.log.state == "done", app.session.log.error
        await press(pilot, "n")
        shown = screen_text(app)
        assert "Backup proven" in shown and "integrity_check: ok" in shown, shown
        backup = app.session.log.steps["backup"].data
        await press(pilot, "n")
        assert "step 3 of 3" in screen_text(app)

    assert sqlite_revision(engine_db) == head()
    assert sqlite_counts(engine_db) == counts
    assert backup["original_sha256"] == source_sha and Path(backup["path"]).is_file()


async def test_rollback_from_the_runs_screen(tmp_path: Path, engine_db: Path) -> None:
    from wizard.events import ignore
    from wizard.upgrade import run_upgrade

    source_sha = sha256(engine_db)
    state = tmp_path / "state"
    db = parse_url(f"sqlite:///{engine_db}")
    await run_upgrade(db, head(), state, ignore, accept_baseline=True, stop=None)
    assert sha256(engine_db) != source_sha

    app = make_app(state, source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter")  # Roll back a run (every run in the journal)
        shown = screen_text(app)
        assert "upgrade" in shown and "finished" in shown, shown
        await press(pilot, "ctrl+r")
        assert "Roll back?" in screen_text(app)
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)

    assert sha256(engine_db) == source_sha
    assert sqlite_revision(engine_db) is None


async def test_move_with_quarantine_chosen_on_the_preflight_screen(tmp_path: Path, pg_url: str) -> None:
    from wizard import sample
    from wizard.verify.run import load_quarantine

    db = sample.build_dirty(tmp_path / "dirty.db", executions=400)
    source_sha = sha256(db)
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        assert "Cannot start" in screen_text(app), screen_text(app)
        await press(pilot, "n")
        assert app.session.log.state == "waiting"  # greyed out: nothing started
        await press(pilot, "tab")  # the scan: what each finding is and its example keys, whole at 80 columns
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if "example keys" in line)
        what, keys = header.index("what"), header.index("example keys")
        rows = lines[lines.index(header) + 1:-4]
        assert "a value that is not a boolean in a boolean column" in " ".join(
            line[what:keys].strip() for line in rows), screen_text(app)
        assert "00000000-0000-4000-8000-0000000000b1" in "".join(  # broken only after a separator
            line[keys:keys + 21].strip() for line in rows), screen_text(app)
        await press(pilot, "tab")  # the policy
        await press(pilot, "down", "down", "enter")  # quarantine
        assert app.session.policy == "quarantine", screen_text(app)
        assert "n starts the move (policy: quarantine)" in screen_text(app)
        await press(pilot, "n", "y")  # the move, once confirmed
        assert app.session.log.state == "done", app.session.log.error
        await press(pilot, "n", "n", "n")
        shown = screen_text(app)
        assert "Every row accounted for" in shown, shown
        run_folder = app.session.run.folder

    quarantined = load_quarantine(run_folder)
    assert sum(len(keys) for keys in quarantined.values()) > 0
    target = await pg_counts(pg_url)
    source = sqlite_counts(db)
    assert {t: target[t] + len(quarantined.get(t, ())) for t in target} == source
    assert sha256(db) == source_sha



async def test_onto_mariadb_the_preflight_screen_names_what_it_cannot_hold(tmp_path: Path, engine_db: Path,
                                                                         mysql_url: str) -> None:
    """The scan's findings for a MySQL target on the pre-flight screen, in MariaDB's name; quarantine moves the rest."""
    from textual.widgets import DataTable

    from wizard.verify.run import load_quarantine

    with sqlite3.connect(engine_db) as conn:
        conn.execute("INSERT INTO users (id, username) VALUES ('u-long', ?)", ("x" * 300,))
    source_sha = sha256(engine_db)
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=mysql_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        shown = screen_text(app)
        assert "Cannot start" in shown and "PostgreSQL" not in shown, shown
        scan = app.screen.query_one("#scan", DataTable)
        rows = [[str(cell) for cell in scan.get_row_at(i)] for i in range(scan.row_count)]
        assert rows == [["users", "username", "1", "text longer than 255 characters, the most MariaDB's varchar(255) "
                                                   "takes", "u-long"]], rows
        assert "Rows MariaDB will not take as they are" in str(app.screen.query_one("#policy-title").render())
        await press(pilot, "tab", "tab", "down", "down", "enter")  # the checks, the scan, then quarantine
        assert "n starts the move (policy: quarantine)" in screen_text(app), screen_text(app)
        await press(pilot, "n", "y")
        assert app.session.log.state == "done", app.session.log.error
        run_folder = app.session.run.folder

    held = load_quarantine(run_folder)
    assert {t: len(keys) for t, keys in held.items()} == {"users": 1}, held
    moved = {t: (await asyncio.to_thread(read, mysql_url, f"SELECT count(*) FROM {t}"))[0][0] for t in ENGINE_TABLES}
    assert {t: moved[t] + len(held.get(t, ())) for t in moved} == sqlite_counts(engine_db)
    assert sha256(engine_db) == source_sha

async def test_sighup_mid_move_stops_at_a_checkpoint_and_start_offers_resume(tmp_path: Path, engine_db: Path,
                                                                            pg_url: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from screens.copy import CopyScreen
    from wizard.journal import INTERRUPTED, list_runs
    from wizard.move import run as move_run

    copy_table = move_run.copy_table

    async def hang_up_once_copying(*args: object, **kw: object) -> object:
        # The SSH session is lost while the first table is copied: a real SIGHUP to this process. (Sent when the
        # screen showed the copy, it could come after the few rows were all in, and the move then finished.)
        if not app.session.stop.is_set():
            os.kill(os.getpid(), signal.SIGHUP)
        return await copy_table(*args, **kw)

    monkeypatch.setattr(move_run, "copy_table", hang_up_once_copying)
    state = tmp_path / "state"
    app = make_app(state, source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n", "y")
    assert app.return_code == 130, (app.session.log.state, app.session.log.lines, app.session.stop.reason)
    (run,) = list_runs(state)
    assert run.state() == INTERRUPTED
    monkeypatch.setattr(move_run, "copy_table", copy_table)

    # The next wizard offers Resume first; it carries on to a full, verified target.
    app = make_app(state, source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert f"Resume run {run.id}" in screen_text(app)
        await press(pilot, "enter")  # Resume: the target comes back from the journal (no password in it)
        await press(pilot, "ctrl+t")
        # The target holds the run's partial copy: the test says so, not a plain "Ready." of an empty target.
        assert f"holds the partial copy of run {run.id}" in screen_text(app), screen_text(app)
        await press(pilot, "ctrl+n")
        assert isinstance(app.screen, CopyScreen)
        assert app.session.log.state == "done", app.session.log.error
        await press(pilot, "n")
        assert "Every row accounted for" in screen_text(app), screen_text(app)
    assert await pg_counts(pg_url) == sqlite_counts(engine_db)
    assert run.state() == "finished"


async def test_sighup_on_an_idle_screen_exits_130_and_starts_nothing(tmp_path: Path, engine_db: Path) -> None:
    import os
    import signal

    from wizard.journal import list_runs

    state = tmp_path / "state"
    app = make_app(state, source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        os.kill(os.getpid(), signal.SIGHUP)  # the SSH session lost while the operator reads the Start screen
        await settle(pilot)
    assert app.return_code == 130
    assert list_runs(state) == []


@pytest.mark.slow  # 7 s or more: run by `pytest -m slow`
async def test_move_options_an_operator_sets_by_key(tmp_path: Path, engine_db: Path, pg_url: str) -> None:
    """What `wizard migrate --jobs --to` and `wizard verify --report` take, by keys: one job, the target upgraded
    to head after the move, the verification's report written where the operator says."""
    report = tmp_path / "reports" / "move.md"
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        await press(pilot, "J")  # 2 -> 1
        await press(pilot, *["t"] * (len(app.screen._upgrade_choices()) - 1))  # the last choice: head
        shown = screen_text(app)
        assert "Jobs: 1 (j/J)" in shown and f"then upgrade to: {head()}" in shown, shown
        await press(pilot, "n", "y")
        assert app.session.log.state == "done", app.session.log.error
        assert app.session.log.steps["upgrade"].state == "done"
        await press(pilot, "n", "n", "n")
        assert "Every row accounted for" in screen_text(app), screen_text(app)
        await press(pilot, "w")
        assert "Report to" in screen_text(app)
        await press(pilot, "ctrl+u")  # clear the suggested path
        await pilot.press(*str(report))
        await press(pilot, "enter")
        shown = screen_text(app)
        assert "Report:" in shown and str(report) in shown, shown  # the path whole, on a line of its own
        started = app.session.run.started()

    assert started["to"] == head() and started["jobs"] == 1
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head()
    finally:
        await conn.close()
    assert report.is_file() and report.with_suffix(".json").is_file()
    assert oct(report.stat().st_mode & 0o777) == "0o600"

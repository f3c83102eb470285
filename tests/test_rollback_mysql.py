"""Rollback of a move with MySQL/MariaDB on either side keeps what the engine wrote since, through the real `wizard`.

SQLite -> MariaDB: the rows the engine wrote to MariaDB are carried back into the SQLite file. MariaDB ->
PostgreSQL: the rows it wrote to PostgreSQL are carried back into the MariaDB source. The engine's writes are
plain SQL on the database it was handed (inserts, updates, deletes in several tables, with microseconds, JSON,
booleans, NULLs, emoji and odd text); what the rollback leaves is read back directly (pymysql, sqlite3,
asyncpg), never through the wizard's own comparison, row by row: every row touched since equals the engine's
row, every other row is byte for byte what the source held.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

import asyncpg
import pytest

from engine_data import build_1_0_0, read
from move_helpers import execute, fetch, pg, sha256, tables_in
from test_cli_errors import wizard
from tui_support import make_app, press, screen_text, settle
from wizard.backup import backup_env
from wizard.db import connect_mysql_sync
from wizard.errors import BadInput, StepError
from wizard.journal import load_run, new_run
from wizard.rollback import carry_mysql
from wizard.rollback import run as rollback_run_module
from wizard.rollback.run import Credentials, rollback_run
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # MySQL rollbacks, each a whole journey on a MariaDB server: `pytest -m slow` runs them

ENGINE = ("users", "workflows", "executions", "settings")
TIMES = {"created_at", "updated_at", "started_at", "completed_at"}
EMOJI = "deploy \U0001f680 \u00e9t\u00e9 \u2713"
ODD = "tab\there\nline\\N \\ back\\slash 'quoted' \"double\" end"
DOCUMENT = '{"nodes": [{"id": "a", "emoji": "\U0001f680"}], "n": null, "ok": true}'
Rows = dict[str, dict[Any, tuple]]


def _mysql(url: str, *statements: tuple[str, tuple]) -> None:
    conn = connect_mysql_sync(parse_url(url))
    try:
        with conn.cursor() as cur:
            for sql, params in statements:
                cur.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _mysql_columns(url: str) -> dict[str, list[str]]:
    conn = connect_mysql_sync(parse_url(url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                        "DATABASE() ORDER BY table_name, ordinal_position")
            out: dict[str, list[str]] = {}
            for table, column in cur.fetchall():
                out.setdefault(table, []).append(column)
        return {t: out[t] for t in ENGINE}
    finally:
        conn.close()


def mysql_rows(url: str, columns: dict[str, list[str]]) -> Rows:
    conn = connect_mysql_sync(parse_url(url))
    try:
        with conn.cursor() as cur:
            out = {}
            for table in ENGINE:
                cur.execute(f"SELECT {', '.join(columns[table])} FROM {table}")
                out[table] = {r[0]: tuple(r) for r in cur.fetchall()}
        return out
    finally:
        conn.close()


def sqlite_rows(path: Path, columns: dict[str, list[str]]) -> Rows:
    db = sqlite3.connect(path)
    try:
        return {t: {r[0]: tuple(r) for r in db.execute(f"SELECT {', '.join(columns[t])} FROM {t}")} for t in ENGINE}
    finally:
        db.close()


def pg_rows(url: str, columns: dict[str, list[str]]) -> Rows:
    async def read() -> Rows:
        conn = await asyncpg.connect(pg(url))
        try:
            return {t: {r[0]: tuple(r) for r in await conn.fetch(f"SELECT {', '.join(columns[t])} FROM {t}")}
                    for t in ENGINE}
        finally:
            await conn.close()

    return asyncio.run(read())


def _meaning(column: str, value: Any) -> Any:
    """A value as the engine means it, whichever database holds it: a timestamp to the microsecond (SQLite keeps
    its text), a boolean as 0 or 1; everything else as it is (JSON and text: their exact text)."""
    if isinstance(value, str) and column in TIMES:
        return dt.datetime.fromisoformat(value)
    return int(value) if isinstance(value, bool) else value


def touched(moved: Rows, written: Rows) -> dict[str, set]:
    """Per table, the keys the engine added or changed since the move (rows as the engine's database held them)."""
    return {t: {k for k, row in written[t].items() if moved[t].get(k) != row} for t in ENGINE}


def assert_carried(before: Rows, written: Rows, after: Rows, changed: dict[str, set],
                   columns: dict[str, list[str]]) -> None:
    """`after` (the source after the rollback) has the engine's keys; each row it touched means the engine's row,
    every other row is the source's own, value for value."""
    for t in ENGINE:
        assert set(after[t]) == set(written[t]), t
        for k, row in after[t].items():
            if k in changed[t]:
                meant = [(_meaning(c, a), _meaning(c, b)) for c, a, b in zip(columns[t], row, written[t][k])]
                assert [a for a, _ in meant] == [b for _, b in meant], (t, k)
            else:
                assert row == before[t][k], (t, k)


# --- SQLite -> MariaDB: the rows written to MariaDB go back into the file ---


def _engine_writes_mysql(url: str) -> None:
    top = "(SELECT id FROM (SELECT {c} id FROM {t}) x)"
    _mysql(url,
           ("INSERT INTO users (id, username, email, is_active, is_admin, created_at) VALUES (%s, %s, NULL, 1, 0, %s)",
            ("u-new", EMOJI, "2026-12-07 01:02:03.456789")),
           ("INSERT INTO workflows (id, name, description, definition, owner_id, is_public, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, 1, %s, NULL)",
            ("wf-new", EMOJI, ODD, DOCUMENT, "u-new", "2026-12-07 01:02:03.000001")),
           ("INSERT INTO executions (workflow_id, status, state, error, started_at, completed_at) SELECT 'wf-new', "
            "'completed', %s, NULL, %s, NULL FROM executions ORDER BY id LIMIT 20", (DOCUMENT, "2026-12-07 23:59:59.999999")),
           ("UPDATE workflows SET name = CONCAT(name, ' (renamed \u2713)'), is_public = 0, description = NULL "
            f"WHERE id IN {top.format(c='id', t='workflows ORDER BY id LIMIT 3')}", ()),
           (f"UPDATE users SET email = NULL, is_active = 0 WHERE id = {top.format(c='min(id)', t='users')}", ()),
           ("DELETE FROM executions WHERE id IN (7, 8)", ()),
           ("UPDATE settings SET settings_data = %s, updated_at = %s", ('{"theme": "dark \U0001f319", "n": null}',
                                                                          "2026-12-07 00:00:00.000007")))


def _onto(engine_db: Path, mysql_url: str) -> tuple[Path, bytes]:
    folder = engine_db.parent
    env = folder / ".env"
    env.write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\nDEBUG=1\n")
    before = env.read_bytes()
    moved = wizard("migrate", "--source", "sqlite:///engine.db", "--target", mysql_url, "--env-file", ".env", "--yes",
                   cwd=folder)
    assert moved.returncode == 0, moved.stderr
    return folder, before


def test_a_move_onto_mariadb_rolled_back_carries_the_rows_written_since_into_the_file(engine_db: Path, mysql_url: str):
    folder, env_before = _onto(engine_db, mysql_url)
    columns = _mysql_columns(mysql_url)
    file_before = sqlite_rows(engine_db, columns)
    moved = mysql_rows(mysql_url, columns)
    _engine_writes_mysql(mysql_url)
    written = mysql_rows(mysql_url, columns)
    changed = touched(moved, written)
    assert {t: len(k) for t, k in changed.items()} == {"users": 2, "workflows": 4, "executions": 20, "settings": 1}
    file_sha = sha256(engine_db)

    shown = wizard("rollback", "--last", cwd=folder)  # no terminal to confirm on: shows, refuses, changes nothing
    assert shown.returncode == 3, shown.stderr
    said = " ".join(shown.stdout.split())
    assert ("holds: executions +20, 2 removed, settings 1 changed, users +1, 1 changed, workflows +1, 3 changed"
            in said)
    assert "the 29 row(s) written since are carried back into the SQLite file" in said
    assert sha256(engine_db) == file_sha and mysql_rows(mysql_url, columns) == written

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "carried 29 row(s) written since the move back into" in said and "checked row by row" in said
    assert (folder / ".env").read_bytes() == env_before
    conn = connect_mysql_sync(parse_url(mysql_url))
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
    conn.close()
    after = sqlite_rows(engine_db, columns)
    assert_carried(file_before, written, after, changed, columns)
    db = sqlite3.connect(engine_db)
    assert db.execute("SELECT name, description, definition FROM workflows WHERE id = 'wf-new'").fetchone() == (
        EMOJI, ODD, DOCUMENT)
    assert db.execute("SELECT started_at FROM executions WHERE id = (SELECT max(id) FROM executions)").fetchone() == (
        "2026-12-07 23:59:59.999999",)  # the engine's SQLite spelling (SQLAlchemy's), microseconds kept
    top = db.execute("SELECT max(id) FROM executions").fetchone()[0]
    assert top == max(written["executions"])
    new = db.execute("INSERT INTO executions (workflow_id, status) VALUES ('wf-new', 'next')").lastrowid
    assert new == top + 1  # the engine's next id after the carried ones
    db.close()


@pytest.mark.slow  # the same sha256 check as the move to PostgreSQL's (tests/test_rollback_since.py), on MariaDB
def test_a_file_written_since_a_move_onto_mariadb_is_refused_with_nothing_changed(engine_db: Path, mysql_url: str):
    folder, _ = _onto(engine_db, mysql_url)
    _engine_writes_mysql(mysql_url)
    db = sqlite3.connect(engine_db)
    db.execute("UPDATE executions SET status = 'edited by hand' WHERE id = 9")
    db.commit()
    db.close()
    file_sha, env_after = sha256(engine_db), (folder / ".env").read_bytes()
    columns = _mysql_columns(mysql_url)
    written = mysql_rows(mysql_url, columns)
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3, refused.stderr
    assert "was written since the move too" in refused.stderr and "executions" in refused.stderr
    assert sha256(engine_db) == file_sha and (folder / ".env").read_bytes() == env_after
    assert mysql_rows(mysql_url, columns) == written


def test_rows_written_since_a_newer_engine_migrated_mariadb_are_refused_with_nothing_changed(engine_db: Path,
                                                                                             mysql_url: str):
    """As on PostgreSQL (test_rollback_since): a column the engine's own migration added to the MariaDB target,
    and a row written with it, refused up front rather than carried back without the column's value."""
    folder, _ = _onto(engine_db, mysql_url)
    _mysql(mysql_url, ("ALTER TABLE executions ADD COLUMN priority INT", ()),
           ("INSERT INTO executions (id, workflow_id, status, priority) SELECT 900, workflow_id, 'queued', 7 "
            "FROM executions WHERE id = 1", ()))
    file_sha, env_after = sha256(engine_db), (folder / ".env").read_bytes()
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    assert "executions has extra priority: the engine changed its schema since the move" in refused.stderr
    assert sha256(engine_db) == file_sha and (folder / ".env").read_bytes() == env_after
    assert read(mysql_url, "SELECT priority FROM executions WHERE id = 900") == [(7,)]


# --- MariaDB -> PostgreSQL: the rows written to PostgreSQL go back into MariaDB ---


def _engine_writes_pg(url: str) -> None:
    async def write() -> None:
        conn = await asyncpg.connect(pg(url))
        try:
            await conn.execute("INSERT INTO users (id, username, email, is_active, is_admin, created_at) "
                               "VALUES ('u-new', $1, NULL, true, false, $2)", EMOJI,
                               dt.datetime(2026, 12, 7, 1, 2, 3, 456789))
            await conn.execute("INSERT INTO workflows (id, name, description, definition, owner_id, is_public, "
                               "created_at) VALUES ('wf-new', $1, $2, $3::json, 'u-new', true, $4)", EMOJI, ODD,
                               DOCUMENT, dt.datetime(2026, 12, 7, 1, 2, 3, 1))
            await conn.execute("INSERT INTO executions (workflow_id, status, state, started_at) SELECT 'wf-new', "
                               "'completed', $1::json, $2 FROM executions ORDER BY id LIMIT 20", DOCUMENT,
                               dt.datetime(2026, 12, 7, 23, 59, 59, 999999))
            await conn.execute("UPDATE workflows SET name = name || ' (renamed \u2713)', is_public = false, "
                               "description = NULL WHERE id IN (SELECT id FROM workflows ORDER BY id LIMIT 3)")
            await conn.execute("UPDATE users SET email = NULL, is_active = false WHERE id = (SELECT min(id) FROM users)")
            await conn.execute("DELETE FROM executions WHERE id IN (7, 8)")
            await conn.execute("UPDATE settings SET settings_data = $1::json", '{"theme": "dark \U0001f319"}')
        finally:
            await conn.close()

    asyncio.run(write())


@pytest.fixture
def mysql_source(engine_db: Path, mysql_url: str) -> str:
    return build_1_0_0(mysql_url, engine_db)


def _off(mysql_source: str, pg_url: str, folder: Path, *extra: str) -> bytes:
    env = folder / ".env"
    env.write_text(f"DATABASE_URL={mysql_source}\nOPENAI_API_KEY=sk-test1234567890abcd\nDEBUG=1\n")
    before = env.read_bytes()
    moved = wizard("migrate", "--source", mysql_source, "--target", pg_url, "--env-file", ".env", "--yes", *extra,
                   cwd=folder)
    assert moved.returncode == 0, moved.stderr
    return before


@pytest.mark.slow  # 7 s or more: run by `pytest -m slow`
def test_a_move_off_mariadb_rolled_back_carries_the_rows_written_since_into_mariadb(mysql_source: str, pg_url: str,
                                                                                   tmp_path: Path):
    folder = tmp_path / "engine"
    folder.mkdir()
    columns = _mysql_columns(mysql_source)
    source_before = mysql_rows(mysql_source, columns)
    env_before = _off(mysql_source, pg_url, folder)
    moved = pg_rows(pg_url, columns)
    _engine_writes_pg(pg_url)
    written = pg_rows(pg_url, columns)
    changed = touched(moved, written)
    assert {t: len(k) for t, k in changed.items()} == {"users": 2, "workflows": 4, "executions": 20, "settings": 1}

    shown = wizard("rollback", "--last", cwd=folder)
    assert shown.returncode == 3, shown.stderr
    said = " ".join(shown.stdout.split())
    assert ("holds: executions +20, 2 removed, settings 1 changed, users +1, 1 changed, workflows +1, 3 changed"
            in said)
    assert "the 29 row(s) written since are carried back into the MySQL database" in said
    assert f"back into MySQL database {parse_url(mysql_source).database}: its CHECKSUM TABLE first" in said
    assert mysql_rows(mysql_source, columns) == source_before

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "carried 29 row(s) written since the move back into database" in said and "checked row by row" in said
    assert (folder / ".env").read_bytes() == env_before
    assert not [t for t in tables_in(pg_url) if t in ENGINE]
    after = mysql_rows(mysql_source, columns)
    assert_carried(source_before, written, after, changed, columns)
    new_workflow = after["workflows"]["wf-new"]
    assert new_workflow[columns["workflows"].index("definition")] == DOCUMENT
    assert new_workflow[columns["workflows"].index("description")] == ODD
    carried = max(written["executions"])
    assert after["executions"][carried][columns["executions"].index("started_at")] == dt.datetime(
        2026, 12, 7, 23, 59, 59, 999999)
    _mysql(mysql_source, ("INSERT INTO executions (workflow_id, status) VALUES ('wf-new', 'next')", ()))
    conn = connect_mysql_sync(parse_url(mysql_source))
    with conn.cursor() as cur:
        cur.execute("SELECT max(id) FROM executions")
        assert cur.fetchone()[0] == carried + 1  # AUTO_INCREMENT past the ids carried back
    conn.close()


def test_a_mariadb_source_written_since_the_move_too_is_refused_naming_keys(mysql_source: str, pg_url: str,
                                                                           tmp_path: Path):
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    execute(pg_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'new' FROM executions LIMIT 1")
    _mysql(mysql_source, ("UPDATE executions SET status = 'edited by hand' WHERE id = 9", ()))
    columns = _mysql_columns(mysql_source)
    source_now, target_now = mysql_rows(mysql_source, columns), pg_rows(pg_url, columns)
    env_after = (folder / ".env").read_bytes()
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3, refused.stderr
    assert "was written since the move too (CHECKSUM TABLE of executions is not the move's)" in refused.stderr
    assert "executions 9" in refused.stderr
    assert mysql_rows(mysql_source, columns) == source_now and pg_rows(pg_url, columns) == target_now
    assert (folder / ".env").read_bytes() == env_after



def test_a_wrong_carry_back_into_mariadb_is_caught_and_the_source_restored(mysql_source: str, pg_url: str,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof is the row-level verification, not the carry-back's own reading: plant a wrong value (the
    microseconds lost), see it fail, the source back as the move's dump held it, nothing else undone. .env still
    names the target, so the engine writes on; the next rollback measures again and carries those rows too (it
    went on with the failed one's measure, and so stopped at every retry: the target differed from it)."""
    folder = tmp_path / "engine"
    folder.mkdir()
    columns = _mysql_columns(mysql_source)
    source_before = mysql_rows(mysql_source, columns)
    _off(mysql_source, pg_url, folder)
    _engine_writes_pg(pg_url)
    written = pg_rows(pg_url, columns)
    env_after = (folder / ".env").read_bytes()
    plant_lost_microseconds(monkeypatch)
    with pytest.raises(StepError, match="it differs from the target .* restored from the move's backup"):
        asyncio.run(rollback_run(load_run(folder / ".wizard"), lambda e: None, env_file=folder / ".env"))
    assert mysql_rows(mysql_source, columns) == source_before
    assert pg_rows(pg_url, columns) == written and (folder / ".env").read_bytes() == env_after
    monkeypatch.undo()
    execute(pg_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'after the failure' "
                    "FROM executions ORDER BY id LIMIT 1", "UPDATE executions SET status = 'changed after' WHERE id = 1")
    on_target = pg_rows(pg_url, columns)

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert mysql_rows(mysql_source, columns) == on_target and tables_in(pg_url) == []


def plant_lost_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A carry-back that reads the rows written since with their microseconds lost: a wrong value the
    verification after it must catch."""
    right = carry_mysql.read_written

    async def microseconds_lost(*args: Any) -> Any:
        rows = await right(*args)
        return {t: [(k, tuple(v.replace(microsecond=0) if isinstance(v, dt.datetime) else v for v in values))
                    for k, values in found] for t, found in rows.items()}

    monkeypatch.setattr(carry_mysql, "read_written", microseconds_lost)


async def test_ctrl_r_on_the_runs_screen_carries_a_move_off_mariadb_back(mysql_source: str, pg_url: str,
                                                                         tmp_path: Path) -> None:
    """The TUI's confirmation says what was written since and where it goes, as for PostgreSQL; y does it."""
    folder = tmp_path / "engine"
    folder.mkdir()
    columns = _mysql_columns(mysql_source)
    env_before = await asyncio.to_thread(_off, mysql_source, pg_url, folder)
    await asyncio.to_thread(execute, pg_url, "DELETE FROM executions WHERE id = 5",
                            "UPDATE workflows SET name = 'renamed' WHERE id = (SELECT min(id) FROM workflows)")
    written = await asyncio.to_thread(pg_rows, pg_url, columns)
    app = make_app(folder / ".wizard", env_file=folder / ".env", source_text=mysql_source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter", "ctrl+r")  # Roll back a run, then the run's rollback
        shown = " ".join(screen_text(app).split())
        assert "Roll back?" in shown and "executions 1 removed" in shown and "workflows 1 changed" in shown, shown
        assert "carried back into the MySQL" in shown and "back into MySQL database" in shown, shown
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)
    assert (folder / ".env").read_bytes() == env_before
    after = await asyncio.to_thread(mysql_rows, mysql_source, columns)
    assert set(after["executions"]) == set(written["executions"]) and 5 not in after["executions"]
    assert [r[1] for k, r in after["workflows"].items() if k == min(written["workflows"])] == ["renamed"]


def test_a_mysql_sources_password_comes_back_from_mysql_pwd_or_the_runs_copy_of_env(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a move off MySQL, .env names the target: the source's password is in the run's copy of .env."""
    masked = "mysql://app:***@db.example:3306/engine"
    monkeypatch.delenv("MYSQL_PWD", raising=False)
    monkeypatch.setenv("PGPASSWORD", "not-mysqls")
    with pytest.raises(BadInput, match="pass --db with the full URL, or set MYSQL_PWD"):
        Credentials().resolve(masked)
    env = tmp_path / ".env"
    env.write_text("DATABASE_URL=mysql://app:from-copy@db.example/engine\n")  # the port left out: MySQL's 3306
    run = new_run(tmp_path / "state", "move")
    record = backup_env(env, run.folder)
    run.step_finished("switch", undo={"action": "restore_env", "env_file": str(env), "backup": record.to_dict()})
    env.write_text('DATABASE_URL="postgresql+asyncpg://app:pg@pg.example/engine"\n')
    assert Credentials(env_file=env).with_env_copies(run).resolve(masked).url.password == "from-copy"
    target = parse_url("postgresql://app:given@pg.example/engine")  # --db names the move's target
    assert Credentials(db_override=target).with_env_copies(run).resolve(masked).url.password == "from-copy"
    monkeypatch.setenv("MYSQL_PWD", "from-mysql-pwd")
    assert Credentials().resolve(masked).url.password == "from-mysql-pwd"


def test_an_env_journaled_by_a_relative_path_is_restored_where_it_was_from_any_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch journals .env's absolute path; a journal that kept it relative (an earlier wizard) is undone
    at the backup's absolute source, never at a .env where the rollback happens to run."""
    folder, elsewhere = tmp_path / "engine", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    env = folder / ".env"
    env.write_bytes(b"DATABASE_URL=sqlite:///engine.db\n")
    monkeypatch.chdir(folder)
    run = new_run(tmp_path / "state", "move")
    record = backup_env(Path(".env"), run.folder)
    run.step_finished("switch", undo={"action": "restore_env", "env_file": ".env", "backup": record.to_dict()})
    env.write_bytes(b"DATABASE_URL=postgresql://app@db/engine\n")
    monkeypatch.chdir(elsewhere)
    asyncio.run(rollback_run(load_run(tmp_path / "state"), lambda e: None))
    assert env.read_bytes() == b"DATABASE_URL=sqlite:///engine.db\n" and not (elsewhere / ".env").exists()


@pytest.mark.slow  # a move to head and its downgrade: over 15 s here
def test_a_move_off_mariadb_to_head_carries_rows_back_at_the_sources_revision(mysql_source: str, pg_url: str,
                                                                             tmp_path: Path) -> None:
    """The target went `--to head`: it is downgraded to the source's 1.0.0 shape first (0004's node arrays back to
    objects, 0002's tags saved to the run folder), then the rows go into MariaDB."""
    folder = tmp_path / "engine"
    folder.mkdir()
    env = folder / ".env"
    env.write_text(f"DATABASE_URL={mysql_source}\n")
    moved = wizard("migrate", "--source", mysql_source, "--target", pg_url, "--env-file", ".env", "--yes",
                   "--to", "head", cwd=folder)
    assert moved.returncode == 0, moved.stderr
    execute(pg_url, "INSERT INTO executions (workflow_id, status, state) SELECT id, 'running', "
                    "'{\"nodes\": [{\"id\": \"a\", \"x\": 1}]}' FROM workflows ORDER BY id LIMIT 1",
            "UPDATE workflows SET tags = '[\"prod\"]' WHERE id = (SELECT min(id) FROM workflows)")
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    conn = connect_mysql_sync(parse_url(mysql_source))
    with conn.cursor() as cur:
        cur.execute("SELECT state FROM executions WHERE id = (SELECT max(id) FROM executions)")
        assert json.loads(cur.fetchone()[0]) == {"nodes": {"a": {"x": 1}}}
        cur.execute("SHOW COLUMNS FROM workflows LIKE 'tags'")
        assert cur.fetchall() == ()
        cur.execute("SHOW TABLES LIKE 'alembic_version'")
        assert cur.fetchall() == ()  # 1.0.0, as the source was
    conn.close()
    (run_folder,) = (folder / ".wizard" / "runs").iterdir()
    assert '"prod"' in (run_folder / "dropped" / "workflows.jsonl").read_text()


@pytest.mark.slow  # 7 s or more each: run by `pytest -m slow`
@pytest.mark.parametrize("charset, value, holds, to", [
    ("latin1", "deploy \U0001f680", False, ()),  # an emoji: not in latin1
    ("utf8mb3", "deploy \U0001f680 \u00e9t\u00e9", False, ()),  # no character past U+FFFF in utf8mb3
    ("latin1", "deploy \U0001f680", False, ("--to", "head")),  # refused before the target is downgraded
    ("latin1", "caf\u00e9 \u20ac 5 \u00bd", True, ()),  # é € ½: all in MySQL's latin1 (cp1252)
], ids=["latin1-emoji", "utf8mb3-emoji", "latin1-emoji-to-head", "latin1-holds"])
def test_a_carry_back_into_a_narrower_source_column_refuses_what_it_cannot_hold(
        mysql_source: str, pg_url: str, tmp_path: Path, charset: str, value: str, holds: bool,
        to: tuple[str, ...]) -> None:
    """A move off MariaDB whose workflows.name is latin1 or utf8mb3 (a source may be narrower: nothing is lost
    reading it); the engine writes text into PostgreSQL; the rollback refuses in one line, nothing changed, when a
    value would lose a character in the source's column (MySQL would store '?'), and carries it exactly when not."""
    conn = connect_mysql_sync(parse_url(mysql_source))
    with conn.cursor() as cur:
        cur.execute("SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND table_name = 'workflows' AND column_name = 'name'")
        cur.execute(f"ALTER TABLE workflows MODIFY name {cur.fetchone()[0]} CHARACTER SET {charset} NOT NULL")
    conn.close()
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder, *to)
    execute(pg_url, f"UPDATE workflows SET name = '{value}' WHERE id = (SELECT min(id) FROM workflows)")
    revision = pg_revision(pg_url)
    columns = _mysql_columns(mysql_source)
    source_now, target_now = mysql_rows(mysql_source, columns), pg_rows(pg_url, columns)
    env_now = (folder / ".env").read_bytes()
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    if holds:
        assert done.returncode == 0, done.stderr
        (key,) = [k for k, row in target_now["workflows"].items() if row[columns["workflows"].index("name")] == value]
        assert mysql_rows(mysql_source, columns)["workflows"][key] == target_now["workflows"][key]
        return
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1], done.stderr
    assert "workflows.name" in errors[0] and f"character set {charset}" in errors[0], done.stderr
    assert mysql_rows(mysql_source, columns) == source_now and pg_rows(pg_url, columns) == target_now
    assert (folder / ".env").read_bytes() == env_now and pg_revision(pg_url) == revision


def _refused_in_one_line(folder: Path, mysql_source: str, pg_url: str,
                         target: Callable[[], Any] | None = None) -> str:
    """`wizard rollback --last --yes` refused (exit 3) in one line, its last, with no traceback, and the source and
    the target as they were: that line. `target` reads what of the target must stay (pg_rows by default)."""
    columns = _mysql_columns(mysql_source)
    read_target = target or (lambda: pg_rows(pg_url, columns))
    source_now, target_now = mysql_rows(mysql_source, columns), read_target()
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]] and "Traceback" not in done.stderr, done.stderr
    assert mysql_rows(mysql_source, columns) == source_now and read_target() == target_now
    return errors[0]


def test_a_carry_back_refuses_text_longer_than_the_sources_varchar(mysql_source: str, pg_url: str,
                                                                   tmp_path: Path) -> None:
    """PostgreSQL's varchar has no limit, MariaDB's workflows.name is VARCHAR(255): a longer name the engine wrote
    since stopped the carry-back's write with a traceback (Data too long). Refused in one line, nothing changed,
    and foreseen by the plan; a name of exactly 255 characters is carried."""
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    execute(pg_url, "INSERT INTO workflows (id, name, definition) VALUES ('w-256', repeat('n', 256), '{}'), "
                    "('w-255', repeat('n', 255), '{}')")
    shown = " ".join(wizard("rollback", "--last", cwd=folder).stdout.split())
    assert "as things stand it will stop before changing anything: workflows.name is varchar(255)" in shown, shown
    refused = _refused_in_one_line(folder, mysql_source, pg_url)
    assert 'the 256-character value of workflows ["w-256"] written since' in refused, refused

    execute(pg_url, "DELETE FROM workflows WHERE id = 'w-256'")
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert read(mysql_source, "SELECT char_length(name) FROM workflows WHERE id = 'w-255'") == [(255,)]


def test_a_carry_back_larger_than_the_sources_max_allowed_packet_goes_in_statements_that_fit(
        mysql_source: str, pg_url: str, tmp_path: Path) -> None:
    """500 rows an INSERT: twenty 1 MB descriptions written since made one statement past MariaDB's
    max_allowed_packet (16 MiB), and the server dropped the connection mid-write (a traceback). A single row past
    it cannot go in at all: refused in one line, nothing changed."""
    packet = read(mysql_source, "SELECT @@max_allowed_packet")[0][0]
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    execute(pg_url, "INSERT INTO workflows (id, name, description, definition) SELECT 'big-' || n, 'big', "
                    "repeat('x', 1100000), '{}' FROM generate_series(1, 20) n",
            f"INSERT INTO workflows (id, name, description, definition) VALUES ('huge', 'huge', repeat('y', {packet}), "
            "'{}')")
    refused = _refused_in_one_line(folder, mysql_source, pg_url)
    assert 'workflows ["huge"] written since' in refused and "max_allowed_packet" in refused, refused

    execute(pg_url, "DELETE FROM workflows WHERE id = 'huge'")
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert read(mysql_source, "SELECT count(*), sum(char_length(description)) FROM workflows WHERE id LIKE 'big-%'"
                ) == [(20, 22_000_000)]


@pytest.mark.parametrize("document", ["[" * 32 + "]" * 32, '{"a": "\\ud800"}'], ids=["32-deep", "lone-surrogate"])
def test_a_carry_back_refuses_json_the_sources_check_would(mysql_source: str, pg_url: str, tmp_path: Path,
                                                            document: str) -> None:
    """PostgreSQL's json takes JSON that MariaDB's JSON column (its CHECK json_valid) does not: nested 32 deep, a
    lone surrogate escape. Written since, either stopped the carry-back's write with a traceback (CONSTRAINT
    failed); now refused in one line, nothing changed."""
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    execute(pg_url, f"INSERT INTO workflows (id, name, definition) VALUES ('odd', 'odd', '{document}')")
    refused = _refused_in_one_line(folder, mysql_source, pg_url)
    assert refused.startswith('error: workflows.definition in the source takes only JSON its server accepts, and '
                              'the value of workflows ["odd"] written since the move is not'), refused
    # What the refusal offers: --restore-backup, which saves the row (it was refused, the refused rollback having
    # begun without it: "finish it the same way").
    done = wizard("rollback", "--last", "--yes", "--restore-backup", cwd=folder)
    assert done.returncode == 0, done.stderr
    (saved,) = (folder / ".wizard" / "runs").glob("*/written-since/workflows.jsonl")
    assert [json.loads(line)["pk"] for line in saved.read_bytes().splitlines()] == [["odd"]]


@pytest.mark.parametrize("writes, refused", [
    (["INSERT INTO users (id, username) SELECT 'u-new', upper(min(username)) FROM users"], "users.username"),
    (["INSERT INTO workflows (id, name, definition) SELECT upper(min(id)), 'upper', '{}' FROM workflows"],
     "workflows.id"),
    (["INSERT INTO users (id, username) VALUES ('u-1', 'Zed'), ('u-2', 'zed ')"], "users.username"),
    (["UPDATE users SET username = upper(username)"], None),
    (["UPDATE users SET username = 'swapping' WHERE username = 'user0'",
      "UPDATE users SET username = 'user0' WHERE username = 'user1'",
      "UPDATE users SET username = 'user1' WHERE username = 'swapping'"], None),
], ids=["a-username-by-case", "a-key-by-case", "two-written-alike", "own-username-recased", "two-usernames-swapped"])
def test_a_carry_back_into_a_case_blind_source_refuses_what_its_unique_index_would(
        mysql_source: str, pg_url: str, tmp_path: Path, writes: list[str], refused: str | None) -> None:
    """The engine's MariaDB database in the server's default collation (utf8mb4_general_ci: case-, accent- and
    trailing-space-blind); the engine writes to PostgreSQL, which compares text byte by byte, a username or a key
    the source would hold equal to one it keeps: the rollback refuses in one line, nothing changed, instead of
    stopping mid-write on the source's index. A row that only changes its own spelling is carried."""
    conn = connect_mysql_sync(parse_url(mysql_source))
    with conn.cursor() as cur:
        cur.execute("SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND table_name = 'users' AND column_name = 'username'")
        assert cur.fetchone()[0] == "utf8mb4_general_ci"  # as the engine's create_all left it (engine_data)
    conn.close()
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    for sql in writes:
        execute(pg_url, sql)
    columns = _mysql_columns(mysql_source)
    source_now, target_now = mysql_rows(mysql_source, columns), pg_rows(pg_url, columns)
    env_now = (folder / ".env").read_bytes()
    shown = " ".join(wizard("rollback", "--last", cwd=folder).stdout.split())  # the plan, before anyone agrees
    foreseen = "as things stand it will stop before changing anything: "
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    if refused is None:
        assert foreseen not in shown, shown
        assert done.returncode == 0, done.stderr
        assert mysql_rows(mysql_source, columns)["users"] == target_now["users"]
        return
    assert f"{foreseen}{refused}: " in shown, shown
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1], done.stderr
    assert errors[0].startswith(f"error: {refused}: ") and "in the source's collation utf8mb4_general_ci" in errors[0]
    assert "nothing was changed" in errors[0] and "Traceback" not in done.stderr
    assert mysql_rows(mysql_source, columns) == source_now and pg_rows(pg_url, columns) == target_now
    assert (folder / ".env").read_bytes() == env_now


def test_an_id_of_0_written_since_is_carried_back_as_0(mysql_source: str, pg_url: str, tmp_path: Path) -> None:
    """MySQL takes a 0 inserted into an AUTO_INCREMENT column as "the next id" unless told otherwise (mysqldump's
    NO_AUTO_VALUE_ON_ZERO): the engine's row 0 went into the source as another id."""
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    execute(pg_url, "INSERT INTO executions (id, workflow_id, status) SELECT n, workflow_id, 'edge' FROM executions, "
                    "(VALUES (0), (-5)) v(n) WHERE executions.id = 1")
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert read(mysql_source, "SELECT id FROM executions WHERE status = 'edge' ORDER BY id") == [(-5,), (0,)]


def test_two_written_rows_alike_in_different_batches_stop_the_carry_back_with_nothing_written(
        mysql_source: str, pg_url: str, tmp_path: Path) -> None:
    """The collation check compares written rows with each other a batch (500) at a time: a pair in two batches
    meets the source's unique index at the write instead, which ends as one line with the transaction rolled
    back, the source as it was and the target kept."""
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    names = ["Zed"] + [f"user-{i}" for i in range(carry_mysql.BATCH)] + ["zed"]
    execute(pg_url, "INSERT INTO users (id, username) SELECT 'u-' || n, (ARRAY[" +
            ", ".join(f"'{n}'" for n in names) + f"])[n] FROM generate_series(1, {len(names)}) n")
    columns = _mysql_columns(mysql_source)
    source_now, target_now = mysql_rows(mysql_source, columns), pg_rows(pg_url, columns)
    env_now = (folder / ".env").read_bytes()
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the source refused a row carried back (Duplicate entry" in errors[0], done.stderr
    assert "nothing was written to it" in errors[0] and "Traceback" not in done.stderr
    assert mysql_rows(mysql_source, columns) == source_now and pg_rows(pg_url, columns) == target_now
    assert (folder / ".env").read_bytes() == env_now


def pg_revision(url: str) -> str:
    async def read() -> str:
        conn = await asyncpg.connect(pg(url))
        try:
            return await conn.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()

    return asyncio.run(read())


def test_a_carry_back_into_mariadb_refuses_a_date_no_source_spells(mysql_source: str, pg_url: str,
                                                                   tmp_path: Path) -> None:
    """A BC timestamp the engine wrote to PostgreSQL since: read, it stopped the rollback with a traceback
    (asyncpg's OverflowError). Refused in one line, nothing changed, and foreseen by the plan."""
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_source, pg_url, folder)
    execute(pg_url, "INSERT INTO executions (id, workflow_id, status, started_at) SELECT 901, workflow_id, 'x', "
                    "'0044-03-15 12:00 BC' FROM executions LIMIT 1")
    shown = " ".join(wizard("rollback", "--last", cwd=folder).stdout.split())
    assert "executions [901]: a date or time written since is infinite, BC or past the year 9999" in shown, shown
    # The target read without its timestamps: pg_rows' driver cannot read BC either.
    refused = _refused_in_one_line(folder, mysql_source, pg_url, target=lambda: [tuple(r) for r in fetch(
        pg_url, "SELECT id, workflow_id, status, state::text, error FROM executions ORDER BY id")])
    assert refused.startswith("error: executions [901]: a date or time written since is infinite, BC"), refused
    assert fetch(pg_url, "SELECT count(*) FROM executions WHERE id = 901")[0][0] == 1


def test_a_zero_date_written_to_mariadb_since_a_move_onto_it_is_refused_then_carried_once_fixed(
        engine_db: Path, mysql_url: str) -> None:
    """MariaDB (no NO_ZERO_DATE in its sql_mode) took '0000-00-00 00:00:00' from the engine; the driver hands
    it over as text, carried into the file it differed from the target: the file restored, exit 1, and the
    engine could not have read it as a date. Refused in one line, foreseen by the plan, nothing changed; once the
    engine's row holds NULL there, the next rollback measures again and carries it."""
    folder, env_before = _onto(engine_db, mysql_url)
    _mysql(mysql_url, ("INSERT INTO executions (id, workflow_id, status, started_at) SELECT 901, workflow_id, 'x', "
                       "'0000-00-00 00:00:00' FROM executions WHERE id = 1", ()))
    file_sha = sha256(engine_db)
    said = ("executions [901]: a date or time written since is a zero date or has a zero month or day "
            "(started_at, completed_at), which the source cannot hold; nothing was changed")

    shown = wizard("rollback", "--last", cwd=folder)
    assert said in " ".join(shown.stdout.split()), shown.stdout
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: {said}")
    assert sha256(engine_db) == file_sha and (folder / ".env").read_bytes() != env_before

    _mysql(mysql_url, ("UPDATE executions SET started_at = NULL WHERE id = 901", ()))
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert (folder / ".env").read_bytes() == env_before
    db = sqlite3.connect(engine_db)
    assert db.execute("SELECT status, started_at FROM executions WHERE id = 901").fetchone() == ("x", None)
    db.close()


def test_the_settings_row_a_move_off_mariadb_created_then_the_engine_changed_is_carried_back(
        mysql_source: str, pg_url: str, tmp_path: Path) -> None:
    """The MariaDB source had no settings row for `anonymous`: the move made one in PostgreSQL for OPENAI_API_KEY,
    and the engine changed it. Carried as a changed row, its delete found nothing in the source: the rollback
    stopped ('touched 0 rows of the source', exit 1). Now it is added to the source, and .env comes back."""
    folder = tmp_path / "engine"
    folder.mkdir()
    _mysql(mysql_source, ("DELETE FROM settings", ()))
    env_before = _off(mysql_source, pg_url, folder)
    execute(pg_url, "UPDATE settings SET settings_data = '{\"providers\": []}' WHERE user_id = 'anonymous'")
    (row_id,) = fetch(pg_url, "SELECT id FROM settings")[0]

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert (folder / ".env").read_bytes() == env_before and tables_in(pg_url) == []
    conn = connect_mysql_sync(parse_url(mysql_source))
    with conn.cursor() as cur:
        cur.execute("SELECT id, user_id, settings_data FROM settings")
        assert cur.fetchall() == ((row_id, "anonymous", '{"providers": []}'),)
    conn.close()


def test_auto_increment_goes_past_a_quarantined_id_so_the_engines_next_row_is_carried_back(
        engine_db: Path, mysql_url: str) -> None:
    """The move onto MariaDB set AUTO_INCREMENT past the rows it copied only: the engine's first insert took the
    id of the row the move put in quarantine (still in the file), and the rollback could only refuse to carry it
    back (exit 3). The counter now goes past every id of the file: the rollback keeps both rows."""
    db = sqlite3.connect(engine_db)
    top = db.execute("SELECT max(id) FROM executions").fetchone()[0]
    db.execute("INSERT INTO executions (id, workflow_id, status) VALUES (?, 'no-such-workflow', 'pending')", (top + 1,))
    db.commit()
    db.close()
    folder = engine_db.parent
    (folder / ".env").write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\n")
    moved = wizard("migrate", "--source", "sqlite:///engine.db", "--target", mysql_url, "--env-file", ".env", "--yes",
                   "--on-orphans", "quarantine", cwd=folder)
    assert moved.returncode == 0, moved.stderr
    _mysql(mysql_url, ("INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'new' FROM executions "
                       "WHERE id = 1", ()))

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(engine_db)
    assert db.execute("SELECT id, status FROM executions WHERE id > ? ORDER BY id", (top,)).fetchall() == [
        (top + 1, "pending"), (top + 2, "new")]
    db.close()


def test_a_row_the_engine_writes_to_mariadb_during_the_rollback_is_not_dropped_with_it(
        engine_db: Path, mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on PostgreSQL (tests/test_rollback_since.py): a row written to the target after the rollback's check
    that nothing was connected, before its drop, went with the tables. On MariaDB the drop compares first (its
    DROP TABLE commits itself, with no lock that lets the comparison read): it keeps the tables, naming the row."""
    folder, _ = _onto(engine_db, mysql_url)
    real = rollback_run_module.restore_env

    def engine_writes_then_restore_env(*args):
        _mysql(mysql_url, ("INSERT INTO executions (id, workflow_id, status) SELECT 424242, workflow_id, 'during' "
                           "FROM executions WHERE id = 1", ()))
        return real(*args)

    monkeypatch.setattr(rollback_run_module, "restore_env", engine_writes_then_restore_env)
    run = load_run(folder / ".wizard", last=True)
    said = r"was written during the rollback .*executions \+1; e\.g\. executions \[424242\]"
    with pytest.raises(StepError, match=said):
        asyncio.run(rollback_run(run, lambda e: None, parse_url(mysql_url), folder / ".env"))
    conn = connect_mysql_sync(parse_url(mysql_url))
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM executions WHERE status = 'during'")
        assert cur.fetchall() == ((424242,),)
    conn.close()

"""`wizard migrate` with MySQL/MariaDB on either side, against the real MariaDB (and PostgreSQL).

Onto MySQL: the SQLite sample moved into MariaDB, verified row by row, switched and rolled back; a charset that
loses characters refused; stopped mid-copy and resumed exactly once. Off MySQL: a 1.0.0 engine database on
MariaDB holding the sample's rows (tests/engine_data.py) moved to PostgreSQL; its odd values held; resumed.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from engine_data import build_1_0_0, read, write
from move_helpers import execute, fetch, sha256, tables_in
from mysql_server import admin, fresh_database
from test_resume import _stopped_move
from wizard import commands, sample, schema
from wizard.db import connect, connect_mysql_sync
from wizard.schema import head
from wizard.cli import main
from wizard.errors import Interrupted, Refused, StepError
from wizard.events import Progress, StopRequest
from wizard.journal import FINISHED, load_run
from wizard.move.run import MoveOptions
from wizard.move.scan import NULL_VALUE
from wizard.mysql.source import BAD_BOOLEAN, BAD_JSON, NO_SUCH_DATE
from wizard.rollback.run import rollback_run
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # whole moves onto and off MariaDB: `pytest -m slow` runs them

WIZARD = Path(sys.executable).with_name("wizard")
EMOJI = "deploy \U0001f680 \u00e9t\u00e9"
ODD = "tab\there\nline\\N \\ back\\slash \\t end"
COUNTS = {"users": 5, "workflows": 20, "executions": 300, "settings": 1}


def _move(source: str, target: str, state: Path, **kw) -> commands.MoveResult:
    options = MoveOptions(parse_url(source), parse_url(target), state_dir=state, yes=True, **kw)
    return asyncio.run(commands.migrate(options))


def _checksums(url: str) -> dict[str, int]:
    """CHECKSUM TABLE of the engine's tables, by table (two databases compare): equal sums, equal rows."""
    return {r[0].split(".")[-1]: r[1] for r in read(url, "CHECKSUM TABLE users, workflows, executions, settings "
                                                           "EXTENDED")}


def tables(url: str) -> list[str]:
    return sorted(r[0] for r in read(url, "SHOW TABLES"))


# --- onto MySQL: SQLite -> MariaDB ---


def migrate(source: Path, url: str, state: Path, **kw) -> commands.MoveResult:
    return _move(f"sqlite:///{source}", url, state, **kw)


@pytest.fixture
def latin1_url(mysql_server: str) -> Iterator[str]:
    yield from fresh_database(mysql_server, "latin1")


def test_the_1_0_0_sample_moves_into_mariadb_verified_switched_and_rolls_back(engine_db: Path, mysql_url: str,
                                                                              tmp_path: Path) -> None:
    conn = sqlite3.connect(engine_db)
    conn.execute("UPDATE workflows SET name = ? WHERE rowid = 1", (EMOJI,))
    conn.execute("UPDATE workflows SET name = ? WHERE rowid = 2", (ODD,))  # what LOAD DATA's format escapes
    conn.commit()
    conn.close()
    before = sha256(engine_db)
    env = tmp_path / ".env"
    env.write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\nOPENAI_API_KEY=sk-test-0123456789abcdef\nDEBUG=1\n")
    original = env.read_bytes()
    result = migrate(engine_db, mysql_url, tmp_path / "state", env_file=env)
    assert result.state == FINISHED
    assert result.verification is not None and result.verification.ok
    assert {r.table: (r.source_rows, r.target_rows, r.quarantined) for r in result.report.tables} == {
        "users": (5, 5, 0), "workflows": (20, 20, 0), "executions": (300, 300, 0), "settings": (1, 1, 0)}
    assert sha256(engine_db) == before  # the source is never written
    assert read(mysql_url, "SELECT name FROM workflows WHERE name LIKE 'deploy %'")[0][0] == EMOJI
    assert read(mysql_url, "SELECT name FROM workflows WHERE name LIKE 'tab%'")[0][0] == ODD
    top = read(mysql_url, "SELECT MAX(id) FROM executions")[0][0]
    assert result.report.sequences["executions.id"] == top + 1
    write(mysql_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'x' FROM executions LIMIT 1")
    assert read(mysql_url, "SELECT MAX(id) FROM executions")[0][0] == top + 1  # AUTO_INCREMENT past the copy
    write(mysql_url, f"DELETE FROM executions WHERE id = {top + 1}")  # nothing written since, for the rollback
    assert "wizard_move" not in tables(mysql_url) and "wizard_copy_checkpoint" not in tables(mysql_url)
    assert env.read_text().startswith(f"DATABASE_URL=\"{parse_url(mysql_url).async_str()}\"")
    assert "mysql+aiomysql://" in env.read_text()
    # The settings move: the key left .env for a provider of user anonymous in MariaDB's settings.
    assert "OPENAI_API_KEY" not in env.read_text() and "DEBUG=1" in env.read_text()
    (data,), = read(mysql_url, "SELECT settings_data FROM settings WHERE user_id = 'anonymous'")
    assert [p["apiKey"] for p in json.loads(data)["providers"] if p["type"] == "openai"] == ["sk-test-0123456789abcdef"]
    # Rollback: .env byte for byte, the move's tables gone.
    asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None, env_file=env))
    assert env.read_bytes() == original
    assert tables(mysql_url) == []


@pytest.mark.parametrize("policy, kept", [("quarantine", {"users": 7, "workflows": 22, "executions": 2002}),
                                           ("null", {"users": 7, "workflows": 24, "executions": 2004})])
def test_the_dirty_sample_moves_into_mariadb_verified_under_either_policy(policy: str, kept: dict, mysql_url: str,
                                                                          tmp_path: Path) -> None:
    """The rows the scan named (converted, held, a reference cleared) beside the clean rows whose lines SQLite
    makes (wizard.move.lines), in the same chunks: the row-level verification finds every row as it should be."""
    source = sample.build_dirty(tmp_path / "dirty.db")
    with sqlite3.connect(source) as conn:  # a move onto MySQL carries the engine's tables only
        for table in ("plugin_audit", "plugin_kv", "plugin_pair"):
            conn.execute(f"DROP TABLE {table}")
    result = migrate(source, mysql_url, tmp_path / "state", on_orphans=policy)
    assert result.state == FINISHED
    assert result.verification is not None and result.verification.ok
    assert {r.table: r.target_rows for r in result.report.tables} == {**kept, "settings": 1}


def test_a_latin1_target_is_refused_in_one_line_before_anything_is_written(engine_db: Path, latin1_url: str,
                                                                           tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run([str(WIZARD), "migrate", "--source", f"sqlite:///{engine_db}", "--target", latin1_url,
                           "--yes", "--state-dir", str(state)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "character set latin1" in lines[0] and "utf8mb4" in lines[0], done.stderr
    assert tables(latin1_url) == []
    assert not state.exists() or not any(state.rglob("journal.jsonl"))


def test_a_table_beside_the_engines_is_refused_by_the_checks_before_anything_is_written(engine_db: Path,
                                                                                        mysql_url: str,
                                                                                        tmp_path: Path) -> None:
    """MySQL gets the engine's schema alone: a plugin's table beside the engine's failed the move after checks
    that passed, saying it would be "carried with the type map"."""
    with sqlite3.connect(engine_db) as conn:
        conn.execute("CREATE TABLE plugin_notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO plugin_notes VALUES (1, 'kept by a plugin')")
    before = sha256(engine_db)
    done = subprocess.run([str(WIZARD), "migrate", "--source", f"sqlite:///{engine_db}", "--target", mysql_url,
                           "--yes", "--state-dir", str(tmp_path / "state")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3, done.stderr
    said = " ".join(done.stderr.split())
    assert ("error: pre-flight check 'revision' failed: 1.0.0, no revision recorded: its tables match revision 0001; "
            "table(s) plugin_notes are not the engine's and a move to MySQL carries the engine's tables only") in said
    assert "carried with the type map" not in said and "Traceback" not in said
    assert tables(mysql_url) == [] and sha256(engine_db) == before


def test_a_stop_mid_copy_into_mysql_then_resume_equals_an_uninterrupted_move(engine_db: Path, mysql_url: str,
                                                                             mysql_server: str, tmp_path: Path) -> None:
    for straight in fresh_database(mysql_server):
        migrate(engine_db, straight, tmp_path / "straight", chunk_rows=50)
        reference = _checksums(straight)
    _stopped_move(engine_db, mysql_url, tmp_path / "state")  # after the first chunk of executions
    copied = read(mysql_url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'")
    assert copied == [(50, 0)]
    assert read(mysql_url, "SELECT COUNT(*) FROM executions")[0][0] == 50  # the chunk and its checkpoint, together
    result = migrate(engine_db, mysql_url, tmp_path / "state", resume=True, chunk_rows=50)
    assert result.state == FINISHED and result.verification.ok
    assert _checksums(mysql_url) == reference


def test_a_user_without_create_is_refused_by_the_checks_naming_the_grant(engine_db: Path, mysql_url: str,
                                                                         mysql_server: str, tmp_path: Path) -> None:
    user = f"wizard_ro_{uuid.uuid4().hex[:8]}"
    database = make_url(mysql_url).database
    admin(mysql_server, f"CREATE USER '{user}'@'%' IDENTIFIED BY 's3cret#pw'")
    try:
        admin(mysql_server, f"GRANT SELECT, INSERT ON `{database}`.* TO '{user}'@'%'")
        limited = make_url(mysql_url).set(username=user, password="s3cret#pw").render_as_string(hide_password=False)
        with pytest.raises(Refused, match=f"may not create tables in database {database}: GRANT CREATE") as refused:
            migrate(engine_db, limited, tmp_path / "state")
        assert "s3cret" not in str(refused.value)
        assert tables(mysql_url) == []
    finally:
        admin(mysql_server, f"DROP USER '{user}'@'%'")


def test_a_user_whose_password_is_not_latin1_moves_backs_up_and_rolls_back(engine_db: Path, mysql_url: str,
                                                                            mysql_server: str, tmp_path: Path) -> None:
    """A password the server hashed as `mysql` sent it, UTF-8: the drivers sent its latin1 bytes, so 'ä' was
    refused as a wrong password and an emoji ended in a UnicodeEncodeError traceback."""
    user, password = f"wizard_utf8_{uuid.uuid4().hex[:8]}", "p\u00e4ss \U0001f600#"
    admin(mysql_server, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        admin(mysql_server, f"GRANT ALL ON *.* TO '{user}'@'%'")  # the move, and its backup's proof database
        url = make_url(mysql_url).set(username=user, password=password).render_as_string(hide_password=False)
        result = migrate(engine_db, url, tmp_path / "state")
        assert result.state == FINISHED and result.verification.ok
        assert _checksums(url) == _checksums(mysql_url)  # the same database, through either user
        backup = asyncio.run(commands.backup(parse_url(url), tmp_path / "backup"))  # mysqldump and mysql
        assert backup.record.kind == "mysqldump" and dict(backup.record.row_counts)["executions"] == COUNTS["executions"]
        asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None, parse_url(url)))
        assert tables(mysql_url) == []
    finally:
        admin(mysql_server, f"DROP USER '{user}'@'%'")


# Pairs SQLite holds apart (it compares text byte by byte) that a server's default collation, utf8mb4_general_ci,
# holds equal: case, a trailing space, an accent, two emoji.
APART = [("Alice", "alice"), ("bob", "bob "), ("rene", "ren\u00e9"), ("\U0001f600", "\U0001f601")]


def test_keys_and_usernames_sqlite_holds_apart_stay_apart_in_mariadb(engine_db: Path, mysql_url: str,
                                                                     tmp_path: Path) -> None:
    """The engine's unique and key columns compare on MySQL as on SQLite: every row moves, each lookup finds
    its own row, the engine can go on writing such names, and a rollback carries them back."""
    conn = sqlite3.connect(engine_db)
    for i, pair in enumerate(APART):
        for j, name in enumerate(pair):
            conn.execute("INSERT INTO users (id, username) VALUES (?, ?)", (f"apart-{i}-{j}", name))
    conn.execute("INSERT INTO workflows (id, name, definition) VALUES ('WF-apart', 'upper', '{}'), "
                 "('wf-apart', 'lower', '{}'), ('wf-apart ', 'padded', '{}')")
    conn.execute("INSERT INTO executions (workflow_id, status) VALUES ('wf-apart', 'x'), ('WF-apart', 'y')")
    conn.execute("INSERT INTO settings (user_id, settings_data) VALUES ('Anon', '{}'), ('anon', '{}')")
    conn.commit()
    conn.close()
    result = migrate(engine_db, mysql_url, tmp_path / "state")
    assert result.state == FINISHED
    assert result.verification is not None and result.verification.ok
    assert {r.table: (r.source_rows, r.target_rows) for r in result.report.tables} == {
        "users": (13, 13), "workflows": (23, 23), "executions": (302, 302), "settings": (3, 3)}
    for i, pair in enumerate(APART):
        for j, name in enumerate(pair):
            assert read(mysql_url, f"SELECT id FROM users WHERE username = '{name}'") == [(f"apart-{i}-{j}",)]
    assert read(mysql_url, "SELECT status FROM executions WHERE workflow_id = 'WF-apart'") == [("y",)]
    assert read(mysql_url, "SELECT name FROM workflows WHERE id = 'wf-apart '") == [("padded",)]
    # The engine writes a third spelling; the rollback carries it back into the SQLite file.
    write(mysql_url, "INSERT INTO users (id, username) VALUES ('apart-new', 'ALICE')")
    asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None))
    with sqlite3.connect(engine_db) as conn:
        assert conn.execute("SELECT id FROM users WHERE username IN ('Alice', 'alice', 'ALICE') ORDER BY id"
                            ).fetchall() == [("apart-0-0",), ("apart-0-1",), ("apart-new",)]
    assert tables(mysql_url) == []


def test_an_execution_with_id_0_moves_into_mariadb_as_0(engine_db: Path, mysql_url: str, tmp_path: Path) -> None:
    """MySQL takes a 0 loaded into an AUTO_INCREMENT column as "the next id" unless the session says otherwise
    (mysqldump's NO_AUTO_VALUE_ON_ZERO): the row took id 1 and the chunk failed on the row that has it."""
    with sqlite3.connect(engine_db) as conn:
        conn.execute("INSERT INTO executions (id, workflow_id, status) SELECT 0, workflow_id, 'zero' FROM executions "
                     "LIMIT 1")
    conn.close()
    result = migrate(engine_db, mysql_url, tmp_path / "state")
    assert result.state == FINISHED and result.verification is not None and result.verification.ok
    assert read(mysql_url, "SELECT id FROM executions WHERE status = 'zero'") == [(0,)]


def test_the_sql_shown_for_a_move_onto_mariadb_makes_the_tables_the_move_makes(engine_db: Path, mysql_url: str,
                                                                              tmp_path: Path) -> None:
    """The schema step's SQL (the TUI shows it before the move) names MariaDB's own binary collation, as the
    move's tables then have it: offline, a MySQL URL alone would give MySQL 8's, which MariaDB does not know."""
    shown = asyncio.run(commands.upgrade_sql(parse_url(mysql_url), "0001", empty=True))
    assert shown.count("COLLATE utf8mb4_nopad_bin") == 4 and "0900" not in shown
    assert migrate(engine_db, mysql_url, tmp_path / "state").state == FINISHED
    assert {r[0] for r in read(mysql_url, "SELECT table_collation FROM information_schema.tables WHERE table_schema = "
                                          "DATABASE() AND table_name IN ('users', 'workflows', 'executions', "
                                          "'settings')")} == {"utf8mb4_nopad_bin"}


def test_restore_backup_saves_the_rows_written_to_mysql_since_then_drops_the_tables(engine_db: Path, mysql_url: str,
                                                                                   tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\n")
    original = env.read_bytes()
    result = migrate(engine_db, mysql_url, tmp_path / "state", env_file=env)
    write(mysql_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'new' FROM executions LIMIT 1")
    asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None, env_file=env,
                             restore_backup=True))
    assert env.read_bytes() == original and tables(mysql_url) == []
    saved = [json.loads(line) for line in (result.report_json.parent / "written-since" / "executions.jsonl")
             .read_text().splitlines()]
    assert [s["row"]["status"] for s in saved] == ["new"] and saved[0]["pk"] == [301]


def test_to_head_and_jobs_onto_mysql_upgrade_after_the_copy_verified(engine_db: Path, mysql_url: str,
                                                                    tmp_path: Path) -> None:
    """`wizard migrate --to head --jobs 3` onto MariaDB: copied up to three tables at a time, verified at the
    source's revision, then upgraded one revision at a time to head; the rollback drops it all."""
    state = tmp_path / "state"
    done = subprocess.run([str(WIZARD), "migrate", "--source", f"sqlite:///{engine_db}", "--target", mysql_url,
                           "--to", "head", "--jobs", "3", "--yes", "--state-dir", str(state), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [(head(),)]
    assert {t: read(mysql_url, f"SELECT COUNT(*) FROM {t}")[0][0] for t in COUNTS} == COUNTS
    run = load_run(state, last=True)
    steps = [r["step"] for r in run.finished_steps()]
    assert steps.index("verify") < steps.index("upgrade")  # verified against the source before it changed
    applied = [r for r in run.records() if r.get("step") == "upgrade" and r["kind"] == "step_finished"]
    assert applied[0]["revision"] == head()

    async def shape() -> schema.SchemaState:
        async with connect(parse_url(mysql_url)) as conn:
            return await schema.inspect_schema(conn)
    assert head() in asyncio.run(shape()).matches  # the tables are head's, not only its stamp
    asyncio.run(rollback_run(run, lambda e: None))
    assert tables(mysql_url) == []


# --- off MySQL: MariaDB -> PostgreSQL ---


@pytest.fixture
def source(engine_db: Path, mysql_url: str) -> str:
    return build_1_0_0(mysql_url, engine_db)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_a_mysql_database_moves_and_verifies_with_no_row_lost(source: str, pg_url: str, tmp_path: Path):
    before = _checksums(source)
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL={source}\n")
    result = _move(source, pg_url, tmp_path / "state", env_file=env)
    assert result.state == "finished"
    assert result.verification is not None and result.verification.ok
    assert not [c for c in result.preflight.checks if c.name == "source in use"]  # its own lock's connection
    assert {t["table"]: t["equal"] for t in result.verification.to_dict()["tables"]} == COUNTS
    assert {r.table: (r.copied, r.quarantined) for r in result.report.tables} == {
        t: (n, 0) for t, n in COUNTS.items()}
    assert _checksums(source) == before  # the source is never written
    assert "wizard_move" not in tables_in(pg_url)
    assert fetch(pg_url, "SELECT version_num FROM alembic_version")[0][0] == "0001"
    # The sequence goes past the highest id: the engine's next execution does not collide.
    top = fetch(pg_url, "SELECT max(id) FROM executions")[0][0]
    assert fetch(pg_url, "SELECT nextval(pg_get_serial_sequence('executions', 'id'))")[0][0] > top
    assert "postgresql" in env.read_text()
    # The rollback restores .env and drops the target's tables.
    asyncio.run(commands.rollback(commands.find_run(tmp_path / "state", result.run_id)))
    assert env.read_text() == f"DATABASE_URL={source}\n"
    assert not [t for t in tables_in(pg_url) if t in COUNTS]


def test_a_nul_byte_in_mysql_text_is_removed_counted_and_verified(source: str, pg_url: str, tmp_path: Path):
    """MySQL text may hold NUL, PostgreSQL's none: the copy removes it and counts it, as for a SQLite source. The
    verification compared MySQL's text with its NUL, so the move failed after its whole copy ('differences
    found') though the value was moved by the documented rule."""
    write(source, "UPDATE executions SET error = CONCAT('a', CHAR(0), 'b', CHAR(0)) WHERE id = 3")
    result = _move(source, pg_url, tmp_path / "state")
    assert result.state == FINISHED and result.verification is not None and result.verification.ok
    assert result.report.conversions() == {"executions": {"error": {"NUL bytes removed": 1}}}
    assert fetch(pg_url, "SELECT error FROM executions WHERE id = 3") == [("ab",)]
    write(pg_url, "UPDATE executions SET error = 'a' WHERE id = 3")  # a value the move did not write
    again = asyncio.run(commands.verify(parse_url(source), parse_url(pg_url)))
    assert [(t.table, t.different) for t in again.report.tables if t.different] == [("executions", 1)]


def _as_other_types(source: str) -> None:
    for sql in ("ALTER TABLE executions MODIFY id INT NOT NULL AUTO_INCREMENT, MODIFY started_at DATETIME, "
                "MODIFY error TEXT, MODIFY status VARCHAR(20) NOT NULL, MODIFY state LONGTEXT",
                "ALTER TABLE settings MODIFY id INT NOT NULL AUTO_INCREMENT",
                "ALTER TABLE workflows MODIFY is_public TINYINT"):
        write(source, sql)
    assert read(source, "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() "
                        "AND table_name = 'workflows' AND column_name = 'is_public'") == [("tinyint(4)",)]
    assert read(source, "SELECT count(*) FROM information_schema.check_constraints WHERE constraint_schema = "
                        "DATABASE() AND table_name = 'executions'") == [(0,)]


def test_text_that_is_not_json_and_a_boolean_that_is_not_one_in_other_types_are_held(source: str, pg_url: str,
                                                                                      tmp_path: Path) -> None:
    _as_other_types(source)
    write(source, "UPDATE executions SET state = '{not json' WHERE id = 5")
    write(source, "UPDATE workflows SET is_public = 2 WHERE id = (SELECT workflow_id FROM executions WHERE id = 9)")
    (held_workflow,) = read(source, "SELECT id FROM workflows WHERE is_public = 2")[0]
    with pytest.raises(Refused, match="nothing was written"):
        _move(source, pg_url, tmp_path / "state")
    assert not [t for t in tables_in(pg_url) if t in COUNTS]
    result = _move(source, pg_url, tmp_path / "state", on_orphans="quarantine")
    assert result.state == "finished" and result.verification.ok
    held = {(r["table"], r["pk"]): r["reason"] for path in (result.report_json.parent / "quarantine").glob("*.jsonl")
            for r in map(json.loads, path.read_text().splitlines())}
    assert BAD_JSON in held[("executions", 5)]
    assert BAD_BOOLEAN in held[("workflows", held_workflow)]


def test_a_column_of_another_meaning_is_refused_by_the_pre_flight(source: str, pg_url: str, tmp_path: Path) -> None:
    """A timestamp kept as VARCHAR: the copy cannot carry it as it is, so the checks say so before anything is
    written (the move stopped after creating the target's schema)."""
    write(source, "ALTER TABLE executions MODIFY started_at VARCHAR(40)")
    with pytest.raises(Refused, match=r"pre-flight check 'types' failed: executions.started_at is VARCHAR\(40\) in "
                                      r"the source, where the engine's history makes a timestamp"):
        _move(source, pg_url, tmp_path / "state")
    assert tables_in(pg_url) == []


def test_a_recorded_revision_whose_tables_are_not_that_revisions_is_refused_by_the_pre_flight(
        source: str, pg_url: str, tmp_path: Path) -> None:
    write(source, "ALTER TABLE executions ADD COLUMN priority INT")
    write(source, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    write(source, "INSERT INTO alembic_version VALUES ('0001')")
    with pytest.raises(Refused, match=r"pre-flight check 'revision' failed: at revision 0001 by its alembic_version, "
                                      r"but its tables are not that revision's: executions has extra priority"):
        _move(source, pg_url, tmp_path / "state")
    assert tables_in(pg_url) == []


@pytest.mark.parametrize("policy", ["abort", "null", "quarantine"])
def test_a_null_the_schema_forbids_and_dangling_references_are_held_before_anything_is_written(
        policy: str, source: str, pg_url: str, tmp_path: Path) -> None:
    """What MySQL lets in that PostgreSQL's schema refuses: a NULL status (the engine's create_all made the column
    nullable), an execution of no workflow and a workflow of no user (loaded with FOREIGN_KEY_CHECKS off, as a
    dump's restore runs). The move passed its checks and stopped at the copy or at the foreign keys' build."""
    conn = connect_mysql_sync(parse_url(source))
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE executions MODIFY status VARCHAR(255) NULL")
        cur.execute("UPDATE executions SET status = NULL WHERE id = 4")
        cur.execute("SET SESSION foreign_key_checks = 0")
        cur.execute("UPDATE executions SET workflow_id = 'no-such-workflow' WHERE id = 5")
        cur.execute("UPDATE workflows SET owner_id = 'no-such-user' ORDER BY id LIMIT 1")
        cur.execute("SELECT id FROM workflows WHERE owner_id = 'no-such-user'")
        (orphan,) = cur.fetchone()
    conn.commit()
    conn.close()
    if policy == "abort":
        with pytest.raises(Refused, match="nothing was written") as refused:
            _move(source, pg_url, tmp_path / "state")
        assert not [t for t in tables_in(pg_url) if t in COUNTS]
        said = str(refused.value)
        assert said.startswith(f"3 row(s) PostgreSQL will not take as they are (listed above; first "
                               f"workflows.owner_id at key {orphan}: points to no users row)"), said
        return
    result = _move(source, pg_url, tmp_path / "state", on_orphans=policy)
    assert result.state == "finished" and result.verification.ok
    held = {(r["table"], r["pk"]): r["reason"] for path in (result.report_json.parent / "quarantine").glob("*.jsonl")
            for r in map(json.loads, path.read_text().splitlines())}
    assert NULL_VALUE in held[("executions", 4)]
    assert "workflow_id = no-such-workflow points to no workflows row" in held[("executions", 5)]
    owner = fetch(pg_url, "SELECT owner_id FROM workflows WHERE id = $1", orphan)
    if policy == "null":  # a reference that may be NULL is cleared, the workflow kept
        assert owner == [(None,)] and ("workflows", orphan) not in held
    else:
        assert owner == [] and "owner_id = no-such-user points to no users row" in held[("workflows", orphan)]


def test_an_engine_database_made_with_other_mysql_types_moves_and_verifies(source: str, pg_url: str,
                                                                        tmp_path: Path) -> None:
    """What an engine's own create_all may have made on MySQL: INT ids (the history's are BIGINT), DATETIME
    without microseconds, TEXT and short VARCHARs, a JSON column as LONGTEXT with no check (as MariaDB before
    10.4.3 made it), a boolean as TINYINT(4). Whole numbers fit the wider column as they are, the history says
    which text is JSON and which number a boolean; the move finishes and verifies (it stopped after the schema,
    "executions.id is bigint in the target but integer", "executions.state is json ... but text")."""
    _as_other_types(source)
    before = _checksums(source)
    result = _move(source, pg_url, tmp_path / "state")
    assert result.state == "finished"
    assert result.verification is not None and result.verification.ok
    assert {t["table"]: t["equal"] for t in result.verification.to_dict()["tables"]} == COUNTS
    assert _checksums(source) == before
    top = fetch(pg_url, "SELECT max(id) FROM executions")[0][0]
    assert fetch(pg_url, "SELECT nextval(pg_get_serial_sequence('executions', 'id'))")[0][0] > top


LATIN1 = "caf\u00e9 \u00df\u00f1 \u20ac 5 \u00bd"  # é ß ñ € ½: all in MySQL's latin1 (cp1252)


def test_a_latin1_source_moves_to_postgresql_with_every_character(engine_db: Path, latin1_url: str, pg_url: str,
                                                                  tmp_path: Path) -> None:
    """As a source a narrow character set loses nothing: every character it holds has its code point, read through
    the wizard's utf8mb4 session. (Only a target is refused for it: it would lose what it cannot hold.)"""
    source = build_1_0_0(latin1_url, engine_db)
    name = read(source, "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() "
                        "AND table_name = 'workflows' AND column_name = 'name'")[0][0]
    write(source, f"ALTER TABLE workflows MODIFY name {name} CHARACTER SET latin1 NOT NULL")
    write(source, f"UPDATE workflows SET name = '{LATIN1}' WHERE name = (SELECT MIN(name) FROM workflows w)")
    assert read(source, "SELECT HEX(name) FROM workflows WHERE name LIKE 'caf%'") == [
        (LATIN1.encode("cp1252").hex().upper(),)]  # stored as latin1's bytes, one a character
    result = _move(source, pg_url, tmp_path / "state")
    assert result.state == FINISHED and result.verification.ok
    assert fetch(pg_url, "SELECT name FROM workflows WHERE name LIKE 'caf%'")[0][0] == LATIN1


def _plant_odd_values(source: str) -> dict[str, object]:
    """A zero date, invalid JSON (MariaDB's check switched off), an emoji, microseconds in a DATETIME(6)."""
    write(source, "ALTER TABLE executions MODIFY started_at DATETIME(6) NULL")
    write(source, "UPDATE executions SET started_at = '2024-05-06 07:08:09.123456' WHERE id = 3")
    write(source, "UPDATE executions SET completed_at = '0000-00-00 00:00:00' WHERE id = 8")
    (bad_json,) = read(source, "SELECT id FROM workflows ORDER BY id LIMIT 1")[0]
    (emoji,) = read(source, "SELECT id FROM workflows ORDER BY id LIMIT 1 OFFSET 1")[0]
    write(source, f"UPDATE workflows SET name = '{EMOJI}' WHERE id = '{emoji}'")
    conn = connect_mysql_sync(parse_url(source))
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION check_constraint_checks = 0")  # MariaDB's CHECK (json_valid(...)) let through
            cur.execute("UPDATE workflows SET definition = '{not json' WHERE id = %s", (bad_json,))
        conn.commit()
    finally:
        conn.close()
    children = [r[0] for r in read(source, f"SELECT id FROM executions WHERE workflow_id = '{bad_json}'")]
    return {"bad_json": bad_json, "emoji": emoji, "children": children}


def test_odd_values_are_held_and_listed_never_passed_on(source: str, pg_url: str, tmp_path: Path):
    planted = _plant_odd_values(source)
    with pytest.raises(Refused, match="nothing was written"):
        _move(source, pg_url, tmp_path / "state")  # abort, the default: stops before anything is written
    assert not [t for t in tables_in(pg_url) if t in COUNTS]

    result = _move(source, pg_url, tmp_path / "state", on_orphans="quarantine")
    assert result.state == "finished" and result.verification.ok
    held = {}
    for path in sorted((result.report_json.parent / "quarantine").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            held[(record["table"], record["pk"])] = record["reason"]
    assert BAD_JSON in held[("workflows", planted["bad_json"])]
    assert NO_SUCH_DATE in held[("executions", 8)]
    for child in planted["children"]:  # their workflow is held: they would dangle
        assert "in quarantine" in held[("executions", child)]
    copied = {r.table: r.copied for r in result.report.tables}
    assert copied["workflows"] == 19 and copied["executions"] == 300 - len({8, *planted["children"]})
    assert fetch(pg_url, "SELECT name FROM workflows WHERE id = $1", planted["emoji"])[0][0] == EMOJI
    started = fetch(pg_url, "SELECT started_at FROM executions WHERE id = 3")
    assert started and started[0][0].microsecond == 123456


def _stopped(source: str, pg_url: str, tmp_path: Path) -> MoveOptions:
    """A move stopped after its first checkpoint in executions; its options, set to resume."""
    stop = StopRequest()

    def emit(event: object) -> None:
        if isinstance(event, Progress) and event.step == "copy" and event.item == "executions" and event.done:
            stop.set("test")

    options = MoveOptions(parse_url(source), parse_url(pg_url), state_dir=tmp_path / "state", yes=True, chunk_rows=50)
    with pytest.raises(Interrupted, match="--resume"):
        asyncio.run(commands.migrate(options, emit, stop))
    partial = fetch(pg_url, "SELECT count(*) FROM executions")[0][0]
    assert 0 < partial < 300
    options.resume = True
    return options


def test_a_stop_mid_copy_off_mysql_then_resume_equals_an_uninterrupted_move(source: str, pg_url: str,
                                                                            tmp_path: Path):
    options = _stopped(source, pg_url, tmp_path)
    result = asyncio.run(commands.migrate(options))
    assert result.state == "finished" and result.verification.ok
    assert fetch(pg_url, "SELECT count(*), count(DISTINCT id) FROM executions")[0] == (300, 300)


def test_restore_backup_of_a_move_off_mysql_saves_the_rows_written_since(source: str, pg_url: str, tmp_path: Path):
    result = _move(source, pg_url, tmp_path / "state")
    execute(pg_url, "UPDATE executions SET status = 'written since' WHERE id = 1")
    run = commands.find_run(tmp_path / "state", result.run_id)
    asyncio.run(commands.rollback(run, restore_backup=True))
    assert not [t for t in tables_in(pg_url) if t in COUNTS]
    saved = "".join(p.read_text() for p in (result.report_json.parent / "written-since").rglob("*") if p.is_file())
    assert "written since" in saved


def _without_executions(path: Path) -> None:
    """The dump less its executions rows: its INSERTs gone, the rest (and its '-- Dump completed' line) kept."""
    data = Path(path).read_bytes()
    cut = re.subn(rb"INSERT INTO `executions` VALUES.*?\);\n(?=/\*!40000 ALTER TABLE `executions` ENABLE KEYS)", b"",
                  data, flags=re.S)
    assert cut[1] == 1
    Path(path).write_bytes(cut[0])


@pytest.mark.parametrize("damage", ["before its digest was taken", "after it was taken"])
def test_a_move_off_mysql_does_not_switch_when_its_dumps_proof_fails(damage: str, source: str, pg_url: str,
                                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dump's proof (its restore into a scratch database) runs beside the copy: a dump that does not restore
    the source's rows, or that changed since it was taken, fails the run before .env points at the target."""
    from wizard.mysql import dump, move_off

    if damage.startswith("before"):  # the restore must find the rows missing
        dumped = dump._dump

        async def truncated(*args) -> None:
            await dumped(*args)
            _without_executions(args[2])

        monkeypatch.setattr(dump, "_dump", truncated)
        said = "restores other row counts: executions 0 \\(the table has 300\\)"
    else:
        prove = move_off.prove_dump

        async def truncated_then_proven(record, *args) -> str:
            _without_executions(record.path)
            return await prove(record, *args)

        monkeypatch.setattr(move_off, "prove_dump", truncated_then_proven)
        said = "changed after it was taken"
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL={source}\n")
    state = tmp_path / "state"
    with pytest.raises(StepError, match=f"{said}.*the backup cannot be trusted; the target was not switched to") as e:
        _move(source, pg_url, state, env_file=env)
    assert "\n" not in e.value.message
    assert env.read_text() == f"DATABASE_URL={source}\n"
    run = load_run(state)
    steps = [r["step"] for r in run.finished_steps()]
    assert "backup" in steps and "verify" in steps and "backup_check" not in steps and "switch" not in steps
    mine = "SHOW DATABASES LIKE 'wizard\\_proof\\_" + run.id.replace("-", "\\_") + "\\_%'"
    assert read(source, mine) == []  # the proof's scratch database dropped
    asyncio.run(commands.rollback(commands.find_run(state, run.id)))
    assert not [t for t in tables_in(pg_url) if t in COUNTS]


def test_a_resume_is_refused_when_the_source_was_written_since(source: str, pg_url: str, tmp_path: Path):
    options = _stopped(source, pg_url, tmp_path)
    write(source, "UPDATE executions SET status = 'changed' WHERE id = 299")
    with pytest.raises(Refused, match="the source database changed since run"):
        asyncio.run(commands.migrate(options))


def test_a_source_that_does_not_let_us_in_is_bad_input_before_any_run(mysql_url: str, pg_url: str, tmp_path: Path):
    code, out = _cli("migrate", "--source", mysql_url.replace("wizard_test_", "no_such_"), "--target", pg_url,
                     "--state-dir", str(tmp_path / "state"), "--yes")
    assert code == 2 and "does not exist" in out and "Traceback" not in out
    assert not (tmp_path / "state" / "runs").exists() or not list((tmp_path / "state" / "runs").iterdir())


def test_a_move_from_mysql_into_mysql_is_bad_input_in_one_line(mysql_url: str, tmp_path: Path):
    code, out = _cli("migrate", "--source", mysql_url, "--target", mysql_url, "--state-dir", str(tmp_path / "state"),
                     "--yes")
    assert code == 2 and "MySQL to MySQL is not built" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1 and not (tmp_path / "state").exists()

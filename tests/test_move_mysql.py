"""`wizard migrate` from SQLite into the real MariaDB: moved and verified row by row, refused on a charset that
loses characters, stopped mid-copy and resumed exactly once, rolled back."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pymysql
import pytest
from sqlalchemy.engine import make_url

from move_helpers import sha256
from mysql_server import admin, fresh_database
from test_resume import _stopped_move
from wizard import commands
from wizard.errors import BadInput, Refused
from wizard.journal import FINISHED, load_run
from wizard.move.run import MoveOptions
from wizard.rollback.run import rollback_run
from wizard.urls import parse_url

WIZARD = Path(sys.executable).with_name("wizard")
EMOJI = "deploy \U0001f680 \u00e9t\u00e9"
ODD = "tab\there\nline\\N \\ back\\slash \\t end"


def query(url: str, sql: str) -> list[tuple]:
    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, charset="utf8mb4", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def tables(url: str) -> list[str]:
    return sorted(r[0] for r in query(url, "SHOW TABLES"))


def sums(url: str) -> dict[str, int]:
    """CHECKSUM TABLE of the engine's tables: equal sums, equal rows."""
    return {t: query(url, f"CHECKSUM TABLE `{t}`")[0][1] for t in ("users", "workflows", "executions", "settings")}


def migrate(source: Path, url: str, state: Path, **kw):
    options = MoveOptions(parse_url(f"sqlite:///{source}"), parse_url(url), state_dir=state, yes=True, **kw)
    return asyncio.run(commands.migrate(options))


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
    env.write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\nDEBUG=1\n")
    original = env.read_bytes()
    result = migrate(engine_db, mysql_url, tmp_path / "state", env_file=env)
    assert result.state == FINISHED
    assert result.verification is not None and result.verification.ok
    assert {r.table: (r.source_rows, r.target_rows, r.quarantined) for r in result.report.tables} == {
        "users": (5, 5, 0), "workflows": (20, 20, 0), "executions": (300, 300, 0), "settings": (1, 1, 0)}
    assert sha256(engine_db) == before  # the source is never written
    assert query(mysql_url, "SELECT name FROM workflows WHERE name LIKE 'deploy %'")[0][0] == EMOJI
    assert query(mysql_url, "SELECT name FROM workflows WHERE name LIKE 'tab%'")[0][0] == ODD
    top = query(mysql_url, "SELECT MAX(id) FROM executions")[0][0]
    assert result.report.sequences["executions.id"] == top + 1
    query(mysql_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'x' FROM executions LIMIT 1")
    assert query(mysql_url, "SELECT MAX(id) FROM executions")[0][0] == top + 1  # AUTO_INCREMENT past the copy
    query(mysql_url, f"DELETE FROM executions WHERE id = {top + 1}")  # nothing written since, for the rollback
    assert "wizard_move" not in tables(mysql_url) and "wizard_copy_checkpoint" not in tables(mysql_url)
    assert env.read_text().startswith(f"DATABASE_URL=\"{parse_url(mysql_url).async_str()}\"")
    assert "mysql+aiomysql://" in env.read_text()
    # Rollback: .env byte for byte, the move's tables gone.
    asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None, env_file=env))
    assert env.read_bytes() == original
    assert tables(mysql_url) == []


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


def test_a_stop_mid_copy_then_resume_equals_an_uninterrupted_move(engine_db: Path, mysql_url: str, mysql_server: str,
                                                                  tmp_path: Path) -> None:
    for straight in fresh_database(mysql_server):
        migrate(engine_db, straight, tmp_path / "straight", chunk_rows=50)
        reference = sums(straight)
    _stopped_move(engine_db, mysql_url, tmp_path / "state")  # after the first chunk of executions
    copied = query(mysql_url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'")
    assert copied == [(50, 0)]
    assert query(mysql_url, "SELECT COUNT(*) FROM executions")[0][0] == 50  # the chunk and its checkpoint, together
    result = migrate(engine_db, mysql_url, tmp_path / "state", resume=True, chunk_rows=50)
    assert result.state == FINISHED and result.verification.ok
    assert sums(mysql_url) == reference


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


def test_rollback_refuses_when_the_engine_wrote_to_mysql_since(engine_db: Path, mysql_url: str,
                                                               tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\n")
    result = migrate(engine_db, mysql_url, tmp_path / "state", env_file=env)
    switched = env.read_bytes()
    query(mysql_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'new' FROM executions LIMIT 1")
    with pytest.raises(Refused, match="1 row\\(s\\) were written to .* since the move.*--restore-backup"):
        asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None, env_file=env))
    assert env.read_bytes() == switched  # nothing undone
    assert query(mysql_url, "SELECT COUNT(*) FROM executions WHERE status = 'new'")[0][0] == 1


def test_to_on_a_mysql_target_is_bad_input_before_anything_is_written(engine_db: Path, mysql_url: str,
                                                                      tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="--to on a MySQL target: move without it, then `wizard upgrade --db"):
        migrate(engine_db, mysql_url, tmp_path / "state", to="head")
    assert tables(mysql_url) == [] and not (tmp_path / "state").exists()

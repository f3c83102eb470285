"""Backups are proven before anything changes; restores give back exactly what was there."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from engine_data import build_pg_1_0_0, counts, read, revision, write
from wizard import pgtools, schema
from wizard.backup import (
    BackupRecord, backup_database, backup_env, restore_database, restore_env, sha256_file,
)
from wizard.db import connect, write_transaction
from wizard.errors import Refused, StepError
from wizard.events import Progress, StepFinished
from wizard.journal import FAILED, load_run
from wizard.urls import parse_url


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _upgrade(url: str, target: str = "0004", stamp: str | None = "0001") -> None:
    async def go() -> None:
        async with connect(parse_url(url)) as conn:
            async with write_transaction(conn):
                await schema.upgrade(conn, target, stamp=stamp)

    asyncio.run(go())


def test_sqlite_backup_is_checked_private_and_restores_byte_for_byte(engine_db: Path, tmp_path: Path) -> None:
    before = sha256_file(engine_db)
    db = parse_url(f"sqlite:///{engine_db}")
    events: list = []
    record = asyncio.run(backup_database(db, tmp_path / "run", events.append))

    assert sha256_file(engine_db) == before  # the source is never written
    assert record.kind == "sqlite" and record.check == "sha256 equal to the source's, integrity_check: ok"
    assert record.sha256 == sha256_file(record.path) and record.size == os.path.getsize(record.path)
    assert record.original_sha256 == before and record.revision is None
    assert dict(map(tuple, record.row_counts)) == {"executions": 300, "settings": 1, "users": 5, "workflows": 20}
    assert _mode(record.path) == 0o600
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["engine.db.backup"]  # no temp file left
    assert any(isinstance(e, Progress) for e in events) and isinstance(events[-1], StepFinished)
    assert record.sha256 == before  # a byte copy, taken under the source's read lock

    _upgrade(str(db.sync_str()))
    assert sha256_file(engine_db) != before
    sentence = asyncio.run(restore_database(BackupRecord.from_dict(record.to_dict()), db, events.append))
    assert sha256_file(engine_db) == before
    assert "equals the file as it was before the run" in sentence
    assert not [p for p in engine_db.parent.iterdir() if "wizard" in p.name]


def test_sqlite_backup_of_a_wal_database_holds_the_unfinished_wal(tmp_path: Path) -> None:
    """A WAL whose frames are not checkpointed is in the backup; a stale -wal never lands on a restore."""
    path = tmp_path / "wal.db"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=wal")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    writer.commit()  # still open: the rows live in wal.db-wal only
    assert os.path.getsize(f"{path}-wal") > 0
    db = parse_url(f"sqlite:///{path}")
    record = asyncio.run(backup_database(db, tmp_path / "run", lambda e: None))
    assert record.original_sha256 is None  # the main file alone is not the database
    assert dict(map(tuple, record.row_counts)) == {"t": 1000}

    writer.execute("DELETE FROM t")
    writer.commit()
    writer.close()  # the last connection: checkpoints, the main file now holds the empty table
    sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()  # and a reader leaves no -wal
    Path(f"{path}-wal").write_bytes(b"stale frames of a database that is gone")
    sentence = asyncio.run(restore_database(record, db, lambda e: None))
    assert "equals the verified backup" in sentence
    assert not Path(f"{path}-wal").exists()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (1000,)


def test_a_changed_backup_is_not_restored(engine_db: Path, tmp_path: Path) -> None:
    db = parse_url(f"sqlite:///{engine_db}")
    record = asyncio.run(backup_database(db, tmp_path / "run", lambda e: None))
    with open(record.path, "r+b") as f:
        f.seek(5000)
        f.write(b"\xff")
    before = sha256_file(engine_db)
    with pytest.raises(StepError, match="changed since it was taken"):
        asyncio.run(restore_database(record, db, lambda e: None))
    assert sha256_file(engine_db) == before


def _garbage_in_a_page(path: Path | str) -> None:
    """A page of the backup overwritten (a disk that lost a write, a stray process), after it was taken."""
    with open(path, "r+b") as f:
        f.seek(2 * 4096)
        f.write(b"\xde\xad" * 2048)


def _index_of_another_column(path: Path) -> None:
    """ix_executions_status holding workflow_id's values: quick_check passes, only integrity_check sees it."""
    conn = sqlite3.connect(path)
    for sql in ("CREATE INDEX ix_executions_status ON executions (workflow_id)", "REINDEX ix_executions_status",
                "CREATE INDEX ix_executions_status ON executions (status)"):
        if sql.startswith("CREATE"):
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'ix_executions_status'", (sql,))
            conn.commit()
            conn.close()
            conn = sqlite3.connect(path)
        else:
            conn.execute(sql)
            conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", ["a page of the backup overwritten", "an index that does not match its table"])
def test_a_move_does_not_switch_to_the_target_when_its_backup_fails_the_deferred_check(
        damage: str, engine_db: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A move takes its backup as a byte copy proven by sha256, and leaves the slow integrity_check to run beside
    the copy: when that check fails, the run fails before .env points at the target."""
    from wizard.move import run as move_run

    if damage.startswith("a page"):
        prove = move_run.prove_sqlite_copy

        def damaged_then_proven(record: BackupRecord, stop=None) -> str:
            _garbage_in_a_page(record.path)
            return prove(record, stop)

        monkeypatch.setattr(move_run, "prove_sqlite_copy", damaged_then_proven)
        said = "changed after it was taken"
    else:
        _index_of_another_column(engine_db)
        assert sqlite3.connect(engine_db).execute("PRAGMA quick_check").fetchall() == [("ok",)]
        said = "fails PRAGMA integrity_check"
    env = tmp_path / ".env"
    original = f"DATABASE_URL=sqlite:///{engine_db}\n".encode()
    env.write_bytes(original)
    state = tmp_path / "state"
    options = move_run.MoveOptions(parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url), state_dir=state, yes=True,
                                   env_file=env)
    with pytest.raises(StepError, match=f"{said}.*the target was not switched to"):
        asyncio.run(move_run.run_move(options))
    assert env.read_bytes() == original
    run = load_run(state)
    assert run.state() == FAILED
    steps = [r["step"] for r in run.finished_steps()]
    assert "backup" in steps and "verify" in steps and "switch" not in steps


def test_env_backup_is_byte_for_byte(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    original = b'# engine\r\nDATABASE_URL="sqlite:///./engine.db"\nOPENAI_API_KEY=sk-abcdefghijklmnop\n\n'
    env.write_bytes(original)
    os.chmod(env, 0o640)
    record = backup_env(env, tmp_path / "run")
    assert Path(record.path).read_bytes() == original and _mode(record.path) == 0o600
    env.write_bytes(b"DATABASE_URL=postgresql+asyncpg://u:pw@h/db\n")
    os.chmod(env, 0o644)
    sentence = restore_env(BackupRecord.from_dict(record.to_dict()), env)
    assert env.read_bytes() == original and _mode(env) == 0o640
    assert "byte for byte" in sentence


def test_pg_backup_and_restore_bring_back_revision_rows_and_sequences(pg_url: str, engine_db: Path,
                                                                      tmp_path: Path) -> None:
    build_pg_1_0_0(pg_url, engine_db)
    _upgrade(pg_url, "0002")
    db = parse_url(pg_url)
    before = counts(pg_url)
    definitions = read(pg_url, "SELECT id, definition::text FROM workflows ORDER BY id")
    record = asyncio.run(backup_database(db, tmp_path / "run", lambda e: None))
    assert record.kind == "pg_dump" and record.revision == "0002"
    assert record.check.startswith("pg_restore --list:") and record.check.endswith("5 tables")
    assert dict(map(tuple, record.row_counts)) == before
    assert _mode(record.path) == 0o600 and sha256_file(record.path) == record.sha256

    _upgrade(pg_url, "0004", stamp=None)
    write(pg_url, "DELETE FROM settings")
    assert counts(pg_url)["settings"] == 0
    sentence = asyncio.run(restore_database(record, db, lambda e: None))
    assert revision(pg_url) == "0002" and counts(pg_url) == before
    assert read(pg_url, "SELECT id, definition::text FROM workflows ORDER BY id") == definitions
    # The sequence came back too: the engine's next insert does not collide.
    assert read(pg_url, "SELECT nextval(pg_get_serial_sequence('executions', 'id'))")[0][0] == before["executions"] + 1
    assert "revision 0002" in sentence and "equal those recorded" in sentence


def _fake_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)


def test_pg_dump_gets_the_password_from_the_environment_only(pg_url: str, engine_db: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper around the real tools logs what pg_dump was given: the password never in argv."""
    real = asyncio.run(pgtools.for_database(parse_url(pg_url)))
    real_dump, real_restore = real.path("pg_dump"), real.path("pg_restore")
    bin_dir, log = tmp_path / "bin", tmp_path / "argv.log"
    _fake_tool(bin_dir, "pg_dump", f'echo "$@" "PGPASSWORD=$PGPASSWORD" >> {log}\nexec {real_dump} "$@"\n')
    _fake_tool(bin_dir, "pg_restore", f'exec {real_restore} "$@"\n')
    monkeypatch.setenv("WIZARD_PG_BIN", str(bin_dir))
    build_pg_1_0_0(pg_url, engine_db)
    secret = "pw-S3cret-not-in-argv"
    url = parse_url(pg_url)
    with_password = parse_url(url.url.set(password=secret).render_as_string(hide_password=False))
    asyncio.run(backup_database(with_password, tmp_path / "run", lambda e: None))
    dump_call = [line for line in log.read_text().splitlines() if "--format=custom" in line]
    assert dump_call and dump_call[0].endswith(f"PGPASSWORD={secret}")
    assert secret not in dump_call[0].rsplit("PGPASSWORD=", 1)[0]


def test_missing_or_old_pg_dump_is_one_clear_line(pg_url: str, engine_db: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    build_pg_1_0_0(pg_url, engine_db)
    db = parse_url(pg_url)
    monkeypatch.setenv("WIZARD_PG_BIN", str(tmp_path / "empty"))
    with pytest.raises(Refused, match=r"pg_dump and pg_restore are not installed in .*empty \(WIZARD_PG_BIN\)"):
        asyncio.run(backup_database(db, tmp_path / "run", lambda e: None))
    old = tmp_path / "old"
    _fake_tool(old, "pg_dump", 'echo "pg_dump (PostgreSQL) 9.6.24"\n')
    _fake_tool(old, "pg_restore", 'echo "pg_restore (PostgreSQL) 9.6.24"\n')
    monkeypatch.setenv("WIZARD_PG_BIN", str(old))
    with pytest.raises(Refused, match=r"pg_dump is older than the server \(PostgreSQL \d+\) and cannot dump it \(9 in "):
        asyncio.run(backup_database(db, tmp_path / "run", lambda e: None))
    assert not list((tmp_path / "run").glob("*"))


def test_a_writer_cannot_commit_while_the_sqlite_backup_reads(engine_db: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup's read lock holds from its first page to its last, although it hashes the file meanwhile
    (closing any handle on a file drops the process's POSIX locks on it, SQLite's included)."""
    import subprocess
    import sys

    from wizard import backup as backup_module
    from wizard.events import ProgressMeter

    writer = ("import sqlite3, sys\n"
              "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
              "c.execute('BEGIN IMMEDIATE')\n"
              "c.execute(\"UPDATE users SET email = 'changed@example.com'\")\n"
              "try:\n    c.execute('COMMIT')\nexcept sqlite3.OperationalError as e:\n    print(e)\n"
              "else:\n    print('committed')\n")
    answers: list[str] = []

    class WriterMidBackup(ProgressMeter):
        def advance(self, n: int = 1) -> None:  # runs in the backup's thread, between its steps
            if not answers:
                answers.append(subprocess.run([sys.executable, "-c", writer, str(engine_db)],
                                              capture_output=True, text=True, timeout=30).stdout.strip())
            super().advance(n)

    monkeypatch.setattr(backup_module, "ProgressMeter", WriterMidBackup)
    monkeypatch.setattr(backup_module, "BACKUP_PAGES_PER_STEP", 1)
    before = sha256_file(engine_db)
    record = asyncio.run(backup_database(parse_url(f"sqlite:///{engine_db}"), tmp_path, lambda e: None))
    assert answers == ["database is locked"]
    assert record.original_sha256 == sha256_file(engine_db) == before  # the writer's change never landed


@pytest.mark.parametrize("server", ["pg_url", "mysql_url"])
def test_a_database_with_no_tables_is_refused_before_a_run_exists(server: str, request: pytest.FixtureRequest,
                                                                  tmp_path: Path) -> None:
    """As an upgrade refuses it: exit 3 and no state directory; the backup began a run and failed it (exit 1)."""
    from test_cli_errors import wizard

    url = request.getfixturevalue(server)  # a fresh, empty database
    done = wizard("backup", "--source", url, "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(
        "has no tables: nothing to back up (is it the right database?)"), done.stderr
    assert not (tmp_path / "state").exists()

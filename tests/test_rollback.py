"""Rollback walks the journal backwards and proves what it restored."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from engine_data import build_pg_1_0_0, columns, counts, read, revision
from wizard.backup import sha256_file
from wizard.errors import BadInput, Refused, StepError
from wizard.journal import ROLLED_BACK, load_run, new_run
from wizard.lock import StateLock
from wizard.rollback.run import (ACTIONS, Credentials, UndoAction, plan_rollback, prepare_rollback, register,
                                 rollback_run)
from wizard.upgrade import run_upgrade
from wizard.urls import parse_url


def _upgrade(url: str, state: Path) -> str:
    return asyncio.run(run_upgrade(parse_url(url), None, state, lambda e: None, True)).run_id


def _rollback(state: Path, run_id: str, **kw) -> list[str]:
    return asyncio.run(rollback_run(load_run(state, run_id), lambda e: None, **kw))


def test_rollback_gives_back_a_byte_identical_sqlite_file(engine_db: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = sha256_file(engine_db)
    run_id = _upgrade(f"sqlite:///{engine_db}", state)
    assert sha256_file(engine_db) != before

    (action,) = plan_rollback(load_run(state, run_id))  # the backup makes the downgrade needless
    assert action.action == "restore_database"
    assert action.describe().startswith(f"restore {engine_db} from backup ")
    assert "sha256 " in action.describe() and " kB" in action.describe()
    # what the confirmation says of the path: an upgrade's fast path restores the backup, and drops nothing
    plan = asyncio.run(prepare_rollback(load_run(state, run_id)))
    assert plan.path() == (f"nothing was written to {engine_db} since the upgrade finished: the fast path (restore the "
                           "backup) loses nothing")

    (line,) = _rollback(state, run_id)
    assert sha256_file(engine_db) == before
    assert line.startswith(f"restored {engine_db}: sha256 {before[:16]}")
    run = load_run(state, run_id)
    assert run.state() == ROLLED_BACK
    with pytest.raises(Refused, match="already rolled back"):
        _rollback(state, run_id)


def test_rollback_of_a_wal_mode_database_is_byte_identical(tmp_path: Path, engine_db: Path) -> None:
    conn = sqlite3.connect(engine_db)
    conn.execute("PRAGMA journal_mode=wal")
    conn.close()  # the engine stopped cleanly: no -wal left
    before = sha256_file(engine_db)
    run_id = _upgrade(f"sqlite:///{engine_db}", tmp_path / "state")
    _rollback(tmp_path / "state", run_id)
    assert sha256_file(engine_db) == before
    assert not Path(f"{engine_db}-wal").exists()


def test_rollback_on_postgresql_restores_revision_rows_and_data(pg_url: str, engine_db: Path, tmp_path: Path) -> None:
    build_pg_1_0_0(pg_url, engine_db)
    rows = counts(pg_url)
    states = read(pg_url, "SELECT id, state::text FROM executions ORDER BY id")
    run_id = _upgrade(pg_url, tmp_path / "state")
    assert revision(pg_url) == "0004"

    # The journal masks a password (pgserver's URL has an empty one): it comes back from --db.
    override = parse_url(pg_url) if make_url(pg_url).password is not None else None
    (line,) = _rollback(tmp_path / "state", run_id, db_override=override)
    assert revision(pg_url) is None and counts(pg_url) == rows  # no alembic_version: 1.0.0 again
    assert read(pg_url, "SELECT id, state::text FROM executions ORDER BY id") == states
    assert "none recorded (1.0.0)" in line and "equal those recorded at backup time" in line


def test_without_its_backup_the_run_is_undone_by_alembic_downgrade(engine_db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{engine_db}"
    state = tmp_path / "state"
    definitions = read(url, "SELECT id, definition FROM workflows ORDER BY id")
    run_id = _upgrade(url, state)
    run = load_run(state, run_id)
    os.unlink(next(r["backup"]["path"] for r in run.finished_steps() if r["step"] == "backup"))

    (action,) = plan_rollback(run)
    assert action.action == "downgrade"
    assert action.describe() == (f"downgrade {engine_db} from 0004 to 0001 with Alembic, then remove alembic_version "
                                 "(back to 1.0.0, no revision recorded); first saves workflows.tags (dropped by the "
                                 f"downgrade) to {run.folder / 'dropped'}")
    (line,) = _rollback(state, run_id)
    assert "no revision recorded and its tables match 0001" in line
    assert f"20 value(s) of workflows.tags saved to {run.folder / 'dropped' / 'workflows.jsonl'}" in line
    assert revision(url) is None and "tags" not in columns(url, "workflows")
    assert read(url, "SELECT id, definition FROM workflows ORDER BY id") == definitions


def test_a_run_that_still_holds_the_lock_is_refused(engine_db: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_id = _upgrade(f"sqlite:///{engine_db}", state)
    after = sha256_file(engine_db)
    with StateLock(state).acquire(run_id, "upgrade"):
        with pytest.raises(Refused, match=f"run {run_id} \\(upgrade"):
            _rollback(state, run_id)
    assert sha256_file(engine_db) == after
    assert load_run(state, run_id).state() == "finished"


def test_a_run_with_nothing_to_undo_is_refused(tmp_path: Path) -> None:
    run = new_run(tmp_path, "upgrade")
    run.step_finished("check")
    with pytest.raises(Refused, match="nothing to roll back"):
        plan_rollback(run)


def test_journeys_register_their_own_undo_actions(tmp_path: Path) -> None:
    done: list[str] = []

    @register
    class DropTables(UndoAction):
        action = "test_drop_tables"

        def describe(self) -> str:
            return f"drop {', '.join(self.undo['tables'])} in {self.target}"

        async def perform(self, emit, credentials) -> str:  # type: ignore[no-untyped-def]
            done.extend(self.undo["tables"])
            return "dropped"

    try:
        run = new_run(tmp_path, "move")
        run.step_finished("schema", undo={"action": "test_drop_tables", "db": f"sqlite:///{tmp_path}/gone.db",
                                          "tables": ["users", "workflows"]})
        run.step_finished("mystery", undo={"action": "no_such_action"})
        with pytest.raises(StepError, match="'no_such_action' this wizard does not know"):
            plan_rollback(run)
        run2 = new_run(tmp_path, "move")
        run2.step_finished("schema", undo={"action": "test_drop_tables", "db": f"sqlite:///{tmp_path}/gone.db",
                                           "tables": ["users", "workflows"]})
        assert [a.describe() for a in plan_rollback(run2)] == [f"drop users, workflows in sqlite:///{tmp_path}/gone.db"]
        assert asyncio.run(rollback_run(run2, lambda e: None)) == ["dropped"]
        assert done == ["users", "workflows"]
    finally:
        del ACTIONS["test_drop_tables"]


def test_masked_passwords_come_back_from_db_pgpassword_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    masked = "postgresql://app:***@db.example:5432/engine"
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(BadInput, match="pass --db with the full URL, or set PGPASSWORD"):
        Credentials().resolve(masked)
    env = tmp_path / ".env"
    env.write_text('DATABASE_URL="postgresql+asyncpg://app:from-env@db.example/engine"\n')
    assert Credentials(env_file=env).resolve(masked).url.password == "from-env"
    env.write_text('DATABASE_URL="postgresql+asyncpg://app:from-env@db.example/other"\n')
    with pytest.raises(BadInput):
        Credentials(env_file=env).resolve(masked)  # another database's password is never borrowed
    override = parse_url("postgresql://app:given@db.example/engine")
    assert Credentials(db_override=override).resolve(masked).url.password == "given"
    with pytest.raises(BadInput, match="but the run changed"):
        Credentials(db_override=parse_url("postgresql://app:x@elsewhere/engine")).resolve(masked)
    monkeypatch.setenv("PGPASSWORD", "from-pgpassword")
    assert Credentials().resolve(masked).url.password == "from-pgpassword"
    assert Credentials().resolve("postgresql://app@db.example/engine").url.password is None


def test_a_database_the_engine_still_has_open_is_not_replaced(engine_db: Path, tmp_path: Path) -> None:
    """An idle engine holds no SQLite lock, but its open file would miss the restore: refused, nothing changed."""
    state = tmp_path / "state"
    run_id = _upgrade(f"sqlite:///{engine_db}", state)
    after = sha256_file(engine_db)
    engine = subprocess.Popen([sys.executable, "-c", f"import sqlite3, sys; c = sqlite3.connect({str(engine_db)!r}); "
                               "c.execute('SELECT 1 FROM users').fetchall(); print('open', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert engine.stdout.readline().strip() == "open"
        with pytest.raises(Refused, match=f"is open in process {engine.pid} "):
            _rollback(state, run_id)
        assert sha256_file(engine_db) == after and load_run(state, run_id).state() == "finished"
    finally:
        engine.stdin.close()
        engine.wait()
    _rollback(state, run_id)  # the engine stopped: now it goes
    assert load_run(state, run_id).state() == ROLLED_BACK


@pytest.mark.parametrize("key", ["env_file", "path"])
def test_a_switched_env_is_restored_whichever_key_its_journal_used(tmp_path: Path, key: str) -> None:
    """The one .env switch journals "env_file"; a move journaled by an older wizard said "path": both undo."""
    from wizard.backup import backup_env

    env = tmp_path / ".env"
    env.write_bytes(b"# engine\nDATABASE_URL=sqlite:///engine.db\r\nOTHER=1\n")
    before = env.read_bytes()
    run = new_run(tmp_path / "state", "move")
    record = backup_env(env, run.folder)
    run.step_finished("switch", undo={"action": "restore_env", key: str(env), "backup": record.to_dict()})
    env.write_bytes(b"DATABASE_URL=postgresql://app@db/engine\n")
    (action,) = plan_rollback(run)
    assert str(env) in action.describe()
    _rollback(tmp_path / "state", run.id)
    assert env.read_bytes() == before

"""kill -9 of a real `wizard rollback` at the points where it keeps what the engine wrote since the run
(the carry-back into the SQLite file, the downgrade that replaces a restore), then `wizard rollback` again.

Every test ends by reading what the engine sees in the database it points at afterwards and counting the
rows written since that are not there (rows lost).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine_data import ENGINE_WRITES_PG, engine_rows, read, write
from fault_support import wizard, wizard_killed_at
from move_helpers import execute, sha256, tables_in
from wizard import sample
from wizard.journal import FINISHED, ROLLED_BACK, load_run

pytestmark = pytest.mark.slow  # real processes: `pytest -m slow` runs them


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.build(tmp_path_factory.mktemp("small") / "engine.db", executions=2_000, workflows=20, users=5)


def _again(said: str) -> str:
    """What the second rollback did with the carry-back, from what it printed."""
    if "already holds the rows written since" in said:
        return "found the rows already carried and checked them row by row"
    if "verified carried " in said:
        return "carried them"
    return "went on after the carry-back its journal showed done"


def _lost(expected: dict[str, set], got: dict[str, set]) -> int:
    return sum(len(expected[t] - got[t]) for t in expected)


def _moved_and_written(small_db: Path, pg_url: str, tmp_path: Path) -> tuple[Path, Path, bytes, Path, list[str]]:
    """A copy of the file moved to PostgreSQL and the engine's writes there: (file, .env, .env before the move,
    state folder, the rollback's arguments)."""
    db = tmp_path / "engine.db"
    shutil.copyfile(small_db, db)
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL=sqlite+aiosqlite:///{db}\nLOG_LEVEL=info\n")
    before_env = env.read_bytes()
    state = tmp_path / "state"
    moved = wizard("migrate", "--source", f"sqlite:///{db}", "--target", pg_url, "--env-file", str(env), "--yes",
                   "--state-dir", str(state))
    assert moved.returncode == 0, moved.stderr[-3000:]
    execute(pg_url, *ENGINE_WRITES_PG)
    rollback = ["rollback", "--last", "--yes", "--state-dir", str(state), "--env-file", str(env)]
    return db, env, before_env, state, rollback


@pytest.mark.parametrize("spec, where", [
    # _one runs once per row written; the 20th is inside the carry-back's open SQLite transaction.
    ("wizard.rollback.carry_back:_one:20", "inside the carry-back's SQLite transaction (20 rows written, not committed)"),
    # check()'s first call is the proof, after the commit and before the journal said the carry-back was done.
    ("wizard.rollback.carry_back:check:1", "after the carry-back committed, before its proof and the journal"),
    # restore_env is the next action's: the carry-back done and journaled, `.env` not yet restored.
    ("wizard.rollback.run:restore_env:1", "between the carry-back and the `.env` restore"),
], ids=["carry-back-uncommitted", "carry-back-committed", "before-env-restore"])
def test_kill_while_a_move_is_rolled_back_keeping_rows_written_since(spec: str, where: str, small_db: Path,
                                                                     pg_url: str, tmp_path: Path, survived) -> None:
    db, env, before_env, state, rollback = _moved_and_written(small_db, pg_url, tmp_path)
    moved_sha = sha256(db)
    expected = engine_rows(pg_url)

    killed = wizard_killed_at(spec, *rollback)
    carried_at_kill = sha256(db) != moved_sha
    assert carried_at_kill == (not spec.endswith("_one:20"))  # the kill landed where it says
    assert load_run(state).state() == FINISHED and "executions" in tables_in(pg_url)
    assert env.read_bytes() != before_env  # .env still points at the target

    again = wizard(*rollback)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in killed.stderr + again.stderr
    assert load_run(state).state() == ROLLED_BACK
    assert env.read_bytes() == before_env and tables_in(pg_url) == []
    got = engine_rows(f"sqlite:///{db}")
    assert got == expected
    said = " ".join(again.stdout.split())
    survived(fault=f"kill -9 during `wizard rollback` of a move after the engine wrote to the target (56 rows "
                   f"inserted, changed, deleted): {where}",
             did=f"exit {killed.returncode}, the file {'already' if carried_at_kill else 'not yet'} carried; "
                 f"`wizard rollback` again exit {again.returncode}: {_again(said)}, `.env` byte-identical, the "
                 f"target's tables dropped, the file equal to the target as it stood",
             rows_lost=_lost(expected, got))


def test_kill_during_the_downgrade_that_keeps_rows_written_since_an_upgrade(small_db: Path, tmp_path: Path,
                                                                            survived) -> None:
    folder = tmp_path / "engine"
    folder.mkdir()
    db = folder / "engine.db"
    shutil.copyfile(small_db, db)
    url = f"sqlite:///{db}"
    state = tmp_path / "state"
    upgraded = wizard("upgrade", "--db", url, "--yes", "--state-dir", str(state))
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    write(url, "INSERT INTO executions (id, workflow_id, status, state) SELECT 9000 + id, workflow_id, 'new', "
               "'{\"nodes\": [{\"id\": \"n\", \"v\": 1}]}' FROM executions WHERE id <= 40")
    write(url, "UPDATE workflows SET tags = '[\"keep\"]' WHERE id = (SELECT min(id) FROM workflows)")
    written = {r[0] for r in read(url, "SELECT id FROM executions WHERE id > 9000")}
    upgraded_sha = sha256(db)
    rollback = ["rollback", "--last", "--yes", "--state-dir", str(state)]

    # The data revisions' rewrites run inside the downgrade's one transaction: 0004's first, then 0003's.
    killed = wizard_killed_at("migrations.batches:rewrite_json_column:2", *rollback)
    assert sha256(db) == upgraded_sha or read(url, "SELECT version_num FROM alembic_version") == [("0004",)]
    assert load_run(state).state() == FINISHED

    again = wizard(*rollback)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in killed.stderr + again.stderr
    assert load_run(state).state() == ROLLED_BACK
    tables = {r[0] for r in read(url, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "alembic_version" not in tables
    states = {r[0]: json.loads(r[1]) for r in read(url, "SELECT id, state FROM executions WHERE id > 9000")}
    assert all(s == {"nodes": {"n": {"v": 1}}} for s in states.values())
    run_folder = load_run(state).folder
    saved = [json.loads(line) for line in (run_folder / "dropped" / "workflows.jsonl").read_text().splitlines()]
    assert sum(s["row"]["tags"] == '["keep"]' for s in saved) == 1
    survived(fault="kill -9 during `wizard rollback` of a SQLite upgrade after the engine wrote 40 executions, "
                   "inside the downgrade's transaction (0004 undone, 0003 under way)",
             did=f"exit {killed.returncode}, the file as the engine left it (the transaction rolled back); `wizard "
                 f"rollback` again exit {again.returncode}: downgraded to 1.0.0 keeping the 40 rows, their state "
                 f"converted back, workflows.tags saved to the run folder first",
             rows_lost=len(written - set(states)))


def test_kill_after_the_carry_back_then_the_engine_writes_again_before_the_next_rollback(
        small_db: Path, pg_url: str, tmp_path: Path, survived) -> None:
    """kill -9 after the carry-back committed, before its proof: .env still names the target, so the engine goes on
    writing there before the operator runs `wizard rollback` again. That one refused, saying the file 'was written
    since the move too' and to 'stop whatever writes to it': nothing did (the rows in it were the killed rollback's),
    and every later rollback refused the same, with no way on. Now the file, found exactly as the killed carry-back
    left it, is put back as the move left it (exit 1, one line: roll back again), and the next rollback measures
    again and carries every row, the later ones too."""
    db, env, before_env, state, rollback = _moved_and_written(small_db, pg_url, tmp_path)
    moved_sha = sha256(db)
    wizard_killed_at("wizard.rollback.carry_back:check:1", *rollback)
    assert sha256(db) != moved_sha  # the carry-back committed
    run_id = load_run(state).id
    status = wizard("status", "--state-dir", str(state), "--json")  # said 'finished', as if nothing had begun
    assert json.loads(status.stdout.splitlines()[-1])["runs"][0]["state"] == "rollback unfinished", status.stdout
    status = wizard("status", "--state-dir", str(state))
    assert (f"run {run_id}: its rollback stopped part-way; `wizard rollback --run {run_id}` goes on from where it "
            f"stopped") in status.stdout, status.stdout
    execute(pg_url, "INSERT INTO executions (id, workflow_id, status) SELECT 55555, workflow_id, 'after the kill' "
                    "FROM executions WHERE id = 1", "UPDATE executions SET status = 'again' WHERE id = 1")
    expected = engine_rows(pg_url)

    second = wizard(*rollback)
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr[-3000:]
    said = second.stderr.strip().splitlines()[-1]
    assert "held the rows a rollback that stopped had carried into it, and the target was written after that: the " \
           "file was put back as the move left it" in said and said.endswith("roll back again, it measures the "
                                                                             "target again"), said
    assert sha256(db) == moved_sha and "executions" in tables_in(pg_url)

    third = wizard(*rollback)
    assert third.returncode == 0, third.stderr[-3000:]
    assert load_run(state).state() == ROLLED_BACK
    assert env.read_bytes() == before_env and tables_in(pg_url) == []
    got = engine_rows(f"sqlite:///{db}")
    assert got == expected
    survived(fault="kill -9 during `wizard rollback` of a move after the carry-back committed, before its proof; then "
                   "the engine, still on the target, writes again (a row added, one changed)",
             did=f"`wizard rollback` again exit {second.returncode}: the file, exactly as the killed carry-back left "
                 f"it, put back as the move left it, one line saying to roll back again; then exit "
                 f"{third.returncode}: measured again, every row carried, `.env` byte-identical, the tables dropped",
             rows_lost=_lost(expected, got))

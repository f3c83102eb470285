"""kill -9 of a real `wizard rollback` of a move off MariaDB while it carries the rows the engine wrote to
PostgreSQL since back into the MariaDB source, and of a move onto MariaDB while it carries MariaDB's rows into
the SQLite file, then `wizard rollback` again (as tests/faults/test_kill_rollback.py does for PostgreSQL).

Each test ends by reading the source the engine points at afterwards, row by row, and counting the rows
written since that are not there (rows lost).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_data import build_1_0_0
from fault_support import wizard, wizard_killed_at
from move_helpers import sha256, tables_in
from test_rollback_mysql import (_engine_writes_mysql, _engine_writes_pg, _mysql_columns, assert_carried, mysql_rows,
                                 pg_rows, sqlite_rows, touched)
from wizard.journal import FINISHED, ROLLED_BACK, load_run

pytestmark = pytest.mark.slow  # real processes: `pytest -m slow` runs them


@pytest.mark.parametrize("spec, where", [
    # _exactly runs once per statement: executions' DELETE and INSERT, settings' UPDATE, then the 4th, users' UPDATE.
    ("wizard.rollback.carry_mysql:_exactly:4", "inside the carry-back's InnoDB transaction (23 rows written, not "
                                               "committed)"),
    # check()'s first call there is the proof, after the commit and before the journal said the carry-back was done.
    ("wizard.rollback.carry_mysql:check:1", "after the carry-back committed, before its proof and the journal"),
    # restore_env is the next action's: the carry-back done and journaled, `.env` not yet restored.
    ("wizard.rollback.run:restore_env:1", "between the carry-back and the `.env` restore"),
], ids=["carry-back-uncommitted", "carry-back-committed", "before-env-restore"])
def test_kill_while_a_move_off_mariadb_is_rolled_back_keeping_rows_written_since(
        spec: str, where: str, engine_db: Path, mysql_url: str, pg_url: str, tmp_path: Path, survived) -> None:
    source = build_1_0_0(mysql_url, engine_db)
    folder = tmp_path / "engine"
    folder.mkdir()
    env = folder / ".env"
    env.write_text(f"DATABASE_URL={source}\nLOG_LEVEL=info\n")
    before_env = env.read_bytes()
    state = tmp_path / "state"
    columns = _mysql_columns(source)
    source_before = mysql_rows(source, columns)
    moved = wizard("migrate", "--source", source, "--target", pg_url, "--env-file", str(env), "--yes",
                   "--state-dir", str(state))
    assert moved.returncode == 0, moved.stderr[-3000:]
    at_move = pg_rows(pg_url, columns)
    _engine_writes_pg(pg_url)
    written = pg_rows(pg_url, columns)
    rollback = ["rollback", "--last", "--yes", "--state-dir", str(state), "--env-file", str(env)]

    killed = wizard_killed_at(spec, *rollback)
    carried_at_kill = mysql_rows(source, columns) != source_before
    assert carried_at_kill == (not spec.endswith("_exactly:4"))  # the kill landed where it says
    assert load_run(state).state() == FINISHED and "executions" in tables_in(pg_url)
    assert env.read_bytes() != before_env  # .env still points at the target

    again = wizard(*rollback)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in killed.stderr + again.stderr
    assert load_run(state).state() == ROLLED_BACK
    assert env.read_bytes() == before_env and not [t for t in tables_in(pg_url) if t in columns]
    after = mysql_rows(source, columns)
    lost = sum(len(set(written[t]) - set(after[t])) for t in columns)
    assert_carried(source_before, written, after, touched(at_move, written), columns)
    said = " ".join(again.stdout.split())
    again_did = ("found the rows already carried and checked them row by row" if "already holds the rows" in said
                 else "carried them" if "carried 29 row(s)" in said
                 else "went on after the carry-back its journal showed done")
    survived(fault=f"kill -9 during `wizard rollback` of a move off MariaDB after the engine wrote to PostgreSQL (29 "
                   f"rows inserted, changed, deleted in 4 tables): {where}",
             did=f"exit {killed.returncode}, the source {'already' if carried_at_kill else 'not yet'} carried; "
                 f"`wizard rollback` again exit {again.returncode}: {again_did}, `.env` byte-identical, the "
                 f"target's tables dropped, the source equal to the target as it stood, row by row",
             rows_lost=lost)


def test_kill_inside_the_carry_back_of_a_move_onto_mariadb_then_rollback_again(engine_db: Path, mysql_url: str,
                                                                               tmp_path: Path, survived) -> None:
    """The rows written to MariaDB since a move from SQLite, killed inside the SQLite file's transaction."""
    env = engine_db.parent / ".env"
    env.write_text(f"DATABASE_URL=sqlite+aiosqlite:///{engine_db}\n")
    before_env, state = env.read_bytes(), tmp_path / "state"
    moved = wizard("migrate", "--source", f"sqlite:///{engine_db}", "--target", mysql_url, "--env-file", str(env),
                   "--yes", "--state-dir", str(state))
    assert moved.returncode == 0, moved.stderr[-3000:]
    columns = _mysql_columns(mysql_url)
    file_before, at_move = sqlite_rows(engine_db, columns), mysql_rows(mysql_url, columns)
    _engine_writes_mysql(mysql_url)
    written = mysql_rows(mysql_url, columns)
    moved_sha = sha256(engine_db)
    rollback = ["rollback", "--last", "--yes", "--state-dir", str(state), "--env-file", str(env)]

    # _one runs once per row written into the file; the 20th is inside its open SQLite transaction.
    killed = wizard_killed_at("wizard.rollback.carry_back:_one:20", *rollback)
    assert sha256(engine_db) == moved_sha and load_run(state).state() == FINISHED
    again = wizard(*rollback)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in killed.stderr + again.stderr and load_run(state).state() == ROLLED_BACK
    assert env.read_bytes() == before_env
    after = sqlite_rows(engine_db, columns)
    assert_carried(file_before, written, after, touched(at_move, written), columns)
    survived(fault="kill -9 during `wizard rollback` of a move from SQLite onto MariaDB after the engine wrote to "
                   "MariaDB (29 rows inserted, changed, deleted in 4 tables): inside the carry-back's SQLite "
                   "transaction (19 rows written, not committed)",
             did=f"exit {killed.returncode}, the file as the move left it; `wizard rollback` again exit "
                 f"{again.returncode}: carried them, `.env` byte-identical, MariaDB's tables dropped, the file equal "
                 f"to MariaDB as it stood, row by row",
             rows_lost=sum(len(set(written[t]) - set(after[t])) for t in columns))

"""kill -9 of a real `wizard` on MySQL/MariaDB: an upgrade between two revisions (each commits on its own there),
then `wizard rollback`: the database exactly as it was before the run; a move onto MySQL and a move off it, each
mid-copy, then `--resume`: every row once, the source unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_data import build_1_0_0, read, write
from fault_support import source_counts, wizard, wizard_killed_at
from move_helpers import fetch, sha256
from wizard import sample

pytestmark = pytest.mark.slow  # real processes: `pytest -m slow` runs them

ENGINE = ("users", "workflows", "executions", "settings")


def _state(url: str) -> tuple[list[tuple], dict[str, int]]:
    return read(url, "SHOW TABLES"), {t: read(url, f"CHECKSUM TABLE {t}")[0][1] for t in ENGINE}


def test_kill_between_two_revisions_then_rollback(mysql_url: str, engine_db: Path, survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    before = _state(mysql_url)
    folder = engine_db.parent
    # schema.upgrade's third call: the baseline and 0002 are committed, 0003 has begun (journaled, not run).
    state_dir = str(folder / ".wizard")
    wizard_killed_at("wizard.schema:upgrade:3", "upgrade", "--db", mysql_url, "--yes", "--state-dir", state_dir)
    assert read(mysql_url, "SELECT version_num FROM alembic_version") == [("0002",)]
    assert read(mysql_url, "SHOW COLUMNS FROM workflows LIKE 'tags'") != []  # 0002 really is in
    (run,) = (folder / ".wizard" / "runs").iterdir()
    steps = [r["step"] for r in map(json.loads, (run / "journal.jsonl").read_text().splitlines())
             if r["kind"] == "step_finished"]
    assert "revision 0002" in steps and "revision 0003" not in steps
    back = wizard("rollback", "--last", "--yes", "--state-dir", state_dir)
    assert back.returncode == 0, back.stderr
    assert _state(mysql_url) == before
    survived(fault="kill -9 of `wizard upgrade` on MariaDB between two revisions (baseline and 0002 committed, "
                   "0003 begun), then `wizard rollback`",
             did="the journal had each committed revision as a step of its own; the rollback restored the proven "
                 "mysqldump: 1.0.0 again, no alembic_version, every table's CHECKSUM as before the run", rows_lost=0)


def test_kill_mid_copy_into_mysql_then_resume_equals_the_source(mysql_url: str, tmp_path: Path, survived) -> None:
    """kill -9 of `wizard migrate` into MariaDB inside the 2nd chunk of executions (its LOAD DATA done, its
    checkpoint not yet written, nothing committed), then `--resume`: every row once, verified."""
    source = sample.build(tmp_path / "engine.db", executions=25_000, workflows=20, users=5)
    before, counts = sha256(source), source_counts(source)
    state = str(tmp_path / "state")
    args = ("migrate", "--source", f"sqlite:///{source}", "--target", mysql_url, "--yes", "--state-dir", state)
    # _save's calls: users (a chunk, done), workflows (a chunk, done), executions' 1st chunk, then its 2nd.
    wizard_killed_at("wizard.mysql.copy:_save:6", *args)
    copied = read(mysql_url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'")
    assert copied == [(10_000, 0)]
    assert read(mysql_url, "SELECT COUNT(*) FROM executions") == [(10_000,)]  # the 2nd chunk went with its commit
    resumed = wizard(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for table, n in counts.items():
        assert read(mysql_url, f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}") == [(n, n)], table
    assert sha256(source) == before
    survived(fault="kill -9 of `wizard migrate` into MariaDB in the 2nd chunk of executions (LOAD DATA done, "
                   "checkpoint not written), then `wizard migrate --resume`",
             did="the checkpoint said 10,000 executions, as in the table; the resume carried on after it: every "
                 "table's rows once (count = distinct ids = the source's), the row-level verification equal, the "
                 "source's sha256 unchanged", rows_lost=0)


def test_kill_mid_copy_of_a_move_off_mysql_then_resume(mysql_url: str, pg_url: str, engine_db: Path,
                                                       survived) -> None:
    build_1_0_0(mysql_url, engine_db)
    columns = ", ".join(f'"{r[0]}"' for r in read(mysql_url, "SHOW COLUMNS FROM executions") if r[0] != "id")
    for _ in range(6):  # 300 executions -> 19,200: two chunks of 10,000
        write(mysql_url, f"INSERT INTO executions ({columns}) SELECT {columns} FROM executions")
    before = _state(mysql_url)
    state = str(engine_db.parent / ".wizard")
    move = ["migrate", "--source", mysql_url, "--target", pg_url, "--state-dir", state, "--yes", "--jobs", "1"]
    # Checkpoint writes with --jobs 1: users, settings, workflows (a chunk, done: 2 each), then executions:
    # its first chunk is the 7th, the 8th its second chunk, COPYed and not committed.
    killed = wizard_killed_at("wizard.move.copy:_save:8", *move)
    assert fetch(pg_url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'") \
        == [(10_000, False)]
    assert fetch(pg_url, "SELECT count(*) FROM executions")[0][0] == 10_000
    resumed = wizard(*move, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in killed.stderr + resumed.stderr
    assert fetch(pg_url, "SELECT count(*), count(DISTINCT id) FROM executions")[0] == (19_200, 19_200)
    (report,) = (engine_db.parent / ".wizard" / "runs").glob("*/verify.md")
    assert _state(mysql_url) == before  # the source was never written
    survived(fault="kill -9 of `wizard migrate` off MariaDB in the middle of executions (its 2nd of 2 chunks "
                   "COPYed, not committed), then `wizard migrate --resume`",
             did="the checkpoint held executions at 10,000 rows; the resume carried on after its key: 19,200 "
                 f"rows, each once; the row-level verification against the source: equal ({report.name}); the "
                 "source's CHECKSUMs as before", rows_lost=0)

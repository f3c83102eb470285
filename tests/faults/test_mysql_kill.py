"""kill -9 of a real `wizard upgrade` on MySQL/MariaDB between two revisions (each commits on its own there),
then `wizard rollback`: the database must be exactly as it was before the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_data import build_1_0_0, read
from fault_support import wizard, wizard_killed_at

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

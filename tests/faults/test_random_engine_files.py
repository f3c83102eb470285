"""Engine databases with values nobody here chose: hypothesis puts a few odd values (numbers at the edges,
NaN, text in a number's column, blobs, NUL bytes, dates that are not, JSON that is not, 300 characters, NULL
where the schema forbids it) into random columns of a small engine file, and the real `wizard migrate
--on-orphans quarantine` moves it to PostgreSQL or onto MariaDB. Whatever hypothesis chose, the move finishes
(a value the target will not take is quarantined by the pre-flight, never met mid-copy), `wizard verify`
finds every source row in the target or the quarantine, and `wizard rollback` leaves the target empty.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine_data import read
from fault_support import rows_lost, wizard
from move_helpers import tables_in
from wizard import sample

ODD = [None, 0, 1, -1, 2, 2**63 - 1, -2**63, 1.5, -0.0, 1e308, float("inf"), float("nan"), "", " ", "0", "true",
       "yes", "2024-01-01", "2024-01-01T10:00:00Z", "2024-13-01 00:00:00", "0000-00-00 00:00:00", "2024-02-30",
       "1735689600", "{}", "[]", "null", '{"nodes": {"x": 5}}', "{bad", '"s"', "a\x00b", "\U0001f600", "\t\n\\N",
       "x" * 300, b"\xff\xfe", b"hi", "1e5", "\u0661\u0662", "9999-12-31 23:59:59.999999",
       "2024-01-01 10:00:00.1234567", "2024-01-01 10:00:00+05:30"]
COLUMNS = [("users", c) for c in ("username", "email", "hashed_password", "is_active", "is_admin", "created_at")] + \
          [("workflows", c) for c in ("name", "description", "definition", "owner_id", "is_public", "updated_at")] + \
          [("executions", c) for c in ("workflow_id", "status", "state", "error", "started_at", "completed_at")] + \
          [("settings", c) for c in ("settings_data", "created_at")]

changes = st.lists(st.tuples(st.sampled_from(COLUMNS), st.sampled_from(ODD), st.integers(1, 3)), min_size=1,
                   max_size=4)


def odd_engine_file(folder: Path, planted: list[tuple[tuple[str, str], Any, int]]) -> Path:
    path = folder / "engine.db"
    sample.build(path, executions=20, workflows=3, users=3)
    conn = sqlite3.connect(path)
    try:
        for (table, column), value, row in planted:
            try:
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, row))
            except sqlite3.IntegrityError:
                pass  # the file's own NOT NULL or UNIQUE refused it: the engine could not have written it either
        conn.commit()
    finally:
        conn.close()  # open, it is an engine still running: the rollback would rightly refuse
    return path


@pytest.mark.slow  # about 3 s an example
@pytest.mark.parametrize("onto", ["postgresql", "mariadb"])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(planted=changes)
@example(planted=[(("users", "username"), "x" * 300, 2), (("executions", "state"), "{bad", 3)])
@example(planted=[(("workflows", "owner_id"), "\U0001f600", 1), (("executions", "started_at"), "2024-02-30", 4)])
def test_an_engine_file_with_odd_values_moves_verified_and_rolls_back(onto: str, planted: list, pg_url: str,
                                                                      mysql_url: str) -> None:
    target = pg_url if onto == "postgresql" else mysql_url
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = odd_engine_file(folder, planted)
        moved = wizard("migrate", "--source", f"sqlite:///{source}", "--target", target, "--state-dir",
                       str(folder / "state"), "--on-orphans", "quarantine", "--yes", cwd=folder)
        assert moved.returncode == 0, f"{planted}\n{moved.stderr[-2000:]}"
        (run,) = (folder / "state" / "runs").iterdir()
        assert rows_lost(source, target, run) == 0
        back = wizard("rollback", "--run", run.name, "--yes", "--state-dir", str(folder / "state"), cwd=folder)
        assert back.returncode == 0, f"{planted}\n{back.stderr[-2000:]}"
    left = tables_in(target) if onto == "postgresql" else [r[0] for r in read(target, "SHOW TABLES")]
    assert left == [], left

"""JSON nested 1,000 to 2,000 deep in an engine database: SQLite's json_valid and PostgreSQL's json take it, Python's
json stops at about 1,000. The move copies the text as it is and verifies it equal as text; a target changed
since (by hand here, by the engine in life) made `wizard verify` read it through Python's json, and it ended in a
RecursionError traceback instead of naming the difference.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fault_support import rows_lost, wizard
from move_helpers import execute
from wizard import sample

DEPTH = 1500


def test_a_difference_in_json_nested_past_pythons_limit_is_named_not_a_traceback(tmp_path: Path,
                                                                                    pg_url: str) -> None:
    source = sample.build(tmp_path / "engine.db", executions=20, workflows=3, users=2)
    conn = sqlite3.connect(source)
    conn.execute("UPDATE executions SET state = ? WHERE id = 7",
                 ('{"nodes": {}, "variables": {"deep": ' + "[" * DEPTH + "]" * DEPTH + "}}",))
    conn.commit()
    conn.close()
    state = tmp_path / "state"
    moved = wizard("migrate", "--source", f"sqlite:///{source}", "--target", pg_url, "--state-dir", str(state),
                   "--yes", cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr[-3000:]
    (run,) = (state / "runs").iterdir()
    assert rows_lost(source, pg_url, run) == 0
    execute(pg_url, "UPDATE executions SET state = replace(state::text, '[]', '[1]')::json WHERE id = 7")
    verified = wizard("verify", "--source", f"sqlite:///{source}", "--target", pg_url, "--state-dir", str(state),
                      cwd=tmp_path)
    assert verified.returncode == 1 and "Traceback" not in verified.stderr, verified.stderr[-3000:]
    said = " ".join(verified.stdout.split())
    assert "executions 7: state" in said and "differences found: executions differs" in said, said

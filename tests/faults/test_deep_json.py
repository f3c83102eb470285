"""JSON nested 1,000 to 2,000 deep in an engine database: SQLite's json_valid and PostgreSQL's json take it, Python's
json stops at about 1,000. The move copies the text as it is and verifies it equal as text; a target changed
since (by hand here, by the engine in life) made `wizard verify` read it through Python's json, and it ended in a
RecursionError traceback instead of naming the difference.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fault_support import migrate, rows_lost, small_engine_file, the_run, wizard
from move_helpers import execute, fetch

pytestmark = pytest.mark.slow  # whole moves and upgrades, a wizard process each: `pytest -m slow` (CI runs it)

DEPTH = 1500


def test_a_difference_in_json_nested_past_pythons_limit_is_named_not_a_traceback(tmp_path: Path,
                                                                                    pg_url: str) -> None:
    source = small_engine_file(tmp_path / "engine.db", (
        "UPDATE executions SET state = ? WHERE id = 7",
        ('{"nodes": {}, "variables": {"deep": ' + "[" * DEPTH + "]" * DEPTH + "}}",)))
    state = tmp_path / "state"
    moved = migrate(source, pg_url, state)
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert rows_lost(source, pg_url, the_run(state)) == 0
    execute(pg_url, "UPDATE executions SET state = replace(state::text, '[]', '[1]')::json WHERE id = 7")
    verified = wizard("verify", "--source", f"sqlite:///{source}", "--target", pg_url, "--state-dir", str(state),
                      cwd=tmp_path)
    assert verified.returncode == 1 and "Traceback" not in verified.stderr, verified.stderr[-3000:]
    said = " ".join(verified.stdout.split())
    assert "executions 7: state" in said and "differences found: executions differs" in said, said


def test_a_move_to_head_leaves_json_python_cannot_read_as_it_was_and_says_so(tmp_path: Path, pg_url: str) -> None:
    # Revision 0004 rewrites every state; on PostgreSQL the driver (asyncpg, through SQLAlchemy) parsed the json
    # column itself, so the revision's own try never saw the RecursionError: `migrate --to head` stopped in the
    # upgrade after a passing pre-flight and a verified copy ('upgrade: unexpected RecursionError', exit 1).
    deep = '{"nodes": {"a": {"status": "done"}}, "variables": {"deep": ' + "[" * DEPTH + "]" * DEPTH + "}}"
    source = small_engine_file(tmp_path / "engine.db", ("UPDATE executions SET state = ? WHERE id = 7", (deep,)))
    state = tmp_path / "state"
    moved = migrate(source, pg_url, state, "--to", "head")
    assert moved.returncode == 0, moved.stderr[-3000:]
    said = ("revision 0004 left 1 row(s) of executions.state as they were: JSON that Python's json cannot read "
            "(nested past about 1,000 levels), as the engine cannot")
    assert said in " ".join(moved.stderr.split()), moved.stderr[-3000:]
    assert said in (the_run(state) / "report.md").read_text()
    assert fetch(pg_url, "SELECT state::text FROM executions WHERE id = 7")[0][0] == deep
    assert fetch(pg_url, "SELECT count(*) FROM executions WHERE id <> 7 AND json_typeof(state -> 'nodes') <> 'array'"
                 )[0][0] == 0

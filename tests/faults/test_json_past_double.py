"""A JSON number past a double's range (1e400: valid JSON, which PostgreSQL's json keeps as written) in an engine
database moved with `--to head`, by the real `wizard migrate` to a real PostgreSQL.

The data revisions (0003 on workflows.definition, 0004 on executions.state) read their column through Python's
json, which takes 1e400 for Infinity, and write back Infinity, which no JSON holds: the upgrade stopped after a
passing pre-flight, a copy and a verification (exit 1, invalid input syntax for type json), and `--resume` stopped
there again.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from fault_support import migrate, rows_lost, small_engine_file, the_run
from move_helpers import fetch, tables_in

pytestmark = pytest.mark.slow  # whole moves and upgrades, a wizard process each: `pytest -m slow` (CI runs it)


def test_a_number_the_upgrade_would_write_as_infinity_is_refused_up_front(tmp_path: Path, pg_url: str) -> None:
    source = small_engine_file(tmp_path / "engine.db", (
        "UPDATE workflows SET definition = ? WHERE id = (SELECT min(id) FROM workflows)",
        ('{"nodes": [{"id": "n1", "config": {"weight": -1e400}}], "edges": []}',)))
    with closing(sqlite3.connect(source)) as conn:
        (key,) = conn.execute("SELECT min(id) FROM workflows").fetchone()
    refused = migrate(source, pg_url, tmp_path / "refused", "--to", "head")
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: pre-flight check 'upgrade' failed: workflows.definition at key {key} holds a number past a "
        "double's range at $.nodes[0].config.weight: revision 0003, which the move's upgrade runs, would write it "
        "back as Infinity, which JSON has not: move without --to, or write the number within range in a copy of "
        "the source")
    assert tables_in(pg_url) == []
    # Without the upgrade the number moves as written, and verifies.
    moved = migrate(source, pg_url, tmp_path / "state")
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert rows_lost(source, pg_url, the_run(tmp_path / "state")) == 0
    assert "-1e400" in fetch(pg_url, "SELECT definition::text FROM workflows WHERE id = $1", key)[0][0]

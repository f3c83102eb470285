"""An engine database with triggers another program added (an audit log, a guard), moved to a real PostgreSQL
(which does not get them), written to by the engine there, then rolled back with the real `wizard rollback`.

The carry-back wrote the engine's rows into the file with the triggers live: the audit trigger logged rows the
target never held, the verification of the carried file found them, and the rollback failed (exit 1, the file
restored, nothing else undone) however often it was run; a guard (RAISE(ABORT)) stopped it the same way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fault_support import migrate, small_engine_file, wizard
from move_helpers import execute

TRIGGERS = (
    "CREATE TRIGGER log_runs AFTER INSERT ON executions BEGIN INSERT INTO audit (what) VALUES ('run ' || NEW.id); END",
    "CREATE TRIGGER keep_settings BEFORE DELETE ON settings BEGIN SELECT RAISE(ABORT, 'settings are kept'); END",
)


def test_a_rollback_carries_the_engines_rows_back_without_firing_the_files_triggers(tmp_path: Path,
                                                                                    pg_url: str) -> None:
    source = small_engine_file(tmp_path / "engine.db", "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)",
                               *TRIGGERS)
    state = tmp_path / "state"
    moved = migrate(source, pg_url, state)
    assert moved.returncode == 0, moved.stderr[-3000:]
    execute(pg_url, "INSERT INTO executions (workflow_id, status) SELECT id, 'pending' FROM workflows LIMIT 1",
            "UPDATE settings SET settings_data = '{\"theme\": \"dark\"}'")
    rolled = wizard("rollback", "--last", "--yes", "--state-dir", str(state), cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    conn = sqlite3.connect(source)
    try:
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
        assert conn.execute("SELECT count(*), max(status) FROM executions WHERE id = 21").fetchone() == (1, "pending")
        assert conn.execute("SELECT settings_data FROM settings").fetchall() == [('{"theme": "dark"}',)]
        assert [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
                ] == sorted(TRIGGERS, key=lambda sql: sql.split()[2])
    finally:
        conn.close()

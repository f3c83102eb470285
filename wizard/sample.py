"""A 1.0.0 engine database with realistic rows, for `wizard demo`, the tests and bench/.

Rows are written as the engine writes them: uuid4 text ids, json.dumps text,
SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff' timestamps and 0/1 booleans.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

SCHEMA_SQL = Path(__file__).with_name("schema_1_0_0.sql")
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
NODE_TYPES = ("http", "llm", "condition", "transform", "webhook", "delay")
EPOCH = datetime(2025, 1, 1)


def _ts(rng: random.Random) -> str:
    return (EPOCH + timedelta(seconds=rng.randrange(0, 300 * 86400), microseconds=rng.randrange(1, 10**6))).strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _definition(rng: random.Random, node_ids: list[str]) -> dict:
    nodes = [
        {"id": n, "type": rng.choice(NODE_TYPES), "position": {"x": i * 120, "y": rng.randrange(0, 400)},
         "config": {"timeout": rng.randrange(5, 60), "retries": rng.randrange(0, 3)}}
        for i, n in enumerate(node_ids)
    ]
    edges = [{"source": a, "target": b} for a, b in zip(node_ids, node_ids[1:])]
    return {"nodes": nodes, "edges": edges, "trigger": {"type": "manual"}}


def _state(rng: random.Random, node_ids: list[str]) -> dict:
    nodes = {
        n: {"status": rng.choice(("completed", "failed", "skipped")), "duration_ms": rng.randrange(1, 5000),
            "output": {"result": f"value-{rng.randrange(10**6)}", "tokens": rng.randrange(0, 4000)}}
        for n in node_ids
    }
    return {"nodes": nodes, "variables": {"input": f"request-{rng.randrange(10**6)}", "attempt": rng.randrange(1, 4)}}


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA_SQL.read_text())


def build(path: Path, executions: int = 1000, workflows: int = 50, users: int = 10, seed: int = 1,
          batch: int = 5000) -> Path:
    """Write a fresh 1.0.0 database at `path` (which must not exist)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    try:
        create_schema(conn)
        user_ids = [_uuid(rng) for _ in range(users)]
        conn.executemany(
            "INSERT INTO users VALUES (?,?,?,?,?,?,?)",
            [(u, f"user{i}", f"user{i}@example.com", "$2b$12$" + "x" * 53, 1, int(i == 0), _ts(rng))
             for i, u in enumerate(user_ids)],
        )
        wf_nodes: dict[str, list[str]] = {}
        rows = []
        for i in range(workflows):
            wid = _uuid(rng)
            wf_nodes[wid] = [f"node_{j}" for j in range(rng.randrange(2, 7))]
            rows.append((wid, f"workflow {i}", f"does thing {i}", json.dumps(_definition(rng, wf_nodes[wid])),
                         rng.choice(user_ids), rng.randrange(2), _ts(rng), _ts(rng)))
        conn.executemany("INSERT INTO workflows VALUES (?,?,?,?,?,?,?,?)", rows)
        wf_ids = list(wf_nodes)
        for chunk in _chunks(range(1, executions + 1), batch):
            rows = []
            for i in chunk:
                wid = rng.choice(wf_ids)
                status = rng.choice(STATUSES)
                rows.append((i, wid, status, json.dumps(_state(rng, wf_nodes[wid])),
                             "node timed out" if status == "failed" else None, _ts(rng),
                             _ts(rng) if status in ("completed", "failed") else None))
            conn.executemany("INSERT INTO executions VALUES (?,?,?,?,?,?,?)", rows)
        providers = {"providers": [{"id": "p1", "name": "Local", "type": "ollama", "apiKey": "", "enabled": True}]}
        conn.execute("INSERT INTO settings VALUES (1, 'anonymous', ?, ?, ?)", (json.dumps(providers), _ts(rng), _ts(rng)))
        conn.commit()
    finally:
        conn.close()
    return path


def _chunks(items: range, size: int) -> Iterator[range]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- a dirty 1.0.0 database: every case the move's pre-flight scan must find ---

PLUGIN_SQL = """
CREATE TABLE plugin_audit (
    id INTEGER PRIMARY KEY,
    execution_id INTEGER REFERENCES executions (id),
    kind VARCHAR(20) NOT NULL DEFAULT 'note',
    payload JSON,
    score REAL,
    amount NUMERIC(10, 2),
    flag BOOLEAN DEFAULT 0,
    happened_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    day DATE,
    small SMALLINT,
    data BLOB,
    misc,
    ref UUID
);
CREATE INDEX ix_plugin_audit_kind ON plugin_audit (kind);
CREATE TABLE plugin_kv (key TEXT, value);
CREATE TABLE plugin_pair (a TEXT NOT NULL, b INTEGER NOT NULL, note TEXT, PRIMARY KEY (a, b));
"""

# The keys of the dirty rows, by what is wrong with them (tests name them).
BAD_USER = "00000000-0000-4000-8000-0000000000b1"  # is_active = 2: not a boolean
SPELLED_USERS = ("00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2")
ORPHAN_WORKFLOW = "00000000-0000-4000-8000-00000000f001"  # owner_id points to no user (nullable)
BAD_JSON_WORKFLOW = "00000000-0000-4000-8000-00000000f002"  # definition is a Python repr
NAN_WORKFLOW = "00000000-0000-4000-8000-00000000f003"  # definition holds NaN
NUL_WORKFLOW = "00000000-0000-4000-8000-00000000f004"  # NUL bytes in description
OWNED_BY_BAD_USER = "00000000-0000-4000-8000-00000000f005"  # its owner goes to quarantine
SPELLED_WORKFLOW = "00000000-0000-4000-8000-00000000f006"  # timestamps with Z and an offset
DANGLING_EXECUTION = 900001  # workflow_id points nowhere (NOT NULL)
BAD_JSON_EXECUTION = 900002
BAD_DATE_EXECUTION = 900003  # February 30th
NUL_EXECUTION = 900004  # NUL in error text and inside its JSON text
SPELLED_EXECUTIONS = (900005, 900006, 900007)  # date alone / epoch seconds / epoch text, ISO with T
EPOCH_EXECUTIONS = SPELLED_EXECUTIONS[:2]  # their epoch seconds are refused: no rule can know a number's meaning
CHILD_EXECUTIONS = (900010, 900011, 900012)  # of BAD_JSON_WORKFLOW, OWNED_BY_BAD_USER, ORPHAN_WORKFLOW


def build_dirty(path: Path, executions: int = 2000, seed: int = 7) -> Path:
    """A 1.0.0 database with every kind of row PostgreSQL will not take as it is, plus plugin tables.

    Dangling foreign keys (nullable and not), children of rows that go to quarantine
    (two levels deep), NUL bytes in text and in JSON text, invalid JSON (a Python repr,
    NaN, a cut-off object), values that do not fit (a boolean 2, SMALLINT 70000, text
    in REAL and NUMERIC columns, February 30th), timestamp spellings (T, Z, an offset,
    a date alone; epoch seconds as a number and as text, which no rule takes), boolean spellings
    ('t', 'f', 'true', 'false'; 'yes', which no rule takes), and tables the engine's history does not know: one with
    every type of the type map, one without a primary key, one with a composite key.
    """
    build(path, executions=executions, workflows=20, users=5, seed=seed)
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    try:
        a_user = conn.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
        a_workflow = conn.execute("SELECT id FROM workflows ORDER BY id LIMIT 1").fetchone()[0]
        definition = json.dumps(_definition(rng, ["n1", "n2"]))
        state = json.dumps(_state(rng, ["n1", "n2"]))
        conn.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?)", [
            (BAD_USER, "bad-boolean", "b@example.com", "$2b$12$secrethash", 2, 0, _ts(rng)),
            (SPELLED_USERS[0], "spelled-1", None, None, "t", "false", "2025-03-01T10:00:00"),
            (SPELLED_USERS[1], "spelled-2", None, None, "true", "f", "2025-03-01"),
        ])
        conn.executemany("INSERT INTO workflows VALUES (?,?,?,?,?,?,?,?)", [
            (ORPHAN_WORKFLOW, "orphan", None, definition, "no-such-user", 1, _ts(rng), _ts(rng)),
            (BAD_JSON_WORKFLOW, "python repr", None, "{'nodes': [], 'edges': []}", a_user, 0, _ts(rng), _ts(rng)),
            (NAN_WORKFLOW, "nan", None, '{"nodes": [], "score": NaN}', a_user, 0, _ts(rng), _ts(rng)),
            (NUL_WORKFLOW, "nul", "before\x00after", definition, a_user, 1, _ts(rng), _ts(rng)),
            (OWNED_BY_BAD_USER, "owned by bad", None, definition, BAD_USER, 0, _ts(rng), _ts(rng)),
            (SPELLED_WORKFLOW, "spelled", None, definition, a_user, "true", "2025-03-01T10:00:00Z",
             "2025-03-01 12:00:00+02:00"),
        ])
        conn.executemany("INSERT INTO executions VALUES (?,?,?,?,?,?,?)", [
            (DANGLING_EXECUTION, "missing-workflow", "failed", state, None, _ts(rng), None),
            (BAD_JSON_EXECUTION, a_workflow, "failed", '{"nodes": {', None, _ts(rng), None),
            (BAD_DATE_EXECUTION, a_workflow, "completed", state, None, "2025-02-30 10:00:00.000000", None),
            (NUL_EXECUTION, a_workflow, "failed", state.replace("value-", "val\x00ue-", 1), "bad\x00byte", _ts(rng), None),
            (SPELLED_EXECUTIONS[0], a_workflow, "completed", state, None, "2025-03-01", 1735689600),
            (SPELLED_EXECUTIONS[1], a_workflow, "completed", state, None, "1735689600.5", "2025-03-01T10:00:00.5"),
            (SPELLED_EXECUTIONS[2], a_workflow, "completed", state, None, "2025-03-01T10:00:00+05:30", None),
            (CHILD_EXECUTIONS[0], BAD_JSON_WORKFLOW, "pending", state, None, _ts(rng), None),
            (CHILD_EXECUTIONS[1], OWNED_BY_BAD_USER, "pending", state, None, _ts(rng), None),
            (CHILD_EXECUTIONS[2], ORPHAN_WORKFLOW, "pending", state, None, _ts(rng), None),
        ])
        conn.executescript(PLUGIN_SQL)
        conn.executemany("INSERT INTO plugin_audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [
            (1, 1, "ok", '{"a": 1}', 1.5, "12.50", 1, _ts(rng), "2025-03-01", 7, b"\x00\x01", "text", str(uuid.UUID(int=1))),
            (2, 2, "spelled", "[]", 2, 3, "yes", "2025-03-01T10:00:00Z", "2025-03-02", -3, None, 42, None),
            (3, None, "too big", None, None, None, 0, None, None, 70000, None, 1.25, None),  # SMALLINT range
            (4, None, "text in real", None, "high", None, 0, None, None, None, None, None, None),
            (5, None, "text in numeric", None, None, "lots", 0, None, None, None, None, None, None),
            (6, None, "bad day", None, None, None, 0, None, "2025-02-30", None, None, None, None),
            (7, DANGLING_EXECUTION, "child of a quarantined execution", None, None, None, 0, None, None, 1, None,
             None, None),
            (8, 123456789, "dangling execution", None, None, None, 0, None, None, 1, None, None, None),
            (9, CHILD_EXECUTIONS[1], "grandchild of a quarantined user", None, None, None, 0, None, None, 1, None,
             None, None),
        ])
        conn.executemany("INSERT INTO plugin_kv VALUES (?, ?)",
                         [("alpha", 1), ("beta", "two"), ("gamma", 3.5), (None, None), ("nul", "a\x00b")])
        conn.executemany("INSERT INTO plugin_pair VALUES (?, ?, ?)",
                         [("x", 1, "first"), ("x", 2, "second"), ("y", 1, None)])
        conn.commit()
    finally:
        conn.close()
    return path

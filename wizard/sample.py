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

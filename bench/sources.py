"""Source databases of a given size, built once with wizard.sample and cached in bench/out/."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from wizard import sample

OUT = Path(__file__).with_name("out")
WORKFLOWS = 1000
USERS = 100
SEED = 1


def source_db(executions: int) -> Path:
    """The cached 1.0.0 database with `executions` rows, built on first use."""
    path = OUT / f"engine-e{executions}-w{WORKFLOWS}-u{USERS}-s{SEED}.db"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        part = path.with_suffix(".db.part")  # a build cut short is never mistaken for a cached one
        part.unlink(missing_ok=True)
        sample.build(part, executions=executions, workflows=WORKFLOWS, users=USERS, seed=SEED)
        os.replace(part, path)
    return path


def row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def warm_page_cache(path: Path) -> None:
    """Read the file once so every contender starts from the same warm cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass

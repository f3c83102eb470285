"""The engine's Alembic history, revision by revision, up and down, on both engines, with rows in the tables."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine_data import build_pg_1_0_0, columns, counts, parsed, read, revision
from wizard import sample, schema
from wizard.db import connect, write_transaction
from wizard.urls import parse_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, engine_db: Path) -> str:
    """A 1.0.0 engine database (no alembic_version) holding the sample's rows, on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{engine_db}"
    return build_pg_1_0_0(request.getfixturevalue("pg_url"), engine_db)


def _go(url: str, target: str, down: bool = False, stamp: str | None = None) -> dict:
    async def go() -> dict:
        async with connect(parse_url(url)) as conn:
            async with write_transaction(conn):
                if down:
                    return await schema.downgrade(conn, target)
                return await schema.upgrade(conn, target, stamp=stamp)

    return asyncio.run(go())


def _definitions(url: str) -> dict[str, dict]:
    return {k: parsed(v) for k, v in read(url, "SELECT id, definition FROM workflows")}


def _states(url: str) -> dict[int, dict]:
    return {k: parsed(v) for k, v in read(url, "SELECT id, state FROM executions")}


def test_every_revision_up_and_down_keeps_the_rows(engine_url: str) -> None:
    definitions, states, rows = _definitions(engine_url), _states(engine_url), counts(engine_url)
    assert revision(engine_url) is None and rows["executions"] == 300

    _go(engine_url, "0001", stamp="0001")
    assert revision(engine_url) == "0001"

    _go(engine_url, "0002")
    assert "tags" in columns(engine_url, "workflows")
    assert [parsed(t) for (t,) in read(engine_url, "SELECT tags FROM workflows")] == [[]] * len(definitions)

    report = _go(engine_url, "0003")
    assert report["0003"] == {"rows": len(definitions), "changed": len(definitions), "invalid_json": 0}
    for wid, new in _definitions(engine_url).items():
        assert new["version"] == "1.0"
        assert all(node["metadata"] == {} for node in new["nodes"])
        old = definitions[wid]
        assert [{k: v for k, v in n.items() if k != "metadata"} for n in new["nodes"]] == old["nodes"]
        assert {k: v for k, v in new.items() if k not in ("version", "nodes")} == {
            k: v for k, v in old.items() if k != "nodes"}

    report = _go(engine_url, "0004")
    assert report["0004"]["rows"] == rows["executions"]
    for eid, new in _states(engine_url).items():
        old = states[eid]
        assert isinstance(new["nodes"], list)
        assert [n["id"] for n in new["nodes"]] == list(old["nodes"])  # order kept
        assert {n["id"]: {k: v for k, v in n.items() if k != "id"} for n in new["nodes"]} == old["nodes"]
        assert new["variables"] == old["variables"]

    _go(engine_url, "0003", down=True)
    assert _states(engine_url) == states
    assert all(list(s["nodes"]) == list(states[i]["nodes"]) for i, s in _states(engine_url).items())
    _go(engine_url, "0002", down=True)
    assert _definitions(engine_url) == definitions
    _go(engine_url, "0001", down=True)
    assert "tags" not in columns(engine_url, "workflows")
    assert revision(engine_url) == "0001"
    assert {t: n for t, n in counts(engine_url).items() if t != "alembic_version"} == rows


def test_0001_on_sqlite_is_the_1_0_0_schema(tmp_path: Path) -> None:
    """Tables, columns (type, null, default, key), indexes and foreign keys as schema-1.0.0-sqlite.sql has them."""
    by_alembic = tmp_path / "alembic.db"
    sqlite3.connect(by_alembic).close()
    _go(f"sqlite:///{by_alembic}", "0001")
    by_engine = tmp_path / "engine.db"
    conn = sqlite3.connect(by_engine)
    sample.create_schema(conn)
    conn.close()

    def shape(path: Path) -> dict:
        c = sqlite3.connect(path)
        tables = [r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('alembic_version') ORDER BY name")]
        out = {}
        for t in tables:
            indexes = {
                tuple(r[1] for r in c.execute(f"PRAGMA index_info('{ix[1]}')")): (ix[2], ix[3])
                for ix in c.execute(f"PRAGMA index_list('{t}')")
            }
            out[t] = (
                [(r[1], r[2].upper(), r[3], r[5]) for r in c.execute(f"PRAGMA table_info('{t}')")],
                sorted(indexes.items()),
                sorted((r[2], r[3], r[4]) for r in c.execute(f"PRAGMA foreign_key_list('{t}')")),
            )
        c.close()
        return out

    assert shape(by_alembic) == shape(by_engine)


def test_plain_alembic_upgrade_head_and_back(pg_url: str) -> None:
    """`alembic -c alembic.ini upgrade head` from a checkout, as an operator without the wizard runs it."""
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"url={pg_url}"]
    subprocess.run([*alembic, "upgrade", "head"], cwd=ROOT, check=True, capture_output=True)
    assert revision(pg_url) == schema.head()
    assert "tags" in columns(pg_url, "workflows")
    subprocess.run([*alembic, "downgrade", "base"], cwd=ROOT, check=True, capture_output=True)
    assert set(counts(pg_url)) == {"alembic_version"}


def test_alembic_commands_at_once_in_one_process_do_not_tear_each_other_down() -> None:
    """The TUI previews a revision's SQL (offline) while the move's schema step upgrades (online):
    Alembic's context and op proxies are process-wide, so the wizard runs one command at a time."""
    import threading

    from sqlalchemy import create_engine

    errors: list[str] = []

    def offline() -> None:
        for _ in range(20):
            try:
                schema.upgrade_sql(parse_url("postgresql://u@h/db"), None, "0004")
            except Exception as exc:  # what the race raises varies: KeyError, AttributeError on None
                errors.append(repr(exc))

    def online() -> None:
        for _ in range(20):
            engine = create_engine("sqlite://")
            try:
                with engine.begin() as conn:
                    schema._run_alembic(conn, lambda e: None, "schema", None, "0004")
            except Exception as exc:
                errors.append(repr(exc))
            finally:
                engine.dispose()

    threads = [threading.Thread(target=offline), threading.Thread(target=online)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

"""`wizard demo`'s service: a sample engine database, a .env pointing at it, an empty target."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from wizard import demo
from wizard.envfile import database_url
from wizard.errors import BadInput
from wizard.urls import parse_url


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    finally:
        await conn.close()


async def _databases(admin: str) -> list[str]:
    conn = await asyncpg.connect(admin)
    try:
        return [r[0] for r in await conn.fetch("SELECT datname FROM pg_database")]
    finally:
        await conn.close()


async def _drop(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_prepare_builds_a_sample_and_an_empty_target(tmp_path: Path, pg_server: str) -> None:
    if pg_server != demo.LOCAL_SERVER:
        pytest.skip("the demo looks for PostgreSQL on 127.0.0.1:5432 first; this machine has none")
    ready = asyncio.run(demo.prepare(executions=500, folder=tmp_path / "demo"))
    try:
        assert ready.env_file.exists() and oct(ready.env_file.stat().st_mode & 0o777) == "0o600"
        source = parse_url(database_url(ready.env_file), "source")
        assert source.sqlite_path == tmp_path / "demo" / "engine.db"
        import sqlite3

        with sqlite3.connect(source.sqlite_path) as conn:
            assert conn.execute("SELECT count(*) FROM executions").fetchone() == (500,)
        assert asyncio.run(_tables(ready.target)) == []
        assert "127.0.0.1:5432" in ready.server
        assert "dropped the demo database" in asyncio.run(demo.discard(ready))
        assert parse_url(ready.target).database not in asyncio.run(_databases(pg_server))
    finally:
        asyncio.run(_drop(pg_server, parse_url(ready.target).database))


def test_prepare_refuses_a_folder_that_holds_a_database(tmp_path: Path) -> None:
    (tmp_path / "engine.db").write_bytes(b"")
    with pytest.raises(BadInput, match="exists already"):
        asyncio.run(demo.prepare(executions=10, folder=tmp_path))
    assert os.path.getsize(tmp_path / "engine.db") == 0

"""The PostgreSQL server the contenders load into: fresh databases, and what the server is."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _run(admin_url: str, *statements: str) -> list:
    async def go() -> list:
        conn = await asyncpg.connect(admin_url)
        try:
            return [await conn.fetchval(s) for s in statements]
        finally:
            await conn.close()

    return asyncio.run(go())


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database `name`; its URL (sync spelling). CHECKPOINT so no contender
    pays for the previous one's dirty buffers."""
    _run(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"', "CHECKPOINT")
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    _run(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(admin_url: str) -> str:
    return _run(admin_url, "SHOW server_version")[0]


def row_counts(url: str, tables: list[str]) -> dict[str, int]:
    """Rows per table in the target, or -1 for a table that is not there."""

    async def go() -> dict[str, int]:
        conn = await asyncpg.connect(url)
        try:
            out = {}
            for t in tables:
                exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'public."{t}"')
                out[t] = await conn.fetchval(f'SELECT count(*) FROM "{t}"') if exists else -1
            return out
        finally:
            await conn.close()

    return asyncio.run(go())

"""Every row of a MySQL database as (key, digest), a batch at a time: the end state a rollback compares with.

As for SQLite, the digest is the md5 of the row's values as Python reads them; it is only ever compared
with digests of the same database read the same way (wizard.rollback.since).
"""

from __future__ import annotations

import hashlib
import json
from typing import AsyncIterator, Callable

from sqlalchemy import text

from wizard.db import connect, quote
from wizard.mysql.info import app_tables
from wizard.rollback.saved_rows import plain
from wizard.urls import DbUrl


async def read_rows(db: DbUrl, kept: Callable[[str], bool],
                    batch: int) -> AsyncIterator[tuple[str, bool, list[tuple[str | None, str]]]]:
    """(table, keyed, a batch of (key as a JSON array, digest)) for every kept table, then (table, keyed, [])."""
    async with connect(db) as conn:
        keys: dict[str, list[str]] = {}
        for table, column in await conn.execute(text(
                "SELECT table_name, column_name FROM information_schema.key_column_usage "
                "WHERE table_schema = DATABASE() AND constraint_name = 'PRIMARY' "
                "ORDER BY table_name, ordinal_position")):
            keys.setdefault(table, []).append(column)
        tables = [t for t in await app_tables(conn) if kept(t)]
        await conn.rollback()  # the catalogue's reads: each table is then read in a snapshot of its own
        for table in tables:
            key = keys.get(table, [])
            key_sql = ", ".join(quote(k) for k in key) + ", " if key else ""
            n = len(key)
            async with conn.begin():  # one snapshot per table (REPEATABLE READ)
                result = await conn.stream(text(f"SELECT {key_sql}t.* FROM {quote(table)} t"))
                async for rows in result.partitions(batch):
                    yield table, bool(key), [
                        (json.dumps([plain(v) for v in row[:n]], default=str) if key else None,
                         hashlib.md5(repr(tuple(row[n:])).encode("utf-8", "surrogatepass")).hexdigest())
                        for row in rows]
            yield table, bool(key), []

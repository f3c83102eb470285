"""Every row of a MySQL database as (key, digest), a batch at a time: the end state a rollback compares with;
and rows found again by those keys (what a rollback's carry-back reads and checks).

The digest is computed by the server, as PostgreSQL's end state is (hashtextextended): MD5 of the row's
columns as text, each written as its length, a colon and the text, or N for NULL, so no two rows that differ
share a spelling (NULL is not '', and no value can take its neighbour's). Only the key and 32 hex digits cross
the wire: parsing every value in Python took most of the end state's time (bench/README.md, "The MySQL row").
They are read by PyMySQL in a thread of its own: through aiomysql on the event loop, the per-row awaits cost
more than the parsing, and the verification runs beside on the same loop (bench/README.md, "Issue 14").
A DOUBLE or FLOAT is spelled by MariaDB in its shortest round-trip form, a DATETIME(6) with its
microseconds, a TIMESTAMP in UTC (the session's zone is set). It is only ever compared with digests of the
same database read the same way (wizard.rollback.since).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Sequence

import pymysql
import pymysql.cursors
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.db import connect, connect_mysql_sync, quote
from wizard.mysql.info import app_tables
from wizard.rollback.saved_rows import plain
from wizard.urls import DbUrl

KEYS_PER_QUERY = 1_000


def key_text(values: Sequence[Any]) -> str:
    """A row's key as the end state keeps it: its values as a JSON array."""
    if len(values) == 1 and type(values[0]) is int:
        return f"[{values[0]}]"  # json.dumps's spelling, a few times faster: most tables have one whole-number key
    return json.dumps([plain(v) for v in values], default=str)


def digest_sql(columns: Sequence[str]) -> str:
    """MySQL's expression for the md5 of a row of `columns`: each column as <characters>:<text>, or N for NULL.

    Each part is cast to bytes (the same bytes, so the same md5) before they are joined: columns of two
    collations (a JSON column's utf8mb4_bin beside utf8mb4_nopad_bin text) cannot be joined as text."""
    return "MD5(CONCAT_WS(',', " + ", ".join(
        f"CAST(IFNULL(CONCAT(CHAR_LENGTH({quote(c)}), ':', {quote(c)}), 'N') AS BINARY)" for c in columns) + "))"


async def read_rows(db: DbUrl, kept: Callable[[str], bool],
                    batch: int) -> AsyncIterator[tuple[str, bool, list[tuple[str | None, str]]]]:
    """(table, keyed, a batch of (key as a JSON array, digest)) for every kept table, then (table, keyed, [])."""
    async with connect(db) as conn:
        tables = [t for t in await app_tables(conn) if kept(t)]
        shapes = {t: await shape(conn, t) for t in tables}
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(1, thread_name_prefix="mysql-rows")  # the one thread that uses the connection
    try:
        sync = await loop.run_in_executor(thread, connect_mysql_sync, db)  # a TIMESTAMP's text in UTC
        try:
            for table in tables:
                key, columns = shapes[table]
                cursor = await loop.run_in_executor(thread, _start, sync, table, key, columns)
                try:
                    while rows := await loop.run_in_executor(thread, _next, cursor, len(key), batch):
                        yield table, bool(key), rows
                finally:
                    await loop.run_in_executor(thread, _end, sync, cursor)
                yield table, bool(key), []
        finally:
            await loop.run_in_executor(thread, sync.close)
    finally:
        thread.shutdown(wait=False)


def _start(conn: pymysql.connections.Connection, table: str, key: list[str],
           columns: list[str]) -> pymysql.cursors.SSCursor:
    """The table's rows streaming, in a snapshot of its own (REPEATABLE READ)."""
    conn.begin()
    key_sql = ", ".join(quote(k) for k in key) + ", " if key else ""
    cursor = conn.cursor(pymysql.cursors.SSCursor)
    cursor.execute(f"SELECT {key_sql}{digest_sql(columns)} FROM {quote(table)}")
    return cursor


def _next(cursor: pymysql.cursors.SSCursor, n: int, batch: int) -> list[tuple[str | None, str]]:
    return [(key_text(row[:n]) if n else None, row[n]) for row in cursor.fetchmany(batch)]


def _end(conn: pymysql.connections.Connection, cursor: pymysql.cursors.SSCursor) -> None:
    cursor.close()  # reads what is left of its result
    conn.rollback()


async def shape(conn: AsyncConnection, table: str) -> tuple[list[str], list[str]]:
    """(the primary key's columns, every column) of `table`, in the table's order."""
    def read(sync_conn: Any) -> tuple[list[str], list[str]]:
        insp = inspect(sync_conn)
        return (insp.get_pk_constraint(table)["constrained_columns"], [c["name"] for c in insp.get_columns(table)])

    return await conn.run_sync(read)


def value_tuples(rows: list[Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """'(:p0_0, :p0_1), (:p1_0, :p1_1)' for `rows` of values (`prefix` p), and the parameters that fill it."""
    sql = ", ".join("(" + ", ".join(f":{prefix}{i}_{j}" for j in range(len(r))) + ")" for i, r in enumerate(rows))
    return sql, {f"{prefix}{i}_{j}": v for i, r in enumerate(rows) for j, v in enumerate(r)}


async def rows_by_key(conn: AsyncConnection, table: str, key: list[str], columns: list[str],
                      keys: list[str]) -> list[tuple[str, tuple]]:
    """(key as key_text, the values of `columns`) of the rows of `table` whose keys are among `keys` (key_text's
    JSON arrays), read on the caller's connection, a thousand keys a query."""
    wanted, out = set(keys), []
    key_sql = ", ".join(quote(k) for k in key)
    n = len(key)
    for start in range(0, len(keys), KEYS_PER_QUERY):
        tuples, params = value_tuples([json.loads(k) for k in keys[start:start + KEYS_PER_QUERY]], "k")
        selected = ", ".join([key_sql, *(quote(c) for c in columns)])
        result = await conn.execute(text(f"SELECT {selected} FROM {quote(table)} WHERE ({key_sql}) IN ({tuples})"),
                                    params)
        # A key found by a case- or accent-blind collation is not the key asked for.
        out += [(k, tuple(r[n:])) for r in result if (k := key_text(r[:n])) in wanted]
    return out

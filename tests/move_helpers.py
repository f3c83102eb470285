"""Helpers for the move's tests: file digests, a target's contents, a source row as the copy would send it."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import asyncpg

from wizard.move import normalize
from wizard.db import quote
from wizard.move.tables import SourceTable, open_readonly, read_tables


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, sql, *args))


async def _execute(url: str, *sql: str) -> None:
    conn = await asyncpg.connect(pg(url))
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


def execute(url: str, *sql: str) -> None:
    """Statements in order on one connection, none in a transaction (CREATE DATABASE and the like)."""
    asyncio.run(_execute(url, *sql))


def executions_copied(url: str) -> int:
    """Rows of executions the move's last committed checkpoint holds; -1 once that table is done; 0 before."""
    try:
        rows = fetch(url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'")
    except asyncpg.PostgresError:
        return 0  # the schema is not there yet
    return rows[0][0] if rows and not rows[0][1] else (-1 if rows else 0)


def tables_in(url: str) -> list[str]:
    return [r[0] for r in fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """Per table: row count and a digest of every row's text, in a fixed order."""
    out = {}
    for t in tables_in(url):
        row = fetch(url, f"SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) "
                         f"FROM {quote(t)} x")[0]
        out[t] = (row[0], row[1])
    return out


def source_tables(path: Path) -> list[SourceTable]:
    conn = open_readonly(path)
    try:
        return read_tables(conn)
    finally:
        conn.close()


def source_rows(path: Path, table: SourceTable) -> list[tuple[tuple, tuple]]:
    """Every row of a source table: (key values, column values)."""
    conn = open_readonly(path)
    try:
        rows = conn.execute(f"SELECT {table.key_sql()}, {', '.join(quote(c) for c in table.column_names)} "
                            f"FROM {quote(table.name)}").fetchall()
    finally:
        conn.close()
    n = len(table.key)
    return [(r[:n], r[n:]) for r in rows]


def hashable(shown: Any) -> Any:
    """A key as the quarantine shows it (a value, or a list), usable in a set."""
    return tuple(shown) if isinstance(shown, list) else shown


def compared(table: SourceTable, values: tuple, nulled: tuple[str, ...] = ()) -> tuple:
    """A source row after the copy's conversions, in the compared form (normalize.canonical)."""
    out = []
    for c, v in zip(table.columns, values):
        out.append(None if c.name in nulled else normalize.canonical(c.kind, normalize.convert(c.kind, v)[0]))
    return tuple(out)


def target_compared(table: SourceTable, record: asyncpg.Record) -> tuple:
    return tuple(normalize.canonical(c.kind, record[c.name]) for c in table.columns)

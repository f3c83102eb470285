"""Rows kept in the run folder before a rollback takes them away: JSON lines, mode 0600, keyed by primary key.

Two kinds: the rows written since a run that a restore would lose (`written-since/`),
and the values a downgrade drops with its columns (`dropped/`, e.g. workflows.tags
when 0002 is undone). Each line is {"pk": [key values], "row": {column: value}};
values JSON cannot hold are written as text (timestamps ISO, bytes as hex).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import column, inspect, literal_column, select, table as sql_table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.db import quote
from wizard.journal import table_file

WRITTEN_SINCE = "written-since"
DROPPED = "dropped"


def plain(value: Any) -> Any:
    """A value JSON can hold as it is; bytes as their hex."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def write_lines(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write `records` as JSON lines to `path` (0600, fsynced; its folder 0700); returns how many.

    Written in place: what writes it (a rollback's first steps) writes it again when retried.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as f:
        for record in records:
            f.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


async def primary_key(conn: AsyncConnection, table: str) -> list[str]:
    return await conn.run_sync(lambda c: inspect(c).get_pk_constraint(table)["constrained_columns"])


async def save_columns(conn: AsyncConnection, table: str, columns: list[str], folder: Path) -> tuple[Path, int]:
    """Every row's `columns` of `table` (read on the caller's connection, in its transaction) to
    <folder>/dropped/<table>.jsonl; returns the file and the rows whose values were not NULL."""
    key = await primary_key(conn, table)
    result = await conn.execute(text(f"SELECT {', '.join(quote(c) for c in key + columns)} FROM {quote(table)} "
                                     f"ORDER BY {', '.join(quote(c) for c in key)}"))
    rows = result.all()
    n = len(key)
    path = table_file(folder / DROPPED, table)
    write_lines(path, ({"pk": [plain(v) for v in r[:n]], "row": dict(zip(columns, map(plain, r[n:])))}
                       for r in rows))
    return path, sum(any(v is not None for v in r[n:]) for r in rows)


async def save_keys(conn: AsyncConnection, table: str, keys: list[str], removed: list[str], folder: Path) -> Path:
    """The current rows of `table` whose keys (JSON arrays, as wizard.rollback.since gives them) are `keys`,
    whole, and the keys of the `removed` ones, to <folder>/written-since/<table>.jsonl."""
    key = await primary_key(conn, table)
    # Built by SQLAlchemy, not as text(): text() would take a ':x' inside a quoted name for a parameter.
    named = sql_table(table, *map(column, key))
    records = []
    for k in keys:
        values = json.loads(k)
        result = await conn.execute(select(literal_column("*")).select_from(named).where(
            *(named.c[c] == v for c, v in zip(key, values))))
        for row in result.mappings():
            records.append({"pk": values, "row": {c: plain(v) for c, v in row.items()}})
    records += [{"pk": json.loads(k), "removed": True} for k in removed]
    path = table_file(folder / WRITTEN_SINCE, table)
    write_lines(path, records)
    return path

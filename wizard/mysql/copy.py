"""The table copier into MySQL or MariaDB: SQLite's rows in chunks, each with its checkpoint in one transaction.

The reading, converting and checkpoint bookkeeping are wizard.move.copy's (copy_chunks), as for
PostgreSQL. Each chunk's text is made in the reader thread, so the server loads one chunk while the
next is made: the clean rows' lines by SQLite itself (wizard.move.lines), the other rows' by tsv. It
is written as a tab-separated file (0600, in the run folder, removed after) and loaded with one `LOAD
DATA LOCAL INFILE` (about twice as fast as aiomysql's multi-row INSERTs in bench.mysql_move: README,
"MySQL and MariaDB"), then the checkpoint row is upserted, both committed together in InnoDB: a crash
loses both or neither, so a resume carries on after the checkpoint's key with no duplicates and no
gaps. LOAD DATA LOCAL turns a value it would alter into a warning: any warning, or a row count other
than the chunk's, fails the chunk (rolled back), so nothing is changed silently. Only the copy's own
connection may send local files (a server can ask for any file on such a connection). MySQL's
DATETIME(6) takes the first and last instants as they are: no rewrite of the range's ends here.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from wizard.db import mysql_connect_args, quote
from wizard.errors import StepError
from wizard.events import Emit, StopRequest
from wizard.move.copy import CHECKPOINTS, TableCopy, copy_chunks, decode_key, encode_key
from wizard.move.lines import line_sql
from wizard.move.scan import Key, RowActions
from wizard.move.tables import SourceTable
from wizard.urls import DbUrl

_FIELDS = ("last_key", "rows_copied", "rows_quarantined", "quarantine_bytes", "nulled_bytes", "conversions", "seconds",
           "done")
_UPSERT = (f"INSERT INTO {CHECKPOINTS} (run_id, table_name, {', '.join(_FIELDS)}) "
           f"VALUES ({', '.join(['%s'] * (len(_FIELDS) + 2))}) ON DUPLICATE KEY UPDATE "
           + ", ".join(f"{f} = VALUES({f})" for f in _FIELDS))


async def load_checkpoints(conn: AsyncConnection, run_id: str) -> dict[str, TableCopy]:
    rows = await conn.execute(text(f"SELECT table_name, {', '.join(_FIELDS)} FROM {CHECKPOINTS} WHERE run_id = :r"),
                              {"r": run_id})
    out = {r.table_name: TableCopy(r.table_name, 0, r.rows_copied, r.rows_quarantined, json.loads(r.conversions),
                                   r.seconds, bool(r.done), decode_key(r.last_key), r.quarantine_bytes, r.nulled_bytes)
           for r in rows}
    await conn.rollback()
    return out


async def _save(conn: AsyncConnection, run_id: str, state: TableCopy) -> None:
    await conn.exec_driver_sql(_UPSERT, (run_id, state.table, encode_key(state.last_key), state.copied,
                                         state.quarantined, state.quarantine_bytes, state.nulled_bytes,
                                         json.dumps(state.conversions), state.seconds, state.done))


def _field(value: Any) -> str:
    """A value as LOAD DATA's default format reads it: \\N is NULL; backslash, tab, newline and NUL escaped."""
    if value.__class__ is str:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\0", "\\0")
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (bytes, bytearray, memoryview)):  # none of the engine's columns holds one
        raise StepError("a binary value reached the MySQL copy, which sends text only: a bug in the wizard")
    return str(value)  # int, float, Decimal, date


def tsv(records: list) -> bytes:
    """Rows as LOAD DATA's default format reads them, one line each, in UTF-8."""
    return "".join("\t".join(map(_field, r)) + "\n" for r in records).encode("utf-8")


@contextlib.asynccontextmanager
async def loading_connection(target: DbUrl) -> AsyncIterator[AsyncConnection]:
    """A connection to `target` that may send LOAD DATA LOCAL files: for the copy only."""
    engine = create_async_engine(target.async_url(), poolclass=NullPool,
                                 connect_args={**mysql_connect_args(target), "local_infile": True})
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def _load_data(conn: AsyncConnection, path: Path, table: SourceTable, rows: int, lines: bytes,
                     data: bytes | None) -> None:
    """The chunk's `rows` rows (`lines`, the clean rows' text SQLite made, and `data`, the other rows' tsv), by
    LOAD DATA LOCAL INFILE of a private file; StepError when the server altered any."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(lines)
        if data:
            f.write(data)
    try:
        columns = ", ".join(quote(c.target) for c in table.columns)
        result = await conn.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {quote(table.target)} "
                                            f"CHARACTER SET utf8mb4 ({columns})")
        warnings = (await conn.exec_driver_sql("SELECT @@warning_count")).scalar()
        if result.rowcount != rows or warnings:
            said = (await conn.exec_driver_sql("SHOW WARNINGS LIMIT 1")).first()
            raise StepError(f"{table.name}: MySQL took {result.rowcount:,} of a chunk's {rows:,} rows"
                            + (f" and warned: {said[2]}" if said else "") + ": nothing of the chunk was kept")
    finally:
        path.unlink(missing_ok=True)


async def copy_table(conn: AsyncConnection, source: Path, table: SourceTable, actions: RowActions, run_id: str,
                     state: TableCopy, run_folder: Path, emit: Emit, stop: StopRequest, chunk_rows: int,
                     unclean: frozenset[Key] | None = None) -> TableCopy:
    """Copy one table from `state` (fresh, or its checkpoint) to its end, or to a stop request."""
    path = run_folder / f"chunk-{table.name}.tsv"

    async def commit(item: Any, account: Callable[[], Awaitable[None]]) -> None:
        async with conn.begin():
            if item.copied:
                await _load_data(conn, path, table, item.copied, item.text, item.data)
            await account()
            await _save(conn, run_id, state)

    async def save(done: TableCopy) -> None:
        async with conn.begin():
            await _save(conn, run_id, done)

    return await copy_chunks(source, table, actions, state, run_folder, emit, stop, chunk_rows, unclean, commit, save,
                             prepare=tsv, lines=line_sql)

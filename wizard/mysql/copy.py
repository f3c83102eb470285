"""The table copier into MySQL or MariaDB: SQLite's rows in chunks, each with its checkpoint in one transaction.

The reading, converting and checkpoint bookkeeping are wizard.move.copy's (copy_chunks), as for PostgreSQL. Each chunk is
one multi-row INSERT (aiomysql's executemany) and the checkpoint row's upsert, committed together
in InnoDB: a crash loses both or neither, so a resume carries on after the checkpoint's key with no
duplicates and no gaps. The side files (quarantine, nulled) are fsynced before that commit and cut
back to the checkpoint's lengths on resume, as on PostgreSQL. MySQL's DATETIME(6) takes the first
and last instants as they are: no rewrite of the range's ends is needed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.db import quote
from wizard.events import Emit, StopRequest
from wizard.move.copy import CHECKPOINTS, TableCopy, copy_chunks, decode_key, encode_key
from wizard.move.scan import Key, RowActions
from wizard.move.tables import SourceTable

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


async def copy_table(conn: AsyncConnection, source: Path, table: SourceTable, actions: RowActions, run_id: str,
                     state: TableCopy, run_folder: Path, emit: Emit, stop: StopRequest, chunk_rows: int,
                     unclean: frozenset[Key] | None = None) -> TableCopy:
    """Copy one table from `state` (fresh, or its checkpoint) to its end, or to a stop request."""
    insert = (f"INSERT INTO {quote(table.target)} ({', '.join(quote(c.target) for c in table.columns)}) "
              f"VALUES ({', '.join(['%s'] * len(table.columns))})")

    async def commit(item: Any, account: Callable[[], Awaitable[None]]) -> None:
        async with conn.begin():
            if item.records:
                await conn.exec_driver_sql(insert, [tuple(r) for r in item.records])
            await account()
            await _save(conn, run_id, state)

    async def save(done: TableCopy) -> None:
        async with conn.begin():
            await _save(conn, run_id, done)

    return await copy_chunks(source, table, actions, state, run_folder, emit, stop, chunk_rows, unclean, commit, save)

"""An upgrade rolled back by its downgrades (rows were written since), of a SQLite file, a PostgreSQL or a
MySQL/MariaDB database: the rows nothing wrote since the run are put back as the run's backup holds them, byte
for byte.

The data revisions rewrite JSON through the JSON type (0003's workflows.definition, 0004's executions.state), so
a value that went up and down again comes back in json.dumps' spelling: `{"a":1}` as `{"a": 1}`, "é" as "\\u00e9",
and 0003's documented loss of a "version" the definition had before. A row whose end-state digest is the same
now was written by the run alone, so the backup's row is that row before the run. Done inside the downgrade's
transaction, by SQLite itself (the backup attached read-only, values copied with their types), then checked:
every such row equal to the backup's, value and type, column by column. On PostgreSQL, the tables' data as the
pg_dump holds it (pg_restore --data-only, to a 0600 file in the run folder, read before the transaction) goes
into temporary tables by COPY inside it; rows are compared by their columns' text. On MySQL/MariaDB, whose DDL
commits statement by statement, the dump is restored into a scratch database on the same server before the
first downgrade, and the rows are put back in one InnoDB transaction after the last one, compared as their bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import pgtools
from wizard.backup import BackupRecord, tool_run
from wizard.db import connect, quote, sqlite_uri, write_transaction
from wizard.errors import StepError
from wizard.mysql.dump import load
from wizard.mysql.rows import shape
from wizard.mysql.scratch import scratch_database
from wizard.rollback.since import Since
from wizard.schema import VERSION_TABLE
from wizard.urls import DbUrl

BACKUP = "wizard_backup"  # the attached backup's schema name
WRITTEN = "wizard_written_since"  # a temporary table of the keys written since, per table


async def attach(conn: AsyncConnection, backup: Path) -> None:
    """The backup, read-only and immutable (no lock, no -wal/-shm beside it); before any transaction: SQLite
    attaches nothing inside one."""
    await conn.exec_driver_sql(f"ATTACH DATABASE ? AS {BACKUP}", (sqlite_uri(backup, "ro", immutable=True),))
    await conn.commit()


async def put_back(conn: AsyncConnection, since: Since) -> tuple[int, list[str]]:
    """Inside the downgrade's transaction, after it: every row of a table the backup has, whose key is in the
    backup and was not added or changed since, made equal to the backup's; returns how many were rewritten and
    the tables so checked. StepError (the transaction rolls back) when one still differs after."""
    put, checked = 0, []
    for table in [r[0] for r in (await conn.exec_driver_sql(
            f"SELECT name FROM {BACKUP}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            f"ESCAPE '\\' ORDER BY name")).all()]:
        if table == VERSION_TABLE:
            continue
        columns = await _columns(conn, "main", table)
        key = [c for c, pk in sorted(columns.items(), key=lambda c: c[1]) if pk]
        backup_columns = await _columns(conn, BACKUP, table)
        if not key or not columns or [c for c in key if c not in backup_columns]:
            continue
        values = [c for c in columns if c in backup_columns and c not in key]
        if not values:
            continue
        await _written(conn, key, since.table(table).added + since.table(table).changed)
        name, b = quote(table), f"{BACKUP}.{quote(table)}"
        same_key = " AND ".join(f"b.{quote(k)} IS {name}.{quote(k)}" for k in key)
        # A BLOB key is in `since` as its hex (saved_rows.plain), which this cannot match: such rows stay as the
        # downgrade left them rather than risk taking back what the engine wrote.
        untouched = (f"NOT EXISTS (SELECT 1 FROM temp.{WRITTEN} w WHERE "
                     + " AND ".join(f"w.k{i} IS {name}.{quote(k)}" for i, k in enumerate(key)) + ") AND "
                     + " AND ".join(f"typeof({name}.{quote(k)}) <> 'blob'" for k in key))
        differs = " OR ".join(f"NOT (b.{quote(c)} IS {name}.{quote(c)} AND typeof(b.{quote(c)}) = "
                              f"typeof({name}.{quote(c)}))" for c in values)
        where = f"{untouched} AND EXISTS (SELECT 1 FROM {b} b WHERE {same_key} AND ({differs}))"
        result = await conn.exec_driver_sql(
            f"UPDATE {name} SET " + ", ".join(f"{quote(c)} = (SELECT b.{quote(c)} FROM {b} b WHERE {same_key})"
                                              for c in values) + f" WHERE {where}")
        put += result.rowcount
        blobs = (await conn.exec_driver_sql(f"SELECT count(*) FROM {name} WHERE " + " OR ".join(
            f"typeof({quote(k)}) = 'blob'" for k in key))).scalar_one()
        checked.append(f"{table} (not its {blobs:,} row(s) under a BLOB key)" if blobs else table)
        left = (await conn.exec_driver_sql(f"SELECT count(*) FROM {name} WHERE {where}")).scalar_one()
        if left:
            raise StepError(f"after putting back the rows of {table} nothing wrote since the run, {left:,} still "
                            f"differ from the backup: nothing was changed (one transaction)")
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{WRITTEN}")
    return put, checked


async def _columns(conn: AsyncConnection, schema: str, table: str) -> dict[str, int]:
    """column -> its place in the primary key (0: not in it)."""
    rows = (await conn.exec_driver_sql(f"PRAGMA {schema}.table_info({quote(table)})")).all()
    return {r[1]: r[5] for r in rows}


async def _written(conn: AsyncConnection, key: list[str], keys: list[str]) -> None:
    """temp.WRITTEN holds `keys` (JSON arrays of the key's values, as wizard.rollback.since made them)."""
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{WRITTEN}")
    await conn.exec_driver_sql(f"CREATE TEMP TABLE {WRITTEN} ({', '.join(f'k{i}' for i in range(len(key)))})")
    rows: list[Any] = [tuple(json.loads(k)) for k in keys]
    if rows:
        marks = ", ".join("?" for _ in key)
        await conn.exec_driver_sql(f"INSERT INTO temp.{WRITTEN} VALUES ({marks})", rows)


# --- PostgreSQL: the pg_dump's data, read before the downgrade's transaction ---

# table -> (its COPY's columns, a 0600 file in the run folder holding them, where its rows begin and end in it)
Dumped = dict[str, tuple[list[str], Path, int, int]]
_COPY = re.compile(rb"^COPY (?:\S+\.)?(\"(?:[^\"]|\"\")+\"|\S+) \((.*)\) FROM stdin;$")


async def read_dump(db: DbUrl, record: BackupRecord, run_folder: Path) -> Dumped:
    """Each backed-up table's rows as the dump holds them (COPY's text format), by pg_restore --data-only, each to
    a file of its own (values may hold keys: 0600; `forget` removes them), never whole in memory."""
    tools = await pgtools.for_database(db)
    out: Dumped = {}
    try:
        for n, (table, _) in enumerate(record.row_counts):
            if table == VERSION_TABLE:
                continue
            path = run_folder / f"untouched-{n}.copy"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                await tool_run([tools.path("pg_restore"), "--data-only", f"--table={table}", "--file=-",
                                 record.path], dict(os.environ), stdout=f)
            found = _rows_in(path)
            if found is None:
                path.unlink(missing_ok=True)
                continue
            out[table] = (found[0], path, found[1], found[2])
    except BaseException:
        forget(out)
        raise
    return out


def _rows_in(path: Path) -> tuple[list[str], int, int] | None:
    """(the columns of the file's COPY, the offsets where its rows begin and end), None without one."""
    with open(path, "rb") as f:
        columns, begin, at = None, 0, 0
        for line in f:
            if columns is None:
                match = _COPY.match(line.rstrip(b"\n"))
                if match:
                    columns = [c.strip().strip('"').replace('""', '"')
                               for c in match.group(2).decode().split(", ")]
                    begin = at + len(line)
            elif line.rstrip(b"\n") == b"\\.":
                return columns, begin, at
            at += len(line)
    return None


def forget(dumped: Dumped) -> None:
    for _, path, _, _ in dumped.values():
        path.unlink(missing_ok=True)


class _Slice:
    """The rows of a read_dump file as copy_to_table reads a file: read(n) until b""."""

    def __init__(self, path: Path, begin: int, end: int) -> None:
        self.file = open(path, "rb")
        self.file.seek(begin)
        self.left = end - begin

    def read(self, n: int) -> bytes:
        chunk = self.file.read(min(n, self.left))
        self.left -= len(chunk)
        return chunk


async def put_back_pg(conn: AsyncConnection, since: Since, dumped: Dumped) -> tuple[int, list[str]]:
    """put_back on PostgreSQL, inside the downgrade's transaction, from read_dump's rows."""
    raw = (await conn.get_raw_connection()).driver_connection
    put, checked = 0, []
    for n, (table, (columns, path, begin, end)) in enumerate(sorted(dumped.items())):
        if not await raw.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(table)):
            continue  # dropped since the run: nothing of it to put back
        key = [r[0] for r in await raw.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = $1::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)", quote(table))]
        now = {r[0] for r in await raw.fetch("SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                                             "AND attnum > 0 AND NOT attisdropped", quote(table))}
        values = [c for c in columns if c in now and c not in key]
        if not key or [c for c in key if c not in columns] or not values or [c for c in columns if c not in now]:
            continue
        copy, written = f"wizard_backup_{n}", f"wizard_written_{n}"
        try:
            async with raw.transaction():  # a savepoint: a table whose column the operator retyped since is left
                await raw.execute(f"CREATE TEMP TABLE {copy} ON COMMIT DROP AS SELECT "
                                  f"{', '.join(map(quote, columns))} FROM {quote(table)} WITH NO DATA")
                rows = _Slice(path, begin, end)
                try:
                    await raw.copy_to_table(copy, source=rows, columns=columns, format="text")
                finally:
                    rows.file.close()
        except asyncpg.PostgresError:
            continue  # as the downgrade left it, and not named among the tables checked
        await raw.execute(f"CREATE TEMP TABLE {written} (k text PRIMARY KEY) ON COMMIT DROP")
        t = since.table(table)
        await raw.executemany(f"INSERT INTO {written} VALUES ($1) ON CONFLICT DO NOTHING",
                              [(k,) for k in t.added + t.changed])
        name = quote(table)
        same_key = " AND ".join(f"b.{quote(k)} = {name}.{quote(k)}" for k in key)
        key_text = f"json_build_array({', '.join(f'{name}.{quote(k)}' for k in key)})::text"
        differs = " OR ".join(f"b.{quote(c)}::text IS DISTINCT FROM {name}.{quote(c)}::text" for c in values)
        where = f"{same_key} AND NOT EXISTS (SELECT 1 FROM {written} w WHERE w.k = {key_text}) AND ({differs})"
        status = await raw.execute(f"UPDATE {name} SET " + ", ".join(f"{quote(c)} = b.{quote(c)}" for c in values)
                                   + f" FROM {copy} b WHERE {where}")
        put += int(status.split()[-1])
        checked.append(table)
        left = await raw.fetchval(f"SELECT count(*) FROM {name}, {copy} b WHERE {where}")
        if left:
            raise StepError(f"after putting back the rows of {table} nothing wrote since the run, {left:,} still "
                            f"differ from the backup: nothing was changed (one transaction)")
    return put, checked


# --- MySQL/MariaDB: the dump restored beside the database before the downgrades, the rows put back after them ---

@contextlib.asynccontextmanager
async def restored_dump(db: DbUrl, record: BackupRecord, run_folder: Path) -> AsyncIterator[DbUrl]:
    """The run's dump of `db` restored into a scratch database on its server (dropped after the block): where
    put_back_mysql reads the rows as they were. Made before the first downgrade, so that a dump that does not
    restore stops the rollback with nothing changed."""
    async with connect(db) as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")  # CREATE DATABASE commits anyway
        async with scratch_database(db, conn, "the rows nothing wrote since the run cannot be put back",
                                    run_folder) as scratch:
            await load(Path(record.path), scratch, record.kind)
            yield scratch


async def put_back_mysql(db: DbUrl, since: Since, scratch: DbUrl) -> tuple[int, list[str]]:
    """put_back on MySQL/MariaDB, after the last downgrade, from restored_dump's database `scratch`: in one InnoDB
    transaction, every row whose key is there and was not added or changed since made equal to the dump's. Keys
    and values are compared as their bytes: a column's collation may hold 'a' and 'A', or 'a' and 'a ', equal."""
    put, checked = 0, []
    b = quote(scratch.database)
    async with connect(db) as conn:
        tables = (await conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"), {"s": scratch.database})).scalars().all()
        work = []
        for n, table in enumerate(t for t in tables if t != VERSION_TABLE):
            (key, now), then = await shape(conn, table), await _scratch_columns(conn, scratch.database, table)
            values = [c for c in now if c in then and c not in key]
            if not key or not now or [c for c in key if c not in then] or not values:
                continue
            # The keys written since, in a table of the scratch database typed as the key (DDL: before the
            # transaction, which it would commit).
            written = f"{b}.{quote(f'wizard_written_{n}')}"
            keys = ", ".join(quote(k) for k in key)
            await conn.execute(text(f"CREATE TABLE {written} AS SELECT {keys} FROM {quote(table)} WHERE FALSE"))
            t = since.table(table)
            rows = [dict(zip((f"k{i}" for i in range(len(key))), json.loads(k))) for k in t.added + t.changed]
            if rows:
                await conn.execute(text(f"INSERT INTO {written} VALUES "
                                        f"({', '.join(f':k{i}' for i in range(len(key)))})"), rows)
            work.append((table, key, values, written))
        await conn.commit()
        async with write_transaction(conn):
            for table, key, values, written in work:
                name = quote(table)
                # The join finds the row by the key's index, then holds it to the same bytes.
                same_key = " AND ".join(f"b.{quote(k)} = {name}.{quote(k)} AND CAST(b.{quote(k)} AS BINARY) = "
                                        f"CAST({name}.{quote(k)} AS BINARY)" for k in key)
                untouched = (f"NOT EXISTS (SELECT 1 FROM {written} w WHERE " + " AND ".join(
                    f"CAST(w.{quote(k)} AS BINARY) = CAST({name}.{quote(k)} AS BINARY)" for k in key) + ")")
                differs = " OR ".join(f"NOT (CAST(b.{quote(c)} AS BINARY) <=> CAST({name}.{quote(c)} AS BINARY))"
                                      for c in values)
                where = f"{untouched} AND ({differs})"
                joined = f"{name} JOIN {b}.{name} b ON {same_key}"
                result = await conn.execute(text(f"UPDATE {joined} SET " + ", ".join(
                    f"{name}.{quote(c)} = b.{quote(c)}" for c in values) + f" WHERE {where}"))
                put += result.rowcount
                checked.append(table)
                left = (await conn.execute(text(f"SELECT count(*) FROM {joined} WHERE {where}"))).scalar_one()
                if left:
                    raise StepError(f"after putting back the rows of {table} nothing wrote since the run, {left:,} "
                                    f"still differ from the backup: none of them was written (one transaction); "
                                    f"the downgrades stand (MySQL commits each on its own)")
    return put, checked


async def _scratch_columns(conn: AsyncConnection, database: str, table: str) -> list[str]:
    """`table`'s columns in their order, in `database` beside the connection's (wizard.mysql.rows.shape reads the
    connection's own)."""
    return list((await conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = :d AND table_name = :t "
        "ORDER BY ordinal_position"), {"d": database, "t": table})).scalars())

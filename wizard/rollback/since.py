"""What was written to a database after a run finished: the run's end state, kept, and compared later.

At its end a run records every row of the database it leaves the engine on (the
move's target, the upgraded database) as its key and a digest of the whole row,
in a SQLite file in the run folder (`end-state.db`). Before a rollback, the same
is read again and the two are compared per table: keys added, rows changed, keys
removed. The digests are only ever compared with digests of the same database, so
each engine computes them its own way (PostgreSQL: hashtextextended, 64 bits, of the
row's text, on the server; MySQL: md5 of the row's text, on the server, wizard.mysql.rows;
SQLite: md5 of the row's values as Python reads them). The file's user_version says which way
MySQL's were computed: an end state from before the server-side digest cannot be compared.

A table with no primary key is kept as a multiset: a row is its digest and its
number among equal rows, so rows can be added or removed, never changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Iterator

import asyncpg

from wizard.db import quote, sqlite_uri
from wizard.errors import Refused, StepError
from wizard.events import Emit, StepFinished, StepStarted
from wizard.journal import Run
from wizard.move.tables import key_columns
from wizard.move.target_schema import OWN_TABLES
from wizard.mysql.rows import read_rows
from wizard.pg import SqlCursor, connect_pg
from wizard.rollback.saved_rows import plain
from wizard.schema import VERSION_TABLE
from wizard.secrets import mask
from wizard.urls import DbUrl

END_STATE = "end-state.db"
END_STATE_STEP = "end state"  # the journal's step that records it; its undo keeps what was written after
# The run folder's subfolder with the target as a carry-back's proof found it equal to the source: the drop that
# follows finds it so again, or rows were written during the rollback (wizard.rollback.undo_move).
CARRIED = "carried"
EXAMPLES = 5  # keys shown per table and kind of change
_BATCH = 10_000
# PRAGMA user_version of an end state whose MySQL digests are the server's (wizard.mysql.rows); 0 before.
DIGESTS = 1


@dataclass
class TableSince:
    table: str
    added: list[str] = field(default_factory=list)  # keys, as JSON arrays of the key's values
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    keyed: bool = True  # False: no primary key, compared as a multiset

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def describe(self) -> str:
        """'executions +50, 1 removed', 'workflows 3 changed'."""
        parts = []
        if self.added:
            parts.append(f"+{len(self.added):,}")
        if self.changed:
            parts.append(f"{len(self.changed):,} changed")
        if self.removed:
            parts.append(f"{len(self.removed):,} removed")
        return f"{self.table} {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        def shown(keys: list[str]) -> list[Any]:
            return [json.loads(mask(k)) if self.keyed else "(a row with no key)" for k in keys[:EXAMPLES]]

        return {"table": self.table, "added": len(self.added), "changed": len(self.changed),
                "removed": len(self.removed), "examples": {"added": shown(self.added), "changed": shown(self.changed),
                                                             "removed": shown(self.removed)}}


@dataclass
class Since:
    """What one database holds that it did not hold when the run finished."""

    where: str  # the database, masked
    finished: str  # when the run recorded its end state (ISO)
    tables: list[TableSince]
    journey: str = "run"

    @property
    def any(self) -> bool:
        return any(t.any for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(len(t.added) + len(t.changed) + len(t.removed) for t in self.tables)

    def table(self, name: str) -> TableSince:
        return next((t for t in self.tables if t.table == name), TableSince(name))

    def describe(self) -> str:
        if not self.any:
            return f"nothing was written to {self.where} since the {self.journey} finished"
        return (f"since the {self.journey} finished, {self.where} holds: "
                + ", ".join(t.describe() for t in self.tables if t.any))

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.where, "finished": self.finished, "written_since": self.any, "rows": self.rows,
                "summary": self.describe(), "tables": [t.to_dict() for t in self.tables if t.any]}


# --- reading a database's rows as (table, key, digest) ---


async def _pg_tables(conn: Any) -> list[tuple[str, list[str]]]:
    rows = await conn.fetch(
        "SELECT c.relname, coalesce((SELECT array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum)) "
        "  FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[]) "
        "  WHERE i.indrelid = c.oid AND i.indisprimary), '{}') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname")
    return [(r[0], list(r[1])) for r in rows]


async def _pg_rows(conn: Any, table: str, key: list[str]) -> AsyncIterator[list[tuple[str, str]]]:
    """The rows of `table` as (key, digest), a batch at a time (fetched in batches: a row at a time is slow)."""
    key_sql = f"json_build_array({', '.join(quote(k) for k in key)})::text" if key else "NULL"
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        cursor = await SqlCursor.open(conn, f"SELECT {key_sql}, hashtextextended((t.*)::text, 0) FROM {quote(table)} t")
        while batch := await cursor.fetch(_BATCH):
            yield [tuple(r) for r in batch]


def _sqlite_tables(conn: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
    return [(name, key_columns(conn, name)) for name in names]


def _sqlite_rows(conn: sqlite3.Connection, table: str, key: list[str]) -> Iterator[tuple[str | None, str]]:
    n = len(key)
    key_sql = ", ".join(quote(k) for k in key) + ", " if key else ""
    for row in conn.execute(f"SELECT {key_sql}* FROM {quote(table)}"):
        digest = hashlib.md5(repr(row[n:]).encode("utf-8", "surrogatepass")).hexdigest()
        yield (json.dumps([plain(v) for v in row[:n]]) if key else None), digest


def _any_text(data: bytes) -> str:
    """TEXT as Python reads it, and TEXT that is not UTF-8 (the engine's SQLite takes any bytes) with its odd bytes
    as lone surrogates: sqlite3's own decoding stopped the end state and the rollback's measure with a traceback.
    Valid UTF-8 reads as before, so digests recorded earlier still compare."""
    return data.decode("utf-8", "surrogateescape")


def _kept(table: str) -> bool:
    """The database's own rows, not the wizard's or Alembic's bookkeeping. By name, not by the prefix wizard_:
    a table of the source may begin with it, and is moved and rolled back like any other."""
    return table not in (VERSION_TABLE, *OWN_TABLES)


async def _read(db: DbUrl) -> AsyncIterator[tuple[str, bool, list[tuple[str, str]]]]:
    """(table, keyed, a batch of (key, digest)) for every table of `db`, a batch at a time."""
    if db.is_sqlite:
        conn = await _in_thread(sqlite3.connect, sqlite_uri(db.sqlite_path, "ro"), uri=True,
                                       check_same_thread=False)
        conn.text_factory = _any_text
        try:
            for table, key in await _in_thread(_sqlite_tables, conn):
                if not _kept(table):
                    continue
                rows = _sqlite_rows(conn, table, key)
                while batch := await _in_thread(_take, rows, _BATCH):
                    yield table, bool(key), batch
                await _in_thread(rows.close)  # its cursor freed in a worker thread too (see _run)
                yield table, bool(key), []
        finally:
            conn.close()
        return
    if db.is_mysql:
        async for table, keyed, batch in read_rows(db, _kept, _BATCH):
            yield table, keyed, batch
        return
    conn = await connect_pg(db, "wizard end state")
    try:
        for table, key in await _pg_tables(conn):
            if not _kept(table):
                continue
            try:
                async for batch in _pg_rows(conn, table, key):
                    yield table, bool(key), batch
            except asyncpg.InsufficientPrivilegeError:
                # A table given to another role since (ALTER TABLE ... OWNER TO): asyncpg's traceback, exit 1, before.
                raise Refused(f"table {table} in database {db.database} cannot be read by the user the wizard "
                              f"connects as ({db.url.username or 'the default'}): what was written to it cannot be "
                              f"measured; nothing was changed: GRANT SELECT ON {table} TO that user, or give the "
                              f"table back to it, then try again", unchanged=True) from None
            yield table, bool(key), []
    finally:
        await conn.close()


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """fn() in a worker thread, as asyncio.to_thread; cancelled (the wizard quits, a screen closes), it waits
    for the thread before the caller's `finally` closes the connection the thread is using: SQLite closed
    under a running statement crashes the process (a segfault, seen when the TUI left the Finish screen
    during the .env switch's re-recording)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _take(rows: Iterator[Any], n: int) -> list[Any]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out


def _multiset_keys(batch: list[tuple[str | None, str]], seen: dict[str, int]) -> list[tuple[str, str]]:
    """A keyless table's rows as (digest#n, digest): equal rows told apart by their count."""
    out = []
    for _, digest in batch:
        seen[digest] = seen.get(digest, 0) + 1
        out.append((f"{digest}#{seen[digest]}", digest))
    return out


# Filled in the database's order, indexed once full: a sort, not a million inserts into a B-tree.
_SCHEMA = "CREATE TABLE {name} (tbl TEXT NOT NULL, key TEXT NOT NULL, digest TEXT NOT NULL)"
_INDEX = "CREATE UNIQUE INDEX {name}_key ON {table} (tbl, key)"


async def _fill(db: DbUrl, out: sqlite3.Connection, name: str) -> dict[str, bool]:
    """Every row of `db` into table `name` of `out`; returns table -> keyed."""
    await _in_thread(_run, out, _SCHEMA.format(name=name))
    tables: dict[str, bool] = {}
    seen: dict[str, dict[str, int]] = {}
    inserting: asyncio.Future | None = None  # a batch going into `out` while the database reads the next one
    try:
        async for table, keyed, batch in _read(db):
            tables[table] = keyed
            rows = batch if keyed else _multiset_keys(batch, seen.setdefault(table, {}))
            if rows:
                if inserting is not None:
                    await inserting
                inserting = asyncio.ensure_future(_in_thread(
                    _run, out, f"INSERT INTO {name} VALUES (?, ?, ?)", [(table, k, d) for k, d in rows]))
        if inserting is not None:
            await inserting
    finally:
        if inserting is not None and not inserting.done():  # the read failed: `out` is closed after, not under it
            await asyncio.gather(inserting, return_exceptions=True)
    schema, _, table = name.rpartition(".")
    await _in_thread(_run, out, _INDEX.format(name=f"{schema}.{table}" if schema else table, table=table))
    return tables


def _run(conn: sqlite3.Connection, sql: str, rows: list[tuple] | None = None) -> None:
    """One statement in a worker thread, its cursor closed there: a cursor freed on another thread while the
    next statement runs is SQLite's "bad parameter or other API misuse"."""
    cursor = conn.executemany(sql, rows) if rows is not None else conn.execute(sql)
    cursor.close()


async def record_end_state(db: DbUrl, run_folder: Path) -> dict[str, int]:
    """Keep every row of `db` as key and digest in the run folder; returns rows per table."""
    final = Path(run_folder) / END_STATE
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = final.with_name(final.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        out = sqlite3.connect(tmp, check_same_thread=False)
        try:
            out.execute("PRAGMA journal_mode = OFF")
            out.execute("PRAGMA synchronous = OFF")
            out.execute(f"PRAGMA user_version = {DIGESTS}")
            tables = await _fill(db, out, "rows")
            out.execute("CREATE TABLE tables (tbl TEXT PRIMARY KEY, keyed INTEGER NOT NULL)")
            out.executemany("INSERT INTO tables VALUES (?, ?)", [(t, int(k)) for t, k in tables.items()])
            out.commit()
            counts = dict(out.execute("SELECT tbl, count(*) FROM rows GROUP BY tbl").fetchall())
        finally:
            out.close()
    except BaseException:
        tmp.unlink(missing_ok=True)  # cut short (a failed or stopped run): nothing half-written is left
        raise
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return {t: counts.get(t, 0) for t in tables}


async def measure(db: DbUrl, run_folder: Path, finished: str, journey: str) -> Since:
    """Compare `db` now with the end state the run recorded (StepError when it has none)."""
    path = Path(run_folder) / END_STATE
    if not path.is_file():
        raise StepError(f"{path} is missing: what was written since the run cannot be measured")
    conn = sqlite3.connect(sqlite_uri(path, "ro"), uri=True, check_same_thread=False)
    try:
        if db.is_mysql and conn.execute("PRAGMA user_version").fetchone()[0] != DIGESTS:
            raise StepError(f"{path} was recorded by an earlier wizard, whose MySQL row digests this one does not "
                            "compute: roll this run back with the wizard version that made it")
        conn.execute("PRAGMA temp_store = MEMORY")
        now = await _fill(db, conn, "temp.now")
        before = dict(conn.execute("SELECT tbl, keyed FROM tables").fetchall())
        result = []
        for table in sorted(set(before) | set(now)):
            t = TableSince(table, keyed=bool(now.get(table, before.get(table))))
            t.added = [r[0] for r in conn.execute(
                "SELECT key FROM temp.now n WHERE tbl = ? AND NOT EXISTS "
                "(SELECT 1 FROM rows r WHERE r.tbl = n.tbl AND r.key = n.key) ORDER BY key", (table,))]
            t.removed = [r[0] for r in conn.execute(
                "SELECT key FROM rows r WHERE tbl = ? AND NOT EXISTS "
                "(SELECT 1 FROM temp.now n WHERE n.tbl = r.tbl AND n.key = r.key) ORDER BY key", (table,))]
            t.changed = [r[0] for r in conn.execute(
                "SELECT n.key FROM temp.now n JOIN rows r ON r.tbl = n.tbl AND r.key = n.key "
                "WHERE n.tbl = ? AND n.digest <> r.digest ORDER BY n.key", (table,))]
            result.append(t)
    finally:
        conn.close()
    return Since(_where(db), finished, result, journey)


def differs(now: Since, expected: Since) -> str | None:
    """None when `now` names the keys `expected` names, added, changed and removed, table by table; else what `now`
    holds, with example keys (a measure taken again against one taken earlier: what was written in between)."""
    def keys(since: Since) -> dict[str, tuple[list[str], list[str], list[str]]]:
        return {t.table: (t.added, t.changed, t.removed) for t in since.tables if t.any}

    if keys(now) == keys(expected):
        return None
    examples = [f"{t.table} {k}" for t in now.tables for k in (t.added + t.changed + t.removed)[:EXAMPLES]]
    return mask(f"{', '.join(t.describe() for t in now.tables if t.any) or 'nothing'}"
                + (f"; e.g. {', '.join(examples[:EXAMPLES])}" if examples else ""))


def _where(db: DbUrl) -> str:
    return f"{db.sqlite_path}" if db.is_sqlite else f"database {db.database}"


async def record_step(run: Run, db: DbUrl, emit: Emit, undo: dict[str, Any],
                      recorded: Awaitable[dict[str, int]] | None = None) -> None:
    """The run's last step: its end state, journaled with what keeps the rows written after it (`undo`).
    `recorded`: record_end_state already under way (nothing has written to `db` since it began)."""
    run.step_started(END_STATE_STEP, f"record the rows as the run leaves {_where(db)}")
    emit(StepStarted(END_STATE_STEP, "record every row's key and digest, to tell later what was written since"))
    counts = await (recorded if recorded is not None else record_end_state(db, run.folder))
    run.step_finished(END_STATE_STEP, undo=undo, tables=counts)
    emit(StepFinished(END_STATE_STEP, f"recorded {sum(counts.values()):,} rows in {len(counts)} tables: a rollback "
                                      f"will tell what was written since"))


async def record_again(run: Run, db: DbUrl, emit: Emit) -> None:
    """The end state taken again, with the same undo, after a change the run itself made later (the TUI's
    settings move on switching): rows it wrote are the run's, not the engine's."""
    undo = next((r["undo"] for r in reversed(run.records()) if r["kind"] == "step_finished"
                 and r.get("step") == END_STATE_STEP and r.get("undo")), None)
    if undo is not None:
        await record_step(run, db, emit, undo)

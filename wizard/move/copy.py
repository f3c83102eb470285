"""The table copier: SQLite rows to PostgreSQL by binary COPY, exactly once, in chunks.

Per table, a reader thread (stdlib sqlite3, read-only, one snapshot, primary-key
order) converts rows and hands chunks through a bounded queue to the async writer,
so reading, converting and writing overlap. The writer COPYs a chunk and upserts
its checkpoint row (the last key, the counts, the quarantine file's length) in ONE
transaction: after any crash, the checkpoint says exactly which rows are in, and a
resume carries on after its key, with no duplicates and no gaps. The side files
(quarantine/<table>.jsonl: rows left out; nulled/<table>.jsonl: rows whose dangling
foreign key was set to NULL) are written (fsynced) before that commit, and a resume
cuts them back to the lengths the checkpoint recorded.

Rows SQLite says are clean (normalize.clean_sql) take the fast path: a generated
per-table function that only turns text timestamps into datetimes and 0/1 into
booleans. Every other row goes through normalize.convert, value by value, and each
conversion is counted per column. When the scan handed over the keys of the rows
that are not clean, the reader does not ask SQLite again (the test costs more than
reading the row); the move checks afterwards that the source did not change. A target that reads text
(MySQL's LOAD DATA) may have SQLite make each clean row's whole line instead (`lines`, wizard.move.lines);
PostgreSQL's binary COPY of the records costs less than its text COPY would (bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from functools import partial
from typing import Any, Awaitable, Callable, Iterator

import asyncpg

from wizard.move import normalize
from wizard.db import quote
from wizard.errors import Interrupted, StepError
from wizard.events import Emit, ProgressMeter, StopRequest
from wizard.journal import table_file
from wizard.move.scan import SET_NULL, Key, RowActions, jsonable, shown_key, tolerant_text
from wizard.secrets import mask_data
from wizard.move.pgnames import pg_name
from wizard.move.tables import SourceTable, open_readonly

STEP = "copy"
CHUNK_ROWS = 10_000
QUEUE_CHUNKS = 2  # chunks converted ahead of the writer: bounds memory
# Rows per fetchmany: converted while still in the CPU cache (fetching a whole 10k chunk at once
# cost the reader ~25% more CPU on 1M executions).
FETCH_ROWS = 1_000
CHECKPOINTS = "wizard_copy_checkpoint"

CHECKPOINT_DDL = f"""
CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (
    run_id text NOT NULL,
    table_name text NOT NULL,
    last_key text,              -- JSON list of the last copied-or-quarantined row's key values
    rows_copied bigint NOT NULL DEFAULT 0,
    rows_quarantined bigint NOT NULL DEFAULT 0,
    quarantine_bytes bigint NOT NULL DEFAULT 0,
    nulled_bytes bigint NOT NULL DEFAULT 0,
    conversions text NOT NULL DEFAULT '{{}}',  -- JSON {{column: {{conversion: count}}}}
    seconds double precision NOT NULL DEFAULT 0,
    done boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, table_name)
)"""

_UPSERT = f"""
INSERT INTO {CHECKPOINTS} (run_id, table_name, last_key, rows_copied, rows_quarantined, quarantine_bytes,
                          nulled_bytes, conversions, seconds, done)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (run_id, table_name) DO UPDATE SET
    last_key = EXCLUDED.last_key, rows_copied = EXCLUDED.rows_copied,
    rows_quarantined = EXCLUDED.rows_quarantined, quarantine_bytes = EXCLUDED.quarantine_bytes,
    nulled_bytes = EXCLUDED.nulled_bytes, conversions = EXCLUDED.conversions, seconds = EXCLUDED.seconds, done = EXCLUDED.done"""


@dataclass
class TableCopy:
    """Where one table's copy stands: what its checkpoint row says."""

    table: str
    source_rows: int = 0
    copied: int = 0
    quarantined: int = 0
    conversions: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> conversion -> count
    seconds: float = 0.0
    done: bool = False
    last_key: Position | None = None
    quarantine_bytes: int = 0
    nulled_bytes: int = 0

    @property
    def rows_per_second(self) -> float | None:
        return (self.copied + self.quarantined) / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "source_rows": self.source_rows, "copied": self.copied,
                "quarantined": self.quarantined, "conversions": self.conversions,
                "seconds": round(self.seconds, 3), "rows_per_second": _round(self.rows_per_second)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@dataclass(frozen=True)
class AmongNullKeys:
    """A checkpoint among the rows whose key holds NULL. Those are read first, in rowid order, because a
    checkpoint at a key with a NULL in it cannot be resumed from: `key > (NULL)` is true of no row."""

    rowid: int


Position = Key | AmongNullKeys  # how far a table's copy got: the last row's key, or its rowid among NULL keys


def encode_key(key: Position | None) -> str | None:
    if key is None:
        return None
    if isinstance(key, AmongNullKeys):
        return json.dumps({"rowid_among_null_keys": key.rowid})
    return json.dumps([{"hex": v.hex()} if isinstance(v, bytes) else v for v in key])


def decode_key(text: str | None) -> Position | None:
    if text is None:
        return None
    value = json.loads(text)
    if isinstance(value, dict):
        return AmongNullKeys(value["rowid_among_null_keys"])
    return tuple(bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for v in value)


async def load_checkpoints(conn: asyncpg.Connection, run_id: str) -> dict[str, TableCopy]:
    rows = await conn.fetch(f"SELECT * FROM {CHECKPOINTS} WHERE run_id = $1", run_id)
    return {
        r["table_name"]: TableCopy(
            r["table_name"], 0, r["rows_copied"], r["rows_quarantined"], json.loads(r["conversions"]),
            r["seconds"], r["done"], decode_key(r["last_key"]), r["quarantine_bytes"], r["nulled_bytes"],
        )
        for r in rows
    }


async def _save(conn: asyncpg.Connection, run_id: str, state: TableCopy) -> None:
    await conn.execute(_UPSERT, run_id, state.table, encode_key(state.last_key), state.copied, state.quarantined,
                       state.quarantine_bytes, state.nulled_bytes, json.dumps(state.conversions), state.seconds,
                       state.done)


@dataclass
class _Chunk:
    records: list[Any]  # [] when `data` holds them (`prepare`): one form of the rows in memory, not two
    last_key: Position
    read: int
    quarantine: bytes  # JSON lines
    quarantined: int
    nulled: bytes  # JSON lines
    conversions: Counter
    ends: list[tuple[Any, str, str, str]]  # (target key or None, column, kind, exact text): see _write_ends
    data: Any = None  # the records as the target's writer sends them, made by `prepare` in the reader thread
    copied: int = 0  # rows in the chunk: its records and its lines
    text: bytes = b""  # the clean rows as lines SQLite made (`lines`), sent before `data`


# The first and last instant (and day) asyncpg's binary codec sends as -infinity/infinity. The clean
# test never passes them (normalize.clean_sql), so the reader sees each one and has it written again
# exactly, by text, in the chunk's transaction.
_ENDS = {normalize.TIMESTAMP: (datetime.min, datetime.max), normalize.DATE: (date.min, date.max)}


@dataclass
class _Pending:
    """A chunk's rows as the reader makes them."""

    records: list[Any] = field(default_factory=list)  # converted by Python
    lines: list[bytes] = field(default_factory=list)  # made by SQLite (wizard.move.lines)
    held: list[bytes] = field(default_factory=list)  # quarantine lines
    nulled: list[bytes] = field(default_factory=list)
    conversions: Counter = field(default_factory=Counter)
    ends: list = field(default_factory=list)


_END = object()


class _Cancelled(Exception):
    pass


def fast_row_function(kinds: list[str]) -> Callable[[tuple], tuple]:
    """A function taking a clean SQLite row to the record COPY sends (see normalize.fast).

    Generated once per table so a clean row costs one call: the source is built only
    from column positions, the converters are passed in by name.
    """
    env: dict[str, Any] = {}
    parts = []
    for i, kind in enumerate(kinds):
        f = normalize.fast(kind)
        if f is None:
            parts.append(f"r[{i}]")
        else:
            env[f"f{i}"] = f
            parts.append(f"(None if r[{i}] is None else f{i}(r[{i}]))")
    return eval(f"lambda r: ({', '.join(parts)},)", env)  # noqa: S307 - built from positions only


class _Reader:
    """The reader thread of one table: SQLite rows in key order, converted, in chunks."""

    def __init__(self, path: Path, table: SourceTable, actions: RowActions, unclean: frozenset[Key] | None,
                 after: Position | None, chunk_rows: int, queue: asyncio.Queue, loop: asyncio.AbstractEventLoop,
                 prepare: Callable[[list], Any] | None = None,
                 lines: Callable[[SourceTable], str | None] | None = None) -> None:
        self.path, self.table, self.actions, self.unclean, self.after = path, table, actions, unclean, after
        self.chunk_rows, self.queue, self.loop, self.prepare, self.lines = chunk_rows, queue, loop, prepare, lines
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"read {table.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _put(self, item: Any) -> None:
        future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        while True:
            try:
                future.result(timeout=0.2)
                return
            except TimeoutError:
                if self.cancelled.is_set():
                    future.cancel()
                    raise _Cancelled from None

    def _run(self) -> None:
        try:
            self._read()
            self._put(_END)
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the writer, which raises it in the event loop
            try:
                self._put(exc)
            except _Cancelled:
                pass

    def _read(self) -> None:
        t = self.table
        n = len(t.columns)
        cols = ", ".join(quote(c.name) for c in t.columns)
        clean = t.clean_sql() if self.unclean is None else "1"
        null_key = t.null_key_sql()
        conn = open_readonly(self.path)
        if self.actions.quarantine:  # text that is not UTF-8 (the scan's reading) reaches _slow as bytes, to be held
            conn.text_factory = tolerant_text
        try:
            conn.execute("BEGIN")  # one snapshot for the whole table
            line = self._line_sql()
            if line is None:  # the row's values, (its rowid,) its clean flag
                read = partial(self._read_pass, key_of=_key_getter(
                    [t.column_names.index(k) for k in t.key] if not t.key_is_rowid else [n]))
                among_null_keys = (f"{cols}, {t.rowid}, {clean}", lambda row: AmongNullKeys(row[n]))
                by_key = f"{cols}{f', {t.rowid}' if t.key_is_rowid else ''}, {clean}"
            else:  # the row's key, its rowid, its line
                nk = len(t.key)
                read = partial(self._read_lines, conn, key_of=_key_getter(list(range(nk))),
                               values=f"SELECT {cols} FROM {quote(t.name)} WHERE {t.rowid} = ?")
                among_null_keys = (f"{t.key_sql()}, {t.rowid}, {line}", lambda row: AmongNullKeys(row[nk]))
                by_key = f"{t.key_sql()}, {t.rowid}, {line}"
            if null_key is not None and not isinstance(self.after, tuple):  # the rows whose key holds NULL, first
                after_rowid = self.after.rowid if isinstance(self.after, AmongNullKeys) else None
                sql = (f"SELECT {among_null_keys[0]} FROM {quote(t.name)} WHERE ({null_key})"
                       f"{f' AND {t.rowid} > ?' if after_rowid is not None else ''} ORDER BY {t.rowid}")
                read(conn.execute(sql, (after_rowid,) if after_rowid is not None else ()), position=among_null_keys[1])
            where = [f"NOT ({null_key})"] if null_key is not None else []
            params: tuple = ()
            if isinstance(self.after, tuple):
                where.append(f"({t.key_sql()}) > ({', '.join('?' * len(self.after))})")
                params = tuple(self.after)
            sql = (f"SELECT {by_key} FROM {quote(t.name)}{' WHERE ' + ' AND '.join(where) if where else ''} "
                   f"ORDER BY {t.key_sql()}")
            read(conn.execute(sql, params), position=None)
        finally:
            conn.close()

    def _line_sql(self) -> str | None:
        """SQLite's line for a clean row (`lines`), when this table can have it: the scan named the rows that
        are not clean (else SQLite would test each again), there is a rowid to fetch those by, and the
        database's text is UTF-8."""
        t = self.table
        if self.lines is None or self.unclean is None or t.without_rowid or not t.utf8:
            return None
        return self.lines(t)

    def _special(self) -> set[Key]:
        """The keys of the rows that cannot take the fast path: not clean, held, or with a reference to clear."""
        return set(self.actions.quarantine) | set(self.actions.null) | (self.unclean or set())

    def _batches(self, cursor: sqlite3.Cursor, position: Callable[[tuple], Position]) -> Iterator[tuple[_Pending, list]]:
        """The rows `cursor` reads, FETCH_ROWS at a time, each batch with the chunk it goes into; a chunk is handed
        to the writer once its rows are all read (and done with), ending at `position` of its last row."""
        while not self.cancelled.is_set():
            pending = _Pending()
            read = 0
            while read < self.chunk_rows:
                rows = self._fetch(cursor, min(FETCH_ROWS, self.chunk_rows - read))
                if not rows:
                    break
                read += len(rows)
                last_row = rows[-1]
                yield pending, rows
            if not read:
                return
            self._hand_over(pending, read, position(last_row))

    def _read_pass(self, cursor: sqlite3.Cursor, key_of: Callable[[tuple], Key],
                   position: Callable[[tuple], Position] | None = None) -> None:
        """The rows `cursor` reads, converted, in chunks that end at `position` (else the key) of their last row."""
        fast = fast_row_function([c.kind for c in self.table.columns])
        flag = -1  # the clean flag is the last column
        special = self._special()
        for pending, rows in self._batches(cursor, position or key_of):
            records = pending.records
            for row in rows:
                if row[flag] and not (special and key_of(row) in special):
                    try:
                        records.append(fast(row))
                        continue
                    except (TypeError, ValueError):  # not as the scan saw it: convert() will say why
                        pass
                self._slow(row, key_of(row), pending)

    def _read_lines(self, conn: sqlite3.Connection, cursor: sqlite3.Cursor, key_of: Callable[[tuple], Key],
                    values: str, position: Callable[[tuple], Position] | None = None) -> None:
        """The rows `cursor` reads as (key..., rowid, line), in chunks as _read_pass's: a clean row's line as
        SQLite made it (wizard.move.lines); a row the scan named, its values fetched by rowid (`values`) and
        converted. The scan's keys stand for SQLite's test: the move checks afterwards that the source did not
        change."""
        special = self._special()
        at = len(self.table.key)  # the rowid's place
        for pending, rows in self._batches(cursor, position or key_of):
            if not special:
                pending.lines += [row[-1] for row in rows]
                continue
            for row in rows:
                key = key_of(row)
                if key in special:
                    self._slow(self._fetch(conn.execute(values, (row[at],)), 1)[0], key, pending)
                else:
                    pending.lines.append(row[-1])

    def _hand_over(self, pending: _Pending, read: int, last: Position) -> None:
        """A chunk to the writer, the copy's position moved past it."""
        self.after = last
        p = pending
        # Made here, ahead of the writer: the target loads one chunk while the next is made.
        records, copied, data = p.records, len(p.records) + len(p.lines), None
        if self.prepare is not None and records:
            data, records = self.prepare(records), []
        self._put(_Chunk(records, last, read, b"".join(p.held), len(p.held), b"".join(p.nulled), p.conversions,
                         p.ends, data, copied, b"".join(p.lines)))

    def _fetch(self, cursor: sqlite3.Cursor, n: int) -> list[tuple]:
        try:
            return cursor.fetchmany(n)
        except sqlite3.OperationalError as exc:
            after = f"row {self.after.rowid}" if isinstance(self.after, AmongNullKeys) else f"key {shown_key(self.after or ())}"
            raise StepError(f"cannot read table {self.table.name} after {after}: {exc}: "
                            f"fix that text in the source (it is not UTF-8), then run the move again") from None

    def _slow(self, row: tuple, key: Key, pending: _Pending) -> None:
        t = self.table
        p = pending
        quarantine = self.actions.quarantine.get(key)
        if quarantine is not None:
            values = {c.name: jsonable(v) for c, v in zip(t.columns, row)}
            p.held.append(_line({"pk": shown_key(key), "table": t.name, "rule": quarantine.rule,
                                 "reason": quarantine.reason, "row": mask_data(values)}))
            return
        out = []
        for c, value in zip(t.columns, row):
            try:
                converted, made = normalize.convert(c.kind, value)
            except normalize.BadValue as exc:
                raise StepError(
                    f"{t.name} row {shown_key(key)}: {c.name} holds {exc.rule}, which the checks did not find: "
                    f"the source changed since they ran; stop the engine and run the move again"
                ) from None
            if made:
                p.conversions[(c.name, made)] += 1
            out.append(converted)
        for c, converted in zip(t.columns, out):
            if converted is not None and converted in _ENDS.get(c.kind, ()):
                target_key = None if t.key_is_rowid else tuple(out[t.column_names.index(k)] for k in t.key)
                p.ends.append((target_key, c.target, c.kind, converted.isoformat()))
        cleared = [c for c in self.actions.null.get(key, ()) if out[t.column_names.index(c)] is not None]
        for column in cleared:
            out[t.column_names.index(column)] = None
            p.conversions[(column, SET_NULL)] += 1
        if cleared:
            p.nulled.append(_line({"pk": shown_key(key), "table": t.name, "rule": SET_NULL, "columns": cleared,
                                   "was": mask_data({c: jsonable(row[t.column_names.index(c)]) for c in cleared})}))
        p.records.append(out)


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, default=str).encode() + b"\n"


def _key_getter(positions: list[int]) -> Callable[[tuple], Key]:
    if len(positions) == 1:
        i = positions[0]
        return lambda row: (row[i],)
    return lambda row: tuple(row[i] for i in positions)


def quarantine_path(run_folder: Path, table: str) -> Path:
    return table_file(run_folder / "quarantine", table)


def nulled_path(run_folder: Path, table: str) -> Path:
    return table_file(run_folder / "nulled", table)


def _trim(path: Path, length: int) -> None:
    """Cut a side file back to what the last committed checkpoint counted."""
    if not path.exists() or path.stat().st_size == length:
        return
    if length == 0:
        path.unlink()
        return
    with open(path, "r+b") as f:
        f.truncate(length)
        os.fsync(f.fileno())


async def copy_table(conn: asyncpg.Connection, source: Path, table: SourceTable, actions: RowActions,
                     run_id: str, state: TableCopy, run_folder: Path, emit: Emit,
                     stop: StopRequest | None = None, chunk_rows: int = CHUNK_ROWS,
                     unclean: frozenset[Key] | None = None, reader_class: type[_Reader] | None = None) -> TableCopy:
    """Copy one table from `state` (a fresh one, or its checkpoint) to the end, or to a stop request.

    `unclean`: the keys of the rows that are not clean, from the scan of this same file; None
    lets SQLite test every row. `reader_class`: another source's reader (wizard.mysql.reader), `source`
    then its URL.
    """
    columns = [c.target for c in table.columns]  # their names in PostgreSQL

    async def commit(item: _Chunk, account: Callable[[], Awaitable[None]]) -> None:
        async with conn.transaction():
            # Safe for exactly-once: a chunk and its checkpoint commit together, and a lost commit loses
            # both. LOCAL: a session setting would stay on a pooler's server connection for its next client.
            await conn.execute("SET LOCAL synchronous_commit = off")
            if item.records:
                await copy_records(conn, table.target, item.records, columns)
            if item.ends:
                await _write_ends(conn, table, item.ends)
            await account()
            await _save(conn, run_id, state)

    return await copy_chunks(source, table, actions, state, run_folder, emit, stop, chunk_rows, unclean, commit,
                             lambda done: _save(conn, run_id, done), reader_class)


async def copy_chunks(source: Any, table: SourceTable, actions: RowActions, state: TableCopy, run_folder: Path,
                      emit: Emit, stop: StopRequest | None, chunk_rows: int, unclean: frozenset[Key] | None,
                      commit: Callable[[_Chunk, Callable[[], Awaitable[None]]], Awaitable[None]],
                      save: Callable[[TableCopy], Awaitable[None]],
                      reader_class: type[_Reader] | None = None,
                      prepare: Callable[[list], Any] | None = None,
                      lines: Callable[[SourceTable], str | None] | None = None) -> TableCopy:
    """The reader's chunks of one table, each handed to `commit(chunk, account)`, which writes its rows, awaits
    `account()` (the side files written, `state` moved past the chunk) and saves the checkpoint, all in one
    transaction of the target; `save(state)` the last checkpoint, the table done. Any target's copy_table;
    `reader_class` and `source` as copy_table's; `prepare(records)`, if given, is the chunk's `data`;
    `lines(table)`, if given, SQLite's expression for a clean row's line (wizard.move.lines), the chunk's `text`."""
    if state.done:
        return state
    qpath, npath = quarantine_path(run_folder, table.name), nulled_path(run_folder, table.name)
    _trim(qpath, state.quarantine_bytes)
    _trim(npath, state.nulled_bytes)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)
    reader = (reader_class or _Reader)(source, table, actions, unclean, state.last_key, chunk_rows, queue, loop,
                                       prepare, lines)
    meter = ProgressMeter(emit, STEP, table.name, state.source_rows)
    meter.done = state.copied + state.quarantined
    conversions = Counter({(col, name): n for col, made in state.conversions.items() for name, n in made.items()})
    reader.start()
    started = time.monotonic()
    base_seconds = state.seconds
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            await commit(item, lambda: take_chunk(state, item, qpath, npath, conversions,
                                                  base_seconds + time.monotonic() - started))
            meter.advance(item.read)
            if stop is not None and stop.is_set():
                meter.finish()
                raise Interrupted(f"stopped after a checkpoint in table {table.name} ({stop.reason})")
        state.done = True
        state.seconds = base_seconds + time.monotonic() - started
        await save(state)
        meter.finish()
        return state
    finally:
        reader.cancelled.set()
        while not queue.empty():
            queue.get_nowait()
        await asyncio.to_thread(reader.thread.join)


async def take_chunk(state: TableCopy, item: _Chunk, qpath: Path, npath: Path, conversions: Counter,
                     seconds: float) -> None:
    """Write a chunk's side files (fsynced) and move `state` past it: then its checkpoint may be saved, in the
    transaction of its rows. `conversions`: the table's running count, the chunk's added."""
    if item.quarantine:
        state.quarantine_bytes = await asyncio.to_thread(_append, qpath, item.quarantine)
    if item.nulled:
        state.nulled_bytes = await asyncio.to_thread(_append, npath, item.nulled)
    conversions.update(item.conversions)
    state.copied += item.copied
    state.quarantined += item.quarantined
    state.last_key = item.last_key
    state.conversions = _nest(conversions)
    state.seconds = seconds


async def copy_records(conn: asyncpg.Connection, table: str, records: list[tuple], columns: list[str]) -> None:
    """asyncpg's binary COPY of `records`, raising when the connection is lost instead of waiting forever.

    asyncpg (0.31) waits for the socket to drain on its protocol's `writing_allowed`, which a lost connection
    never sets: a target that dies (a restart, pg_terminate_backend) while it is slower to take the rows than
    they are sent leaves the copy waiting for good. A termination listener ends the wait."""
    if conn.is_closed():
        raise asyncpg.ConnectionDoesNotExistError("the connection to the target was closed")
    lost = asyncio.get_running_loop().create_future()

    def on_lost(_: object) -> None:
        if not lost.done():
            lost.set_result(None)

    conn.add_termination_listener(on_lost)
    copy = asyncio.ensure_future(conn.copy_records_to_table(table, records=records, columns=columns))
    try:
        await asyncio.wait({copy, lost}, return_when=asyncio.FIRST_COMPLETED)
        if copy.done():
            return copy.result()
        # Lost while waiting to write: the copy would never wake.
        raise asyncpg.ConnectionDoesNotExistError("the connection to the target was lost in the middle of a COPY")
    finally:
        if not copy.done():  # lost, or this coroutine cancelled (a stop, a sibling's failure)
            copy.cancel()
            await asyncio.wait({copy})
            if not copy.cancelled():
                copy.exception()  # retrieved: it tells of the same end
        conn.remove_termination_listener(on_lost)


async def _write_ends(conn: asyncpg.Connection, table: SourceTable, ends: list[tuple[Any, str, str, str]]) -> None:
    """Write the range's end values (0001-01-01 00:00:00, 9999-12-31 23:59:59.999999) exactly, as text: the COPY
    wrote them as -infinity/infinity. By the row's primary key; in a table without one, every infinity of the
    column is one of them (the rules never let an infinity through)."""
    await conn.execute("SET LOCAL TIME ZONE 'UTC'")  # a timestamptz column takes the text as UTC, as the copy does
    for target_key, column, kind, text in ends:
        cast = "timestamp" if kind == normalize.TIMESTAMP else "date"
        c = quote(column)
        if target_key is None:
            infinity = "-infinity" if text.startswith("0001") else "infinity"
            await conn.execute(f"UPDATE {quote(table.target)} SET {c} = $1::text::{cast} WHERE {c} = '{infinity}'", text)
        else:
            match = " AND ".join(f"{quote(pg_name(k))} = ${i}" for i, k in enumerate(table.key, start=2))
            await conn.execute(f"UPDATE {quote(table.target)} SET {c} = $1::text::{cast} WHERE {match}", text,
                               *target_key)


def _append(path: Path, data: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _nest(counts: Counter) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (column, name), n in sorted(counts.items()):
        out.setdefault(column, {})[name] = n
    return out

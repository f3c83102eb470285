"""Row-level verification: the target holds the source, row by row, named by primary key.

Both sides are read in primary-key order and merged, streaming, in constant
memory: SQLite in a thread of its own (stdlib sqlite3, read-only), PostgreSQL
through an asyncpg cursor whose next chunk is fetched while the current one is
compared. Values are compared after the copy's own rules (wizard.normalize):
the source side through `source_canonical`, a PostgreSQL side through
`canonical`, the kind always from the target column's type. Fields are compared
one by one, never concatenated, so ('ab','c') cannot equal ('a','bc') and NULL
cannot equal 'NULL'. A cheap exact test settles most fields first; only a field
it cannot settle is converted.

Key order: SQLite sorts text keys by memcmp (COLLATE BINARY), PostgreSQL by the
column's collation, so PostgreSQL is asked for `COLLATE "C"` (byte order, which
is code-point order, which is Python's). A SQLite key column that holds more than
one storage class (text and integers in one column) is sorted by a CAST to the
target kind. A key that still arrives out of order, twice, or not at all (NULL,
or a value the copy cannot convert) is counted as a difference with its reason.

Tables with no primary key are compared as multisets (an order-free sum of row
digests): equal or not, but their differing rows cannot be named.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import asyncpg

from wizard.db import describe_connect_error, quote
from wizard.errors import BadInput, Interrupted, StepError
from wizard.events import Emit, ProgressMeter, StepFailed, StepFinished, StepStarted, StopRequest, Warn, ignore
from wizard.normalize import (BIGINT, BOOLEAN, BYTES, DATE, FLOAT, INTEGER, JSON, SMALLINT, TEXT, TIMESTAMP,
                              BadValue, canonical, convert, source_canonical)
from wizard.secrets import mask_data
from wizard.urls import DbUrl
from wizard.verify_schema import (FAIL, INTERNAL_TABLES, SchemaFinding, TableShape, check_schema,
                                  open_for_reading, reflect)

STEP = "verify"
CHUNK_ROWS = 5000
SHOWN_CHARS = 400  # a value longer than this is cut in the diffs (the whole row is in the database)
INT_KINDS = (BIGINT, INTEGER, SMALLINT)

__all__ = ["ColumnDiff", "RowDiff", "TableVerdict", "SchemaFinding", "VerifyReport", "verify", "load_quarantine"]


# --- what verification reports ---


@dataclass
class ColumnDiff:
    column: str
    source: Any  # the compared (canonical) form, masked and cut to SHOWN_CHARS
    target: Any
    detail: str | None = None  # the rule a source value broke, or where two JSON values part


@dataclass
class RowDiff:
    pk: Any
    columns: list[ColumnDiff]
    kind: str  # different | only_source | only_target
    reason: str | None = None


@dataclass
class TableVerdict:
    table: str
    source_rows: int = 0
    target_rows: int = 0
    quarantined: int = 0
    equal: int = 0
    different: int = 0
    only_source: int = 0
    only_target: int = 0
    status: str = "ok"  # ok | differs | missing
    diffs: list[RowDiff] = field(default_factory=list)  # the first max_keys
    columns: dict[str, int] = field(default_factory=dict)  # differing rows per column
    note: str | None = None
    seconds: float = 0.0


@dataclass
class VerifyReport:
    source: str  # masked URLs
    target: str
    tables: list[TableVerdict]
    schema: list[SchemaFinding]
    elapsed: float = 0.0
    rows_per_second: float | None = None  # source rows compared per second of the row-level part

    @property
    def ok(self) -> bool:
        return all(t.status == "ok" for t in self.tables) and not any(f.status == FAIL for f in self.schema)

    def summary(self) -> str:
        if self.ok:
            rows = sum(t.source_rows for t in self.tables)
            return f"verified: {len(self.tables)} tables, {rows:,} rows equal, schema as its revision"
        parts = [f"{t.table} {t.status}" for t in self.tables if t.status != "ok"]
        fails = sum(f.status == FAIL for f in self.schema)
        if fails:
            parts.append(f"{fails} schema finding{'s' if fails > 1 else ''}")
        return "differences found: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary(), **asdict(self)}


def load_quarantine(run_folder: Path) -> dict[str, set]:
    """The primary keys the copy put in quarantine, per table, from <run>/quarantine/<table>.jsonl.

    A `pk` is the source's raw key value, or a list of them for a composite key.
    """
    out: dict[str, set] = {}
    for path in sorted((Path(run_folder) / "quarantine").glob("*.jsonl")):
        keys = out.setdefault(path.stem, set())
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                pk = json.loads(line)["pk"]
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from an interrupted copy
            if isinstance(pk, list):
                pk = pk[0] if len(pk) == 1 else tuple(pk)
            keys.add(pk)
    return out


# --- per-column rules ---


@dataclass(frozen=True)
class _Unconvertible:
    """A value the copy's rules refuse; equal only to the same refused value."""

    rule: str
    value: Any


def _sqlite_value(kind: str) -> Callable[[Any], Any]:
    def value(v: Any) -> Any:
        try:
            return source_canonical(kind, v)
        except BadValue as exc:
            return _Unconvertible(exc.rule, v)

    return value


def _pg_value(kind: str) -> Callable[[Any], Any]:
    def value(v: Any) -> Any:
        if kind == TEXT and v is not None and not isinstance(v, (str, bytes)):
            v = str(v)  # uuid, inet and the like arrive as objects
        try:
            return canonical(kind, v)
        except (ValueError, TypeError, ArithmeticError):
            return _Unconvertible(f"cannot be read as {kind}", v)

    return value


def _quick_same_engine(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)


def _quick_sqlite_to_pg(kind: str) -> Callable[[Any, Any], bool]:
    """An exact test that implies equal canonical forms (False means: convert and look)."""
    if kind in (TEXT, JSON):
        return lambda a, b: type(a) is str and a == b  # a PostgreSQL json keeps its text verbatim
    if kind in INT_KINDS:
        return lambda a, b: type(a) is int and a == b
    if kind == FLOAT:
        return lambda a, b: type(a) is float and a == b
    if kind == BOOLEAN:
        return lambda a, b: type(a) is int and type(b) is bool and a == b
    if kind == TIMESTAMP:
        return lambda a, b: type(a) is str and type(b) is datetime and a == b.isoformat(" ", "microseconds")
    if kind == DATE:
        return lambda a, b: type(a) is str and type(b) is date and a == b.isoformat()
    if kind == BYTES:
        return lambda a, b: type(a) is bytes and a == b
    return lambda a, b: False


def _same(x: Any, y: Any) -> bool:
    return x == y and type(x) is type(y)


class _Unorderable(Exception):
    pass


def _sqlite_key(kind: str) -> Callable[[Any], Any]:
    fast = int if kind in INT_KINDS else str if kind == TEXT else None

    def key(v: Any) -> Any:
        if type(v) is fast and (fast is int or "\x00" not in v):
            return v
        if v is None:
            raise _Unorderable("its primary key is NULL")
        try:
            return convert(kind, v)[0]
        except BadValue as exc:
            raise _Unorderable(f"its primary key {v!r}: {exc.rule}") from None

    return key


def _pg_key(kind: str) -> Callable[[Any], Any]:
    if kind == TEXT:
        return lambda v: v if type(v) is str else str(v)
    return lambda v: v


def _shown_key(key: Any) -> Any:
    if isinstance(key, tuple):
        return [_shown_key(k) for k in key]
    if isinstance(key, (int, str, float)) or key is None:
        return key
    if isinstance(key, bytes):
        return key.hex()
    return str(key)


def _shown(column: str, value: Any) -> Any:
    if isinstance(value, _Unconvertible):
        value = value.value
    if isinstance(value, bytes):
        value = value.hex() if len(value) * 2 <= SHOWN_CHARS else value[: SHOWN_CHARS // 2].hex() + "..."
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        value = str(value)
    value = mask_data({column: value})[column]  # hashed_password, apiKey and the like never show
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        value = value[:SHOWN_CHARS] + "..."
    return value


def _json_parting(a: Any, b: Any, path: str = "$") -> str | None:
    """Where two parsed JSON values first differ, as a path ($.nodes[0].status)."""
    if type(a) is not type(b):
        return path
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}"
            found = _json_parting(a[k], b[k], f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _json_parting(x, y, f"{path}[{i}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{path}[{min(len(a), len(b))}]"
    return None if a == b else path


@dataclass(frozen=True)
class _Column:
    name: str
    index: int
    kind: str
    quick: Callable[[Any, Any], bool]
    source: Callable[[Any], Any]
    target: Callable[[Any], Any]

    def detail(self, s: Any, t: Any) -> str | None:
        if isinstance(s, _Unconvertible):
            return s.rule
        if isinstance(t, _Unconvertible):
            return f"target: {t.rule}"
        if self.kind == JSON and isinstance(s, str) and isinstance(t, str):
            where = _json_parting(json.loads(s), json.loads(t))
            return f"differs at {where}" if where else None
        return None


# --- the two sides: where rows come from ---


class _SqliteReader:
    """One SELECT on its own read-only connection, run in a thread; chunks handed to the loop."""

    DEPTH = 3  # chunks read ahead

    def __init__(self, path: Path, plan: Callable[[sqlite3.Connection], str]) -> None:
        self._path = path
        self._plan = plan
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._slots = threading.Semaphore(self.DEPTH)
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verify-sqlite", daemon=True)
        self._thread.start()

    def _hand(self, item: Any) -> bool:
        while not self._slots.acquire(timeout=0.1):
            if self._cancel.is_set():
                return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is gone
            return False
        return True

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(f"{self._path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            self._hand(exc)
            return
        try:
            cur = conn.execute(self._plan(conn))
            while not self._cancel.is_set():
                rows = cur.fetchmany(CHUNK_ROWS)
                if not self._hand(rows) or not rows:
                    return
        except sqlite3.Error as exc:
            self._hand(exc)
        finally:
            conn.close()

    async def next(self) -> list:
        item = await self._queue.get()
        self._slots.release()
        if isinstance(item, BaseException):
            raise StepError(f"reading {self._path} failed: {item}")
        return item

    async def close(self) -> None:
        self._cancel.set()
        await asyncio.to_thread(self._thread.join)


class _PgReader:
    """A server-side cursor in the side's snapshot; the next chunk is on its way while one is compared."""

    def __init__(self, conn: asyncpg.Connection, sql: str) -> None:
        self._conn = conn
        self._sql = sql
        self._ahead: asyncio.Future | None = None

    async def start(self) -> "_PgReader":
        self._cursor = await self._conn.cursor(self._sql)
        self._ahead = asyncio.ensure_future(self._cursor.fetch(CHUNK_ROWS))
        return self

    async def next(self) -> list:
        if self._ahead is None:
            return []
        rows = await self._ahead
        self._ahead = asyncio.ensure_future(self._cursor.fetch(CHUNK_ROWS)) if rows else None
        return rows

    async def close(self) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
            with contextlib.suppress(BaseException):
                await self._ahead


def _sqlite_order(conn: sqlite3.Connection, table: str, pk: list[str], kinds: list[str]) -> str:
    """ORDER BY terms that sort like the target: BINARY for text; a CAST where storage classes mix."""
    info = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()[0] or ""
    rowid_alias = (len(pk) == 1 and "WITHOUT ROWID" not in ddl.upper()
                   and any(c[1] == pk[0] and c[2].upper() == "INTEGER" and c[5] for c in info))
    terms = []
    for col, kind in zip(pk, kinds):
        q = quote(col)
        stored = "integer" if kind in INT_KINDS else "text" if kind == TEXT else None
        mixed = (stored is not None and not rowid_alias and
                 conn.execute(f"SELECT 1 FROM {quote(table)} WHERE typeof({q}) <> ? LIMIT 1", (stored,)).fetchone())
        if mixed:
            terms.append(f"CAST({q} AS {'INTEGER' if stored == 'integer' else 'TEXT'})")
        else:
            terms.append(f"{q} COLLATE BINARY" if kind == TEXT else q)
    return ", ".join(terms)


class _SqliteSide:
    is_sqlite = True

    def __init__(self, db: DbUrl) -> None:
        self.path = db.sqlite_path

    def value(self, kind: str) -> Callable[[Any], Any]:
        return _sqlite_value(kind)

    def key(self, kind: str) -> Callable[[Any], Any]:
        return _sqlite_key(kind)

    async def reader(self, table: TableShape, columns: list[str], pk: list[str], kinds: list[str]) -> _SqliteReader:
        select = f"SELECT {', '.join(map(quote, columns))} FROM {quote(table.name)}"

        def plan(conn: sqlite3.Connection) -> str:
            return f"{select} ORDER BY {_sqlite_order(conn, table.name, pk, kinds)}" if pk else select

        return _SqliteReader(self.path, plan)

    async def count(self, table: str) -> int | None:
        def run() -> int:
            conn = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True)
            try:
                return conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    async def close(self) -> None:
        pass


class _PgSide:
    is_sqlite = False

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def value(self, kind: str) -> Callable[[Any], Any]:
        return _pg_value(kind)

    def key(self, kind: str) -> Callable[[Any], Any]:
        return _pg_key(kind)

    async def reader(self, table: TableShape, columns: list[str], pk: list[str], kinds: list[str]) -> _PgReader:
        order = ", ".join(
            f'{quote(c)} COLLATE "C"' if table.column(c) and table.column(c).collatable else quote(c) for c in pk
        )
        sql = f"SELECT {', '.join(map(quote, columns))} FROM {quote(table.name)}"
        return await _PgReader(self.conn, f"{sql} ORDER BY {order}" if pk else sql).start()

    async def count(self, table: str) -> int | None:
        # An estimate is enough for a progress bar; a count(*) would read the table once more.
        n = await self.conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass", quote(table))
        return n if n is not None and n >= 0 else None

    async def close(self) -> None:
        await self.conn.close()


@contextlib.asynccontextmanager
async def _open_side(db: DbUrl) -> AsyncIterator[_SqliteSide | _PgSide]:
    if db.is_sqlite:
        yield _SqliteSide(db)
        return
    try:
        conn = await asyncpg.connect(**db.pg_connect_kwargs())
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        raise BadInput(describe_connect_error(db, exc)) from None
    try:
        # One snapshot for every table, and no way to write by mistake.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield _PgSide(conn)
    finally:
        await conn.close()


# --- the merge ---

_END = object()  # the side has no more rows
_EMPTY = object()  # the chunk in hand is used up: refill, then pull again


class _Stream:
    """One side's rows in key order; rows that cannot take their place are handed to `misfit`."""

    def __init__(self, reader: Any, key: Callable[[tuple], Any], npk: int, quarantine: set,
                 misfit: Callable[[tuple, str], None], quarantined: Callable[[tuple], None]) -> None:
        self.reader = reader
        self.key = key
        self.npk = npk
        self.quarantine = quarantine
        self.misfit = misfit
        self.quarantined = quarantined
        self.rows: list = []
        self.i = 0
        self.count = 0
        self.exhausted = False
        self.last: Any = _END

    def pull(self) -> Any:
        rows = self.rows
        while self.i < len(rows):
            row = rows[self.i]
            self.i += 1
            if self.quarantine and (row[0] if self.npk == 1 else tuple(row[: self.npk])) in self.quarantine:
                self.quarantined(row)
                continue
            try:
                k = self.key(row)
            except _Unorderable as exc:
                self.misfit(row, str(exc))
                continue
            if self.last is not _END:
                try:
                    in_order = k > self.last
                except TypeError:
                    in_order = False
                if not in_order:
                    why = "its primary key appears twice after conversion" if k == self.last else (
                        "its primary key sorts out of place after conversion")
                    self.misfit(row, why)
                    continue
            self.last = k
            return k, row
        return _END if self.exhausted else _EMPTY

    async def refill_pull(self) -> Any:
        item = _EMPTY
        while item is _EMPTY:
            self.rows = await self.reader.next()
            self.i = 0
            self.count += len(self.rows)
            self.exhausted = not self.rows
            item = self.pull()
        return item


class _Tally:
    """Counts and the first `max_keys` differences of one table."""

    def __init__(self, verdict: TableVerdict, columns: list[_Column], key_names: list[str], max_keys: int,
                 quarantine: set) -> None:
        self.v = verdict
        self.columns = columns
        self.key_names = key_names
        self.max_keys = max_keys
        self.quarantine = quarantine
        self.column_counts: Counter = Counter()
        self.checks = [(c.index, c.quick, c.source, c.target, c) for c in columns]

    def _add(self, diff: RowDiff) -> None:
        if len(self.v.diffs) < self.max_keys:
            self.v.diffs.append(diff)

    def pair(self, key: Any, s: tuple, t: Any) -> None:
        bad = None
        for i, quick, src, tgt, col in self.checks:
            a = s[i]
            b = t[i]
            if a is b or quick(a, b):
                continue
            ca, cb = src(a), tgt(b)
            if not _same(ca, cb):
                if bad is None:
                    bad = []
                bad.append(ColumnDiff(col.name, ca, cb))
        if bad is None:
            self.v.equal += 1
            return
        self.v.different += 1
        for d in bad:
            self.column_counts[d.column] += 1
        if len(self.v.diffs) < self.max_keys:
            cols = [self._shown(d) for d in bad]
            self.v.diffs.append(RowDiff(_shown_key(key), cols, "different"))

    def _shown(self, d: ColumnDiff) -> ColumnDiff:
        col = next(c for c in self.columns if c.name == d.column)
        return ColumnDiff(d.column, _shown(d.column, d.source), _shown(d.column, d.target), col.detail(d.source, d.target))

    def only_source(self, key: Any) -> None:
        self.v.only_source += 1
        self._add(RowDiff(_shown_key(key), [], "only_source"))

    def only_target(self, key: Any, row: tuple) -> None:
        self.v.only_target += 1
        raw = row[0] if len(self.key_names) == 1 else tuple(row[: len(self.key_names)])
        why = "the copy put it in quarantine, yet it is in the target" if raw in self.quarantine or key in self.quarantine else None
        self._add(RowDiff(_shown_key(key), [], "only_target", why))

    def source_misfit(self, row: tuple, why: str) -> None:
        self.v.different += 1
        self.column_counts[self.key_names[0]] += 1
        raw = row[0] if len(self.key_names) == 1 else tuple(row[: len(self.key_names)])
        self._add(RowDiff(_shown_key(raw), [], "different", f"cannot be matched: {why}"))

    def target_misfit(self, row: tuple, why: str) -> None:
        self.v.only_target += 1
        raw = row[0] if len(self.key_names) == 1 else tuple(row[: len(self.key_names)])
        self._add(RowDiff(_shown_key(raw), [], "only_target", f"cannot be matched: {why}"))

    def quarantined(self, _row: tuple) -> None:
        self.v.quarantined += 1


async def _merge(src: _Stream, tgt: _Stream, tally: _Tally, meter: ProgressMeter, stop: StopRequest | None,
                 table: str) -> None:
    s_item = src.pull()
    if s_item is _EMPTY:
        s_item = await src.refill_pull()
    t_item = tgt.pull()
    if t_item is _EMPTY:
        t_item = await tgt.refill_pull()
    seen = 0
    while s_item is not _END or t_item is not _END:
        try:
            if t_item is _END or (s_item is not _END and s_item[0] < t_item[0]):
                tally.only_source(s_item[0])
                step_s, step_t = True, False
            elif s_item is _END or t_item[0] < s_item[0]:
                tally.only_target(t_item[0], t_item[1])
                step_s, step_t = False, True
            else:
                tally.pair(s_item[0], s_item[1], t_item[1])
                step_s = step_t = True
        except TypeError:
            raise StepError(f"{table}: the source's primary key {s_item[0]!r} and the target's {t_item[0]!r} "
                            f"cannot be ordered together: their types differ") from None
        if step_s:
            s_item = src.pull()
            if s_item is _EMPTY:
                s_item = await src.refill_pull()
                meter.advance(src.count - seen)
                seen = src.count
                if stop is not None and stop.is_set():
                    raise Interrupted(f"verification stopped ({stop.reason}) in table {table}: nothing was "
                                      "written; run it again to verify")
        if step_t:
            t_item = tgt.pull()
            if t_item is _EMPTY:
                t_item = await tgt.refill_pull()
    meter.advance(src.count - seen)


async def _multiset(side: Any, shape: TableShape, columns: list[str], kinds: list[str]) -> tuple[int, int]:
    """(rows, an order-free digest of them) for a table with no primary key."""
    values = [side.value(k) for k in kinds]
    reader = await side.reader(shape, columns, [], kinds)
    total, digest = 0, 0
    try:
        while rows := await reader.next():
            for row in rows:
                canon = tuple(f(v) for f, v in zip(values, row))
                h = hashlib.blake2b(repr(canon).encode(), digest_size=8).digest()
                digest = (digest + int.from_bytes(h, "big")) % 2**64
            total += len(rows)
    finally:
        await reader.close()
    return total, digest


async def _verify_table(name: str, s_shape: TableShape | None, t_shape: TableShape | None, s_side: Any, t_side: Any,
                        quarantine: set, max_keys: int, emit: Emit, stop: StopRequest | None) -> TableVerdict:
    started = time.monotonic()
    v = TableVerdict(name)
    if s_shape is None or t_shape is None:
        v.status = "missing"
        if s_shape is None:
            v.target_rows = v.only_target = await t_side.count(name) or 0
            v.note = "not in the source"
        else:
            v.source_rows = await s_side.count(name) or 0
            v.quarantined = len(quarantine)
            v.only_source = max(0, v.source_rows - v.quarantined)
            v.note = "missing in the target"
        v.seconds = time.monotonic() - started
        return v
    common = [c for c in t_shape.names if c in s_shape.names]
    pk = list(t_shape.pk) if t_shape.pk and all(c in common for c in t_shape.pk) else []
    columns = pk + [c for c in common if c not in pk]
    kinds = [t_shape.column(c).kind for c in columns]
    one_sided = sorted(set(s_shape.names) ^ set(t_shape.names))
    if one_sided:
        only_s = [c for c in one_sided if c in s_shape.names]
        only_t = [c for c in one_sided if c in t_shape.names]
        v.note = "; ".join(filter(None, [only_s and "columns only in the source: " + ", ".join(only_s),
                                         only_t and "columns only in the target: " + ", ".join(only_t)]))
    if not pk:
        (v.source_rows, s_digest), (v.target_rows, t_digest) = (
            await _multiset(s_side, s_shape, columns, kinds), await _multiset(t_side, t_shape, columns, kinds))
        same = s_digest == t_digest and v.source_rows == v.target_rows
        v.equal = v.source_rows if same else 0
        v.note = "; ".join(filter(None, [v.note, "no primary key: compared as a whole, differing rows cannot be named"]))
        v.status = "ok" if same and not one_sided else "differs"
        v.seconds = time.monotonic() - started
        return v
    same_engine = s_side.is_sqlite == t_side.is_sqlite
    cols = [
        _Column(c, i, k, _quick_same_engine if same_engine else _quick_sqlite_to_pg(k), s_side.value(k), t_side.value(k))
        for i, (c, k) in enumerate(zip(columns, kinds)) if i >= len(pk)
    ]
    tally = _Tally(v, cols, pk, max_keys, quarantine)
    s_keys = [s_side.key(k) for k in kinds[: len(pk)]]
    t_keys = [t_side.key(k) for k in kinds[: len(pk)]]
    meter = ProgressMeter(emit, STEP, name, await s_side.count(name))
    s_reader = await s_side.reader(s_shape, columns, pk, kinds[: len(pk)])
    try:
        t_reader = await t_side.reader(t_shape, columns, pk, kinds[: len(pk)])
        try:
            src = _Stream(s_reader, _row_key(s_keys), len(pk), quarantine, tally.source_misfit, tally.quarantined)
            tgt = _Stream(t_reader, _row_key(t_keys), len(pk), set(), tally.target_misfit, tally.quarantined)
            await _merge(src, tgt, tally, meter, stop, name)
        finally:
            await t_reader.close()
    finally:
        await s_reader.close()
    meter.finish()
    v.source_rows, v.target_rows = src.count, tgt.count
    v.columns = dict(tally.column_counts.most_common())
    v.status = "differs" if v.different or v.only_source or v.only_target or one_sided else "ok"
    v.seconds = time.monotonic() - started
    return v


def _row_key(fns: list[Callable[[Any], Any]]) -> Callable[[tuple], Any]:
    if len(fns) == 1:
        f = fns[0]
        return lambda row: f(row[0])
    return lambda row: tuple(f(row[i]) for i, f in enumerate(fns))


def _tables(asked: list[str] | None, source: dict[str, TableShape], target: dict[str, TableShape]) -> list[str]:
    if asked:
        unknown = [t for t in asked if t not in source and t not in target]
        if unknown:
            raise BadInput(f"table {', '.join(unknown)} is in neither database: the source has {', '.join(source)}")
        return list(asked)
    return [t for t in source if t not in INTERNAL_TABLES]


async def verify(source: DbUrl, target: DbUrl, emit: Emit = ignore, quarantined: dict[str, set] | None = None,
                 tables: list[str] | None = None, max_keys: int = 100, stop: StopRequest | None = None) -> VerifyReport:
    """Compare `target` with `source` row by row, and `target`'s schema with its revision.

    Reads both, writes neither. `quarantined` holds the keys the copy left out on purpose
    (load_quarantine); they count as quarantined, not as missing.
    """
    started = time.monotonic()
    emit(StepStarted(STEP, f"verify {target.masked()} against {source.masked()}"))
    quarantined = quarantined or {}
    async with open_for_reading(source) as conn:
        s_shapes = await reflect(conn)
    async with open_for_reading(target) as conn:
        t_shapes = await reflect(conn)
        findings = await check_schema(conn, s_shapes)
    for f in findings:
        if f.status == FAIL:
            emit(Warn(STEP, f"schema: {f.detail}"))
    names = _tables(tables, s_shapes, t_shapes)
    verdicts = []
    rows_started = time.monotonic()
    async with _open_side(source) as s_side, _open_side(target) as t_side:
        for name in names:
            if stop is not None and stop.is_set():
                raise Interrupted(f"verification stopped ({stop.reason}): nothing was written; run it again to verify")
            v = await _verify_table(name, s_shapes.get(name), t_shapes.get(name), s_side, t_side,
                                    quarantined.get(name, set()), max_keys, emit, stop)
            if v.status != "ok":
                emit(Warn(STEP, f"{name}: {_describe(v)}"))
            verdicts.append(v)
    rows_seconds = time.monotonic() - rows_started
    rows = sum(v.source_rows for v in verdicts)
    report = VerifyReport(source.masked(), target.masked(), verdicts, findings, time.monotonic() - started,
                          rows / rows_seconds if rows_seconds > 0 else None)
    data = {"ok": report.ok, "rows": rows, "rows_per_second": report.rows_per_second}
    emit(StepFinished(STEP, report.summary(), data) if report.ok else StepFailed(STEP, report.summary()))
    return report


def _describe(v: TableVerdict) -> str:
    if v.status == "missing":
        return v.note or "missing"
    parts = [f"{n:,} {what}" for n, what in ((v.different, "different"), (v.only_source, "only in the source"),
                                             (v.only_target, "only in the target")) if n]
    return ", ".join(parts + ([v.note] if v.note else []))

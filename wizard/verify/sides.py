"""Where verification's rows come from: each side read in key order, in chunks.

SQLite is read in a thread of its own with stdlib sqlite3 on a read-only URI
(mode=ro: the source is never written), chunks handed to the event loop through
a bounded queue. PostgreSQL is read through an asyncpg server-side cursor inside
one REPEATABLE READ, READ ONLY transaction (one snapshot for every table), the
next chunk already on its way while the current one is compared (wizard.verify.ahead). MySQL and
MariaDB: wizard.verify.myside.

Key order: SQLite sorts text by memcmp (COLLATE BINARY), PostgreSQL by the
column's collation, so PostgreSQL is asked for `COLLATE "C"` (byte order, which
is code-point order, which is Python's). A SQLite key column that holds more
than one storage class (text and integers in one column) is sorted by a CAST to
the target kind. Each side also says how it turns a value into the compared form
and a key into a sortable one: a SQLite value by the verifier's own reading of it
(wizard.verify.values, never the copy's rules), so a wrong rule shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from datetime import date
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import asyncpg

from wizard.db import all_of, quote, sqlite_uri
from wizard.pg import SqlCursor, connect_pg
from wizard.errors import StepError
from wizard.move.normalize import (BIGINT, BOOLEAN, DATE, INTEGER, JSON, NUMERIC, SMALLINT, TEXT, TIMESTAMP, BadValue, canonical,
                              convert)
from wizard.move.scan import tolerant_text
from wizard.urls import DbUrl
from wizard.verify.ahead import ReadAhead
from wizard.verify.myside import MySide, open_mysql
from wizard.verify.values import NoMeaning, Unconvertible, expected, json_as_kept
from wizard.verify.schema import TableShape

CHUNK_ROWS = 5000
INT_KINDS = (BIGINT, INTEGER, SMALLINT)


def sqlite_value(kind: str) -> Callable[[Any], Any]:
    def value(v: Any) -> Any:
        try:
            return canonical(kind, expected(kind, v))
        except NoMeaning as exc:
            return Unconvertible(_rule_broken(kind, v, exc), v)

    return value


def sqlite_json_kept(v: Any) -> Any:
    """A SQLite JSON value in the form compared with a column that keeps JSON as written (PostgreSQL's json)."""
    if v is None:
        return None
    try:
        return json_as_kept(expected(JSON, v))
    except (NoMeaning, ValueError) as exc:
        return Unconvertible(_rule_broken(JSON, v, NoMeaning(str(exc))), v)


def pg_json_kept(v: Any) -> Any:
    """PostgreSQL's json value (its text as written) in that form."""
    if v is None:
        return None
    try:
        return json_as_kept(v)
    except (ValueError, TypeError):
        return Unconvertible(f"cannot be read as {JSON}", v)


def _rule_broken(kind: str, v: Any, exc: NoMeaning) -> str:
    """How the difference is named: the copy's rule the value breaks, as its quarantine names it. Only the name
    comes from the copy's rules; that the value has no meaning was decided without them."""
    try:
        convert(kind, v)
    except BadValue as broken:
        return broken.rule
    return f"{exc}, yet the copy's rules take it"


def pg_value(kind: str, rendered: bool = False) -> Callable[[Any], Any]:
    """PostgreSQL's value -> the compared form; `rendered`: read as PgSide renders for a SQLite source."""
    def value(v: Any) -> Any:
        if v is not None and rendered:
            if kind == BOOLEAN:
                v = bool(v)
            elif kind == DATE and isinstance(v, str) and len(v) == 10:
                v = date.fromisoformat(v)
            # A rendered timestamp is already in the compared form.
        if kind == TEXT and v is not None and not isinstance(v, (str, bytes)):
            v = str(v)  # uuid, inet and the like arrive as objects
        try:
            return canonical(kind, v)
        except (ValueError, TypeError, ArithmeticError):
            return Unconvertible(f"cannot be read as {kind}", v)

    return value


class Unorderable(Exception):
    pass


def sqlite_key(kind: str) -> Callable[[Any], Any]:
    fast = int if kind in INT_KINDS else str if kind == TEXT else None

    def key(v: Any) -> Any:
        if type(v) is fast and (fast is int or "\x00" not in v):
            return v
        if v is None:
            raise Unorderable("its primary key is NULL")
        try:
            return expected(kind, v)
        except NoMeaning as exc:
            raise Unorderable(f"its primary key {v!r}: {_rule_broken(kind, v, exc)}") from None

    return key


def pg_key(kind: str) -> Callable[[Any], Any]:
    if kind == TEXT:
        return lambda v: v if type(v) is str else str(v)
    return lambda v: v


def key_type(kind: str) -> type | None:
    """The one Python type every key of this kind has when it needs no conversion (the fast path)."""
    return int if kind in INT_KINDS else str if kind == TEXT else None


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
        handed, tolerant = 0, False
        while True:
            try:
                conn = sqlite3.connect(sqlite_uri(self._path), uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                self._hand(exc)
                return
            try:
                if tolerant:
                    conn.text_factory = tolerant_text
                cur = conn.execute(self._plan(conn))
                for _ in range(handed // CHUNK_ROWS):  # a re-read skips what was already handed over
                    cur.fetchmany(CHUNK_ROWS)
                while not self._cancel.is_set():
                    rows = cur.fetchmany(CHUNK_ROWS)
                    if not self._hand(rows) or not rows:
                        return
                    handed += len(rows)
                return
            except sqlite3.OperationalError as exc:
                if tolerant or "decode" not in str(exc):
                    self._hand(exc)
                    return
                # Text that is not UTF-8: read again with the copy's tolerant decoding, which hands
                # such text over as bytes for the rules to name. Rare, so the fast decoder goes first.
                tolerant = True
            except sqlite3.Error as exc:
                self._hand(exc)
                return
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


CODE_POINTS = "wizard_code_points"


def _by_code_point(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _text_order(conn: sqlite3.Connection) -> str:
    """The collation that sorts text by code point, as PostgreSQL's "C" does UTF-8: BINARY (memcmp) in a UTF-8
    file; in a UTF-16 one memcmp compares UTF-16 units (UTF-16le: 'Ā' before 'a'), so Python's order instead."""
    if conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8":
        return "BINARY"
    conn.create_collation(CODE_POINTS, _by_code_point)
    return CODE_POINTS


def _sqlite_order(conn: sqlite3.Connection, table: str, pk: list[str], kinds: list[str]) -> str:
    """ORDER BY terms that sort like the target: text by code point; a CAST where storage classes mix."""
    collate = f"COLLATE {_text_order(conn)}"
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
            terms.append(f"CAST({q} AS INTEGER)" if stored == "integer" else f"CAST({q} AS TEXT) {collate}")
        elif kind in (TIMESTAMP, DATE):
            # By the instant, not the spelling ('...T09:00' sorts after '... 10:00' as text): SQLite's own reading,
            # in UTC to the millisecond, then the text within one millisecond. SQLite reads the last half
            # millisecond of 9999 as NULL (it rounds into the year 10000): last, where PostgreSQL sorts it.
            instant = f"strftime('%Y-%m-%d %H:%M:%f', {q})"
            terms.append(f"{instant} IS NULL, {instant}, {q} {collate}")
        else:
            terms.append(f"{q} {collate}" if kind == TEXT else q)
    return ", ".join(terms)


class SqliteSide:
    is_sqlite = True
    json_kept = staticmethod(sqlite_json_kept)

    def __init__(self, db: DbUrl) -> None:
        self.path = db.sqlite_path

    def value(self, kind: str) -> Callable[[Any], Any]:
        return sqlite_value(kind)

    def key(self, kind: str) -> Callable[[Any], Any]:
        return sqlite_key(kind)

    @staticmethod
    def lane_flag(columns: list[str], kinds: list[str]) -> str | None:
        """An SQL expression, true when Python's == on this row's values against PostgreSQL's or
        MySQL's renderings (PgSide, MySide) is exact: it is lax only where 1.0 == 1 or 2 == 2 (a
        boolean column: MySQL's TINYINT holds any small number) and where a float may equal a
        Decimal (a numeric column)."""
        terms = [f"({quote(c)} IS NULL OR (typeof({quote(c)}) = 'integer' AND {quote(c)} IN (0, 1)))"
                 for c, k in zip(columns, kinds) if k == BOOLEAN]
        terms += [f"{quote(c)} IS NULL" for c, k in zip(columns, kinds) if k == NUMERIC]
        return all_of(terms) or None

    async def reader(self, table: TableShape, columns: list[str], kinds: list[str], npk: int,
                     extra: str | None = None) -> _SqliteReader:
        exprs = [*map(quote, columns), *([f"({extra})"] if extra else [])]
        select = f"SELECT {', '.join(exprs)} FROM {quote(table.name)}"

        def plan(conn: sqlite3.Connection) -> str:
            return f"{select} ORDER BY {_sqlite_order(conn, table.name, columns[:npk], kinds[:npk])}" if npk else select

        return _SqliteReader(self.path, plan)

    async def count(self, table: str) -> int | None:
        def run() -> int:
            conn = sqlite3.connect(sqlite_uri(self.path), uri=True)
            try:
                return conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
            finally:
                conn.close()

        return await asyncio.to_thread(run)


# How PostgreSQL renders a value for a SQLite source: in the spelling a clean SQLite value has,
# so most rows compare as plain tuples. Outside what the copy writes (infinity, BC, year > 9999)
# the timestamp's own text, which no SQLite value equals.
_TS_RENDER = ("CASE WHEN {c} BETWEEN '0001-01-01' AND '9999-12-31 23:59:59.999999' "
              "THEN to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US') ELSE {c}::text END")
_RENDER = {
    TIMESTAMP: _TS_RENDER,
    DATE: "CASE WHEN {c} BETWEEN '0001-01-01' AND '9999-12-31' THEN to_char({c}, 'YYYY-MM-DD') ELSE {c}::text END",
    BOOLEAN: "{c}::int",
}


class PgSide:
    is_sqlite = False
    keeps_json_text = True  # in a json column (not jsonb): the text as written, key order and all
    json_kept = staticmethod(pg_json_kept)

    def __init__(self, conn: asyncpg.Connection, render: bool) -> None:
        self.conn = conn
        self.render = render  # values in SQLite's spelling: the other side is a SQLite file

    def value(self, kind: str) -> Callable[[Any], Any]:
        return pg_value(kind, self.render)

    def key(self, kind: str) -> Callable[[Any], Any]:
        return pg_key(kind)

    async def reader(self, table: TableShape, columns: list[str], kinds: list[str], npk: int) -> ReadAhead:
        names = [quote(table.column(c).sql_name) for c in columns]
        exprs = [
            _RENDER[k].format(c=q) if self.render and i >= npk and k in _RENDER else q
            for i, (q, k) in enumerate(zip(names, kinds))
        ]
        order = ", ".join(f'{q} COLLATE "C"' if table.column(c).collatable else q for c, q in zip(columns, names[:npk]))
        sql = f"SELECT {', '.join(exprs)} FROM {quote(table.sql_name)}"
        # A server-side cursor in the side's snapshot.
        cursor = await SqlCursor.open(self.conn, f"{sql} ORDER BY {order}" if npk else sql)
        return ReadAhead(lambda: cursor.fetch(CHUNK_ROWS))

    async def count(self, table: str) -> int | None:
        # An estimate is enough for a progress bar; a count(*) would read the table once more.
        n = await self.conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass", quote(table))
        return n if n is not None and n >= 0 else None


@contextlib.asynccontextmanager
async def open_side(db: DbUrl, render: bool = False, nul_free: bool = False
                    ) -> AsyncIterator[SqliteSide | PgSide | MySide]:
    """One side, open for reading; `render`: a PostgreSQL or MySQL side spells values as SQLite does; `nul_free`:
    a MySQL side's text compared without NUL bytes, as PostgreSQL, the other side, holds it."""
    if db.is_sqlite:
        yield SqliteSide(db)
        return
    if db.is_mysql:
        async with open_mysql(db, render, CHUNK_ROWS, nul_free) as side:
            yield side
        return
    conn = await connect_pg(db, "wizard verify")
    try:
        # One snapshot for every table, and no way to write by mistake.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # timestamptz rendered as the copy writes it: UTC; LOCAL, so that a pooler's next client never gets it.
            await conn.execute("SET LOCAL TIME ZONE 'UTC'")
            yield PgSide(conn, render)
    finally:
        await conn.close()

"""A MySQL or MariaDB side of a verification: its rows in key order, and its values in the compared form.

Read through PyMySQL's unbuffered cursor (rows stream from the server) in a thread of the side's
own, the next chunk on its way while one is compared, inside one READ ONLY transaction WITH
CONSISTENT SNAPSHOT: one snapshot for every table, and no way to write by mistake. PyMySQL parses
rows in Python, as aiomysql (built on it) does; read in a thread it spends less per row than
through asyncio's streams (bench/README.md, issue 14). Text keys are sorted as binary
strings (byte order, which for UTF-8 is code-point order, which is Python's): a collation
would fold case and pad spaces.

A value is read by what the driver made of it, checked for the column's kind: a TINYINT(1)
boolean is 0 or 1, a DATETIME a real instant (MySQL keeps zero dates such as 0000-00-00 and
days such as 2024-02-00, which mean nothing; the driver hands them over as text), JSON parsed.
Anything else is Unconvertible, a difference, never passed on silently.

For a SQLite source, DATETIME and DATE are rendered by the server in SQLite's spelling (as
PostgreSQL's side does) so that a clean row compares as a plain tuple; a date with no meaning is
rendered with a mark no instant's spelling has.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, AsyncIterator, Callable

import pymysql
import pymysql.cursors

from wizard.db import connect_mysql_sync, describe_connect_error, quote
from wizard.errors import BadInput
from wizard.move.normalize import BOOLEAN, DATE, TEXT, TIMESTAMP, canonical
from wizard.urls import DbUrl
from wizard.verify.ahead import ReadAhead
from wizard.verify.schema import TableShape
from wizard.verify.values import Unconvertible

NO_SUCH_DATE = " (no such date)"  # after a rendered zero or impossible date: no spelling of an instant ends so
# `c + INTERVAL 0 DAY` is NULL for a date that does not exist (0000-00-00, 2024-02-00, 2024-02-30).
_RENDER = "IF({c} + INTERVAL 0 DAY IS NULL, CONCAT(CAST({c} AS CHAR), '" + NO_SUCH_DATE + "'), CAST({c} AS CHAR))"
_READS = {TIMESTAMP: datetime.fromisoformat, DATE: date.fromisoformat}


def mysql_value(kind: str, nul_free: bool = False) -> Callable[[Any], Any]:
    """MySQL's value (as the driver reads it, or as rendered for a SQLite source) -> the compared form;
    `nul_free`: text as PostgreSQL can hold it, its NUL bytes removed (the move off MySQL removes and counts them)."""
    read = _READS.get(kind)
    strip = nul_free and kind == TEXT

    def value(v: Any) -> Any:
        if v is None:
            return None
        if read is not None and isinstance(v, str):
            try:
                v = read(v)
            except ValueError:
                return Unconvertible(f"no {kind}: a zero or impossible date", v)
        elif kind == BOOLEAN:
            if type(v) is not int or v not in (0, 1):
                return Unconvertible("a boolean is 0 or 1", v)
            v = v == 1
        elif kind == TEXT and not isinstance(v, (str, bytes)):
            v = str(v)
        if strip and isinstance(v, str) and "\0" in v:
            v = "".join(v.split("\0"))
        try:
            return canonical(kind, v)
        except (ValueError, TypeError, ArithmeticError):
            return Unconvertible(f"cannot be read as {kind}", v)

    return value


class MySide:
    is_sqlite = False

    def __init__(self, conn: pymysql.connections.Connection, render: bool, chunk: int,
                 thread: ThreadPoolExecutor, nul_free: bool = False) -> None:
        self.conn = conn
        self.render = render  # DATETIME and DATE in SQLite's spelling: the other side is a SQLite file
        self.nul_free = nul_free  # text without its NUL bytes: the other side is PostgreSQL
        self.chunk = chunk
        self.thread = thread  # the one thread that uses the connection

    def _run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self.thread, fn, *args)

    def value(self, kind: str) -> Callable[[Any], Any]:
        return mysql_value(kind, self.nul_free)

    def key(self, kind: str) -> Callable[[Any], Any]:
        return lambda v: v  # text arrives as str, whole numbers as int: already Python's order

    async def reader(self, table: TableShape, columns: list[str], kinds: list[str], npk: int) -> ReadAhead:
        names = [quote(table.column(c).sql_name) for c in columns]
        exprs = [_RENDER.format(c=q) if self.render and i >= npk and k in _READS else q
                 for i, (q, k) in enumerate(zip(names, kinds))]
        order = ", ".join(f"CAST({q} AS BINARY)" if table.column(c).collatable else q
                          for c, q in zip(columns, names[:npk]))
        sql = f"SELECT {', '.join(exprs)} FROM {quote(table.sql_name)}"
        cursor = self.conn.cursor(pymysql.cursors.SSCursor)  # unbuffered: rows stream from the server
        await self._run(cursor.execute, f"{sql} ORDER BY {order}" if npk else sql)
        # Closing the cursor reads what is left of its result: the connection then serves the next table.
        return ReadAhead(lambda: self._run(cursor.fetchmany, self.chunk), lambda: self._run(cursor.close))

    async def count(self, table: str) -> int | None:
        # InnoDB's estimate is enough for a progress bar; a count(*) would read the table once more.
        def estimate() -> tuple | None:
            with self.conn.cursor() as cur:
                cur.execute("SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() "
                            "AND table_name = %s", (table,))
                return cur.fetchone()

        row = await self._run(estimate)
        return int(row[0]) if row and row[0] is not None else None


def _open(db: DbUrl) -> pymysql.connections.Connection:
    conn = connect_mysql_sync(db)  # its TIMESTAMP columns rendered in UTC, as the copy writes them
    try:
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.asynccontextmanager
async def open_mysql(db: DbUrl, render: bool, chunk: int, nul_free: bool = False) -> AsyncIterator[MySide]:
    """A MySQL side in one read-only snapshot (`render`: the other side is SQLite; `nul_free`: PostgreSQL)."""
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(1, thread_name_prefix="verify-mysql")
    try:
        try:
            conn = await loop.run_in_executor(thread, _open, db)
        except (pymysql.MySQLError, OSError) as exc:
            raise BadInput(describe_connect_error(db, exc)) from None
        try:
            yield MySide(conn, render, chunk, thread, nul_free)
        finally:
            await loop.run_in_executor(thread, conn.close)  # the snapshot's transaction ends with it
    finally:
        thread.shutdown(wait=False)

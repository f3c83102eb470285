"""Opening databases: async engines, and the checks that turn driver errors into one-line messages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import ssl
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
import pymysql
from sqlalchemy import URL, func, inspect, select, table as sql_table, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from wizard.errors import BadInput
from wizard.mysql import errors as mysql_errors
from wizard.pgsession import SCHEMA_QUERY, asyncpg_args, check_schema, schema_of
from wizard.urls import TLS_FILES, DbUrl

SQLITE_MAGIC = b"SQLite format 3\x00"
CONNECT_TIMEOUT = 10  # seconds for a PostgreSQL or MySQL server to answer a connection
# aiomysql's connection: utf8mb4 (MySQL's "utf8" is 3 bytes a character), ANSI_QUOTES so the wizard's
# "double-quoted" names are names on MySQL too (SQLAlchemy sees the mode and quotes the same way), and
# NO_AUTO_VALUE_ON_ZERO, as mysqldump's: an id 0 the wizard writes (one it read) stays 0, not the next id.
MYSQL_SESSION = {"charset": "utf8mb4", "connect_timeout": CONNECT_TIMEOUT,
                 "init_command": "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'ANSI_QUOTES', "
                                 "'NO_AUTO_VALUE_ON_ZERO')"}


def mysql_connect_args(db: DbUrl) -> dict:
    """The keyword arguments of every wizard MySQL connection: its session, and the URL's password as the server
    knows it. Both drivers send a password's latin1 bytes, where the server hashed the UTF-8 bytes `mysql`
    sent when the user was made: 'ä' was refused and an emoji ended in a UnicodeEncodeError."""
    password = db.url.password
    return {**MYSQL_SESSION, **({"password": password.encode().decode("latin1")} if password else {})}


def connect_mysql_sync(db: DbUrl) -> pymysql.connections.Connection:
    """A pymysql connection with the wizard's session (utf8mb4, ANSI_QUOTES), its TIMESTAMPs in UTC. The URL's
    query keys (ssl_ca, unix_socket...) are read by SQLAlchemy's own pymysql dialect, as the async engine's are:
    the same server, TLS and socket as every other connection."""
    url = db.url.set(drivername="mysql+pymysql")
    args, kwargs = url.get_dialect()().create_connect_args(url)
    conn = pymysql.connect(*args, **{**kwargs, **mysql_connect_args(db)})
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")  # a TIMESTAMP column read as UTC, as PostgreSQL stores it
    return conn


def check_sqlite_file(db: DbUrl) -> None:
    """A SQLite URL must name an existing SQLite file; never create one by connecting."""
    path = db.sqlite_path
    try:
        if not path.exists():
            raise BadInput(f"{path} does not exist: check the path in the URL (sqlite:////absolute/path.db)")
        if not path.is_file():
            raise BadInput(f"{path} is not a file: the URL must name the engine's SQLite database file")
        with open(path, "rb") as f:
            head = f.read(20)
    except PermissionError:  # the file's mode, or a folder on its path this user may not enter
        raise BadInput(f"{path} cannot be read by this user (permission denied): run the wizard as the engine's "
                       f"user, or let this one read the file and enter its folders") from None
    if head[:16] != SQLITE_MAGIC and path.stat().st_size > 0:
        raise BadInput(f"{path} is not a SQLite database: point the URL at the engine's .db file")
    wal = head[18:19] == b"\x02"  # the header's read version: 2 is WAL mode
    error = _read_only_probe(path)
    if error == "SQLITE_READONLY_ROLLBACK":
        raise BadInput(f"{path} has a hot journal beside it ({path.name}-journal): a process writing it stopped in "
                       f"the middle of a transaction, and SQLite undoes that the next time the file is opened for "
                       f"writing, which the wizard never does to a source: keep the -journal file, open the database "
                       f"once (sqlite3 {path} 'PRAGMA quick_check' as its owner), then run again")
    if error == "SQLITE_CANTOPEN" and wal:
        raise BadInput(f"{path} is in WAL mode, and reading it needs {path.name}-shm beside it, which SQLite cannot "
                       f"make ({path.parent} is not writable here): copy the file and its -wal, if there is one, to a "
                       f"writable folder and name that copy, or make the folder writable, then run again")


def check_sqlite_writable(db: DbUrl) -> None:
    """BadInput unless this user may write the SQLite file, and its folder, where SQLite makes its -journal."""
    path = db.sqlite_path
    for place, what in ((path, "the file"), (path.absolute().parent, "its folder, where SQLite writes its journal,")):
        if not os.access(place, os.W_OK | (os.X_OK if place.is_dir() else 0)):
            raise BadInput(f"{path} cannot be written by this user ({what} is read-only here): run the wizard as the "
                           f"engine's user, or make it writable")


def _read_only_probe(path: Path) -> str | None:
    """SQLite's error name for a first read of `path` on a read-only connection, the way every step opens a
    source; None when it reads. A busy file (a live writer) is left to the checks that follow."""
    conn = sqlite3.connect(sqlite_uri(path), uri=True, timeout=0)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return getattr(exc, "sqlite_errorname", None)
    finally:
        conn.close()
    return None


def sqlite_uri(path: Path | str, mode: str = "ro", immutable: bool = False) -> str:
    """The one way the wizard names a SQLite file to sqlite3 or aiosqlite (connect with uri=True).

    mode=ro cannot write the file at all; mode=rw opens it for writing and fails when it is
    missing, never making a new empty database. Path.as_uri escapes what a hand-built
    `file:` URI would misread: '?' and '#' (the start of its query or fragment), '%' (an escape).
    immutable: nothing else has the file open, so SQLite takes no locks and makes no -wal/-shm.
    """
    uri = f"{Path(path).absolute().as_uri()}?mode={mode}"
    return uri + "&immutable=1" if immutable else uri


def pg_connect_args(db: DbUrl, application_name: str | None = None,
                    timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
    """The keywords of every asyncpg.connect the wizard makes (its engines', its own, the verification's):
    the URL's server, user and libpq TLS parameters (DbUrl.pg_connect_kwargs), and the session's options
    (pgsession: no named prepared statements, the URL's libpq options). asyncpg's default timeout is 60 s."""
    return {**db.pg_connect_kwargs(), "timeout": timeout, **asyncpg_args(db, application_name)}


_ASYNCPG_URL = URL.create("postgresql+asyncpg")
_ASYNCPG_DBAPI = _ASYNCPG_URL.get_dialect().import_dbapi()  # SQLAlchemy's adapter around asyncpg, made once


def engine_for(db: DbUrl, readonly: bool = False) -> AsyncEngine:
    if db.is_sqlite:
        check_sqlite_file(db)
        # The URI is the database name as it is: SQLAlchemy adds no query of its own to it.
        uri = sqlite_uri(db.sqlite_path, "ro" if readonly else "rw")
        return create_async_engine(URL.create("sqlite+aiosqlite", database=uri, query={"uri": "true"}),
                                   poolclass=NullPool)
    if db.is_mysql:
        return create_async_engine(db.async_url(), poolclass=NullPool, connect_args=mysql_connect_args(db))
    # SQLAlchemy would hand every query key of the URL to asyncpg.connect as a keyword, sslmode too (a
    # TypeError): the engine connects the way every other connection does instead. Its dialect keeps a
    # prepared-statement cache of its own, off as asyncpg's is (pgsession); async_creator cannot say so,
    # so this is SQLAlchemy's own async_creator with that one argument added.
    return create_async_engine(_ASYNCPG_URL, poolclass=NullPool, creator=lambda: _ASYNCPG_DBAPI.connect(
        async_creator_fn=lambda: asyncpg.connect(**pg_connect_args(db)), prepared_statement_cache_size=0))


def describe_connect_error(db: DbUrl, exc: BaseException) -> str:
    """One line that says what went wrong reaching `db` and what to do."""
    orig = getattr(exc, "orig", None) or exc
    inner = getattr(orig, "__cause__", None) or orig
    name = type(inner).__name__
    msg = str(inner).strip().splitlines()[0] if str(inner).strip() else name
    where = db.masked()
    said = mysql_errors.describe(where, db.database, db.url.username, orig) if db.is_mysql else None
    if said:
        return said
    # First: TimeoutError is an OSError, and asyncio's is raised from the CancelledError of the attempt.
    if any(isinstance(e, TimeoutError) for e in (exc, orig, inner)):
        return f"{where}: the server did not answer in {CONNECT_TIMEOUT} s: check host, port and firewall"
    tls = _describe_tls_error(db, inner, msg)  # before OSError: ssl.SSLError is one
    if tls:
        return f"{where}: {tls}"
    if "InvalidPassword" in name or "password authentication failed" in msg:
        return f"{where}: the password was refused: check the user and password in the URL"
    if "InvalidCatalogName" in name or ("database" in msg and "does not exist" in msg):
        return f"{where}: database '{db.database}' does not exist: create it (createdb {db.database}) or fix the URL"
    if "InvalidAuthorization" in name or ("role" in msg and "does not exist" in msg):
        return f"{where}: {msg}: check the user name in the URL"
    if "unsupported startup parameter" in msg:  # PgBouncer: the URL's options (a schema) cannot pass it
        return (f"{where}: the pooler there does not pass on the URL's {msg.rsplit(' ', 1)[-1]}: connect to the "
                f"server itself, or set them for the role (ALTER ROLE ... SET search_path = ...) and leave "
                f"them out of the URL")
    if isinstance(inner, (ConnectionRefusedError, OSError)) or "Connect call failed" in msg or "refused" in msg:
        server = "MySQL or MariaDB" if db.is_mysql else "PostgreSQL"
        return f"{where}: no server answers there: check host and port, and that {server} is running"
    if isinstance(inner, sqlite3.DatabaseError) or "file is not a database" in msg:
        return f"{where}: cannot open the SQLite file ({msg}): check it is the engine's database"
    return f"{where}: cannot connect ({msg})"


def _describe_tls_error(db: DbUrl, inner: BaseException, msg: str) -> str | None:
    """What a TLS failure means, in libpq's words where it has them, and what to change; None if it is not one."""
    mode = db.sslmode()
    if "no encryption" in msg and "pg_hba.conf" in msg:
        return (f"the server accepts TLS connections only (libpq: no pg_hba.conf entry ... no encryption), "
                f"and sslmode={mode} did not ask for one: add ?sslmode=require to the URL, or verify-full with "
                f"sslrootcert=<the CA file>")
    if "rejected SSL upgrade" in msg:
        return (f"the server does not support SSL, and sslmode={mode} requires it: connect with sslmode=prefer "
                f"or disable, or turn ssl on in the server")
    if isinstance(inner, ssl.SSLCertVerificationError):
        reason = inner.verify_message or msg
        rootcert = db.tls().get("sslrootcert") or os.environ.get("PGSSLROOTCERT") or "~/.postgresql/root.crt"
        if "mismatch" in reason.lower() or "not valid for" in reason:
            return (f"the server's certificate is not for host '{db.url.host}' (sslmode={mode} checks the name): "
                    f"connect by the name it was issued for, or use sslmode=verify-ca")
        return (f"the server's certificate does not verify against the CA in {rootcert} ({reason}): "
                f"give the CA that signed it in sslrootcert=")
    if "root certificate file" in msg and "does not exist" in msg:
        return f"{msg} (sslmode={mode} verifies the server): give the CA file in sslrootcert=, or PGSSLROOTCERT"
    # The URL's files, and the PGSSL* variables' for what it leaves out (asyncpg reads them as libpq does).
    named = [(f"{k}={v}", v) for k, v in db.tls().items() if k in TLS_FILES] + [
        (f"{var}={os.environ[var]}", os.environ[var]) for k, var in TLS_FILES.items()
        if k not in db.tls() and os.environ.get(var)]
    missing = [said for said, path in named if not Path(path).expanduser().is_file()]
    if isinstance(inner, (FileNotFoundError, IsADirectoryError)) and missing:
        return f"no such file: {', '.join(missing)}: give the path of the file, or leave the parameter out"
    if isinstance(inner, PermissionError) and inner.filename:  # ~/.postgresql/postgresql.key of another HOME
        return (f"{inner.filename}, a TLS file the client reads, cannot be read by this user: make it readable, or "
                f"run with this user's own HOME")
    if isinstance(inner, ssl.SSLError):
        return f"TLS failed ({msg}): check sslcert=, sslkey= and sslpassword="
    return None


CONNECT_ERRORS = (OSError, DBAPIError, OperationalError, TimeoutError, sqlite3.Error)


@contextlib.asynccontextmanager
async def connect(db: DbUrl, readonly: bool = False) -> AsyncIterator[AsyncConnection]:
    """An open connection, or BadInput with one line an operator can act on (`readonly`: SQLite's mode=ro)."""
    engine = engine_for(db, readonly)
    try:
        try:
            # aiomysql's connect_timeout bounds the TCP connect only, not the wait for the server's greeting.
            conn = await (asyncio.wait_for(engine.connect(), CONNECT_TIMEOUT) if db.is_mysql else engine.connect())
        except CONNECT_ERRORS as exc:
            raise BadInput(describe_connect_error(db, exc)) from None
        except Exception as exc:  # asyncpg raises its own hierarchy for auth and catalog errors
            if type(exc).__module__.startswith("asyncpg"):
                raise BadInput(describe_connect_error(db, exc)) from None
            raise
        try:
            if not db.is_sqlite and schema_of(db) is not None:
                check_schema(db, *(await conn.execute(text(SCHEMA_QUERY))).one())
                await conn.rollback()  # ends the autobegun transaction: the caller begins its own
            yield conn
        finally:
            await conn.close()
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def write_transaction(conn: AsyncConnection) -> AsyncIterator[None]:
    """One transaction around everything in the block, DDL included, on both engines.

    Python's sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, so DDL
    (Alembic's CREATE/ALTER) would autocommit; an explicit BEGIN IMMEDIATE keeps it
    inside, and takes the write lock up front so no other writer interleaves.
    """
    async with conn.begin():
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


async def table_names(conn: AsyncConnection) -> list[str]:
    return await conn.run_sync(lambda c: inspect(c).get_table_names())


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def string_literal(text: str) -> str:
    """`text` as an SQL string literal, as SQLite and PostgreSQL read it."""
    return "'" + text.replace("'", "''") + "'"


def all_of(terms: list[str]) -> str:
    """`terms` joined by AND as a balanced tree: SQLite refuses an expression deeper than 1000
    ("Expression tree is too large"), which a flat chain over a thousand columns is."""
    if len(terms) <= 64:
        return " AND ".join(terms)
    half = len(terms) // 2
    return f"({all_of(terms[:half])}) AND ({all_of(terms[half:])})"


async def row_counts(conn: AsyncConnection, tables: list[str], schema: str | None = None) -> dict[str, int]:
    # Built by SQLAlchemy, not as text(): text() would take a ':x' inside a quoted name for a parameter.
    out = {}
    for t in tables:
        out[t] = (await conn.execute(select(func.count()).select_from(sql_table(t, schema=schema)))).scalar_one()
    return out


def file_size(db: DbUrl) -> int | None:
    return os.path.getsize(db.sqlite_path) if db.is_sqlite else None

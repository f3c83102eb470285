"""Raw asyncpg connections to a PostgreSQL target, and who else is connected to it."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg

from wizard.db import CONNECT_TIMEOUT, describe_connect_error
from wizard.errors import BadInput
from wizard.pgsession import SCHEMA_QUERY, asyncpg_args, check_schema, schema_of
from wizard.urls import DbUrl

APP_NAME = "engine-migration-wizard"


async def connect_pg(db: DbUrl, application_name: str = APP_NAME,
                     timeout: float = CONNECT_TIMEOUT) -> asyncpg.Connection:
    """An asyncpg connection, or BadInput with one line an operator can act on."""
    try:
        conn = await asyncpg.connect(**db.pg_connect_kwargs(), timeout=timeout,
                                     **asyncpg_args(db, application_name))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError, asyncpg.InterfaceError) as exc:
        raise BadInput(describe_connect_error(db, exc)) from None
    if schema_of(db) is not None:
        try:
            check_schema(db, *await conn.fetchrow(SCHEMA_QUERY))
        except BadInput:
            await conn.close()
            raise
    return conn


async def other_sessions(db: DbUrl, busy_only: bool = False) -> list[str]:
    """The other client sessions connected to `db`'s database: "pid N (application, from address)".

    `busy_only`: those in a statement or a transaction now. Through a transaction pooler the idle
    ones are its pooled server connections, no client's: a client between transactions has none.
    """
    conn = await connect_pg(db, "wizard: who else is connected")
    try:
        rows = await conn.fetch(
            "SELECT pid, application_name, client_addr::text AS addr, usename FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND NOT ($1 AND state = 'idle') ORDER BY pid", busy_only)
    finally:
        await conn.close()
    return [f"pid {r['pid']} ({r['application_name'] or 'no application name'}, user {r['usename']}, "
            f"from {r['addr'] or 'a local socket'})" for r in rows]


class SqlCursor:
    """A cursor declared in SQL in the caller's transaction, read with `fetch(n)` as asyncpg's own is.

    asyncpg's cursor prepares a named statement (__asyncpg_stmt_N__, numbered per connection):
    through a transaction pooler another client's statement of that name may already be on the
    server connection ("already exists"). DECLARE and FETCH need none, and the cursor ends with
    the transaction.
    """

    _numbers = itertools.count()

    def __init__(self, conn: asyncpg.Connection, name: str) -> None:
        self._conn, self._name = conn, name

    @classmethod
    async def open(cls, conn: asyncpg.Connection, sql: str) -> "SqlCursor":
        name = f"wizard_cursor_{next(cls._numbers)}"
        await conn.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}")
        return cls(conn, name)

    async def fetch(self, n: int) -> list[asyncpg.Record]:
        return await self._conn.fetch(f"FETCH {int(n)} FROM {self._name}")

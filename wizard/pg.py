"""Raw asyncpg connections to a PostgreSQL target, and the advisory lock that keeps one run per target."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import asyncpg

from wizard.db import describe_connect_error, pg_connect_args
from wizard.errors import BadInput, Refused
from wizard.lock import advisory_key
from wizard.urls import DbUrl

APP_NAME = "engine-migration-wizard"


async def connect_pg(db: DbUrl, application_name: str = APP_NAME) -> asyncpg.Connection:
    """An asyncpg connection, or BadInput with one line an operator can act on."""
    try:
        return await asyncpg.connect(**pg_connect_args(db, application_name))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError, asyncpg.InterfaceError) as exc:
        raise BadInput(describe_connect_error(db, exc)) from None


@contextlib.asynccontextmanager
async def target_lock(db: DbUrl, holder: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold pg_try_advisory_lock on the target's database for the block, or Refused naming who holds it.

    The lock lives in a connection of its own, named `holder` (application_name), so a
    second wizard can say which run has the target; PostgreSQL drops it when the
    process dies, kill -9 included.
    """
    conn = await connect_pg(db, holder)
    try:
        key = advisory_key(db.database)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            who = await conn.fetchrow(
                "SELECT a.application_name, a.pid, a.client_addr::text AS addr FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
                key,
            )
            name = f"{who['application_name'] or 'another session'} (server pid {who['pid']})" if who else "another session"
            raise Refused(f"{name} holds database {db.database}: wait for it to end, or stop it first")
        yield conn
    finally:
        await conn.close()


async def other_sessions(db: DbUrl) -> list[str]:
    """The other client sessions connected to `db`'s database: "pid N (application, from address)"."""
    conn = await connect_pg(db, "wizard: who else is connected")
    try:
        rows = await conn.fetch(
            "SELECT pid, application_name, client_addr::text AS addr, usename FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "ORDER BY pid")
    finally:
        await conn.close()
    return [f"pid {r['pid']} ({r['application_name'] or 'no application name'}, user {r['usename']}, "
            f"from {r['addr'] or 'a local socket'})" for r in rows]

"""Raw asyncpg connections to a PostgreSQL target, and who else is connected to it."""

from __future__ import annotations

import asyncio

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

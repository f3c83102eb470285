"""One run per target: a PostgreSQL advisory lock, held in a way that lasts through a transaction pooler too."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import asyncpg

from wizard.errors import Refused
from wizard.lock import advisory_key
from wizard.pg import connect_pg
from wizard.pooler import find_pooler
from wizard.urls import DbUrl


@contextlib.asynccontextmanager
async def target_lock(db: DbUrl, holder: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold an advisory lock on the target's database for the block, or Refused naming who holds it.

    The lock lives in a connection of its own, named `holder` (application_name), so a
    second wizard can say which run has the target; PostgreSQL drops it when the
    process dies, kill -9 included. Connected directly it is a session's lock. Through a
    transaction pooler a session lock would stay on whichever server connection took it,
    for other clients, after the run: there it is a transaction's lock, in one transaction
    kept open for the block, which pins that server connection to us until it ends;
    what the block does on the connection commits with it.
    """
    pooled = await find_pooler(db) is not None
    conn = await connect_pg(db, holder)
    try:
        key = advisory_key(db.database)
        held = conn.transaction() if pooled else None
        if held is not None:
            await held.start()
        if not await conn.fetchval(f"SELECT pg_try_advisory{'_xact' if pooled else ''}_lock($1)", key):
            who = await conn.fetchrow(
                "SELECT a.application_name, a.pid, a.client_addr::text AS addr FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
                key,
            )
            name = f"{who['application_name'] or 'another session'} (server pid {who['pid']})" if who else "another session"
            raise Refused(f"{name} holds database {db.database}: wait for it to end, or stop it first")
        yield conn
        if held is not None:
            await held.commit()
    finally:
        await conn.close()

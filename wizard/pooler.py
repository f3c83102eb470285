"""A transaction pooler (PgBouncer's pool_mode = transaction, or any other) between the wizard and a target.

Told by what the sessions do, not by a product's name: connected directly (or through a
pooler in session mode) each client session is one server backend for its whole life.
Through a transaction pooler a backend serves whichever client has a transaction: a
second session of ours is handed the backend the first one just used (PgBouncer reuses
the last one freed), or the first one's next statement runs on another backend.
The wizard works through it (no named prepared statements, wizard.pgsession; the target
lock held in a transaction, wizard.pg), except a pooler that allows no transaction at all
(PgBouncer's statement mode): the copy commits each chunk with its checkpoint, so that
one is refused, naming the direct URL when there is one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from wizard.errors import BadInput
from wizard.pg import connect_pg
from wizard.urls import DbUrl

PROBE = "wizard: pooler probe"
DIRECT_TIMEOUT = 3  # seconds: the server behind a pooler is often not reachable from here at all
# Who the server is: the same start time and database oid through the pooler and directly.
_IDENTITY = "SELECT pg_postmaster_start_time()::text, (SELECT oid FROM pg_database WHERE datname = current_database())"


@dataclass(frozen=True)
class Pooler:
    direct: DbUrl | None  # the same server and database without the pooler, when it answers us

    def advice(self) -> str:
        where = f"connect to {self.direct.masked()} directly" if self.direct else \
            "connect to the server itself (not the pooler) if you can"
        return f"through a transaction pooler: the move works through it, and {where} for a faster copy"


async def find_pooler(db: DbUrl) -> Pooler | None:
    """The transaction pooler in front of `db`, None when the wizard talks to the server itself.

    BadInput when the pooler allows no transaction (statement pooling): nothing the wizard does works there.
    """
    first = await connect_pg(db, PROBE)
    try:
        second = await connect_pg(db, PROBE)
        try:
            pids = [await first.fetchval("SELECT pg_backend_pid()"), await second.fetchval("SELECT pg_backend_pid()"),
                    await first.fetchval("SELECT pg_backend_pid()")]
        finally:
            await second.close()
        if pids[0] != pids[1] and pids[0] == pids[2]:
            return None
        server = await first.fetchrow(f"SELECT host(inet_server_addr()), inet_server_port(), * FROM ({_IDENTITY}) i")
        direct = await _direct(db, server)
        try:
            async with first.transaction():
                await first.fetchval("SELECT 1")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            use = f"use {direct.masked()}" if direct else "connect to the server itself"
            raise BadInput(f"{db.masked()}: a pooler there allows no transaction ({said}): the copy commits each "
                           f"chunk with its checkpoint in one: {use}, or a pooler in session or transaction mode") \
                from None
        return Pooler(direct)
    finally:
        await first.close()


async def _direct(db: DbUrl, server: asyncpg.Record) -> DbUrl | None:
    """The server behind the pooler at the address it gives, if it answers from here and is the same one."""
    host, port = server[0], server[1]
    if host is None:  # the pooler reaches it over a Unix socket: no address to name
        return None
    direct = DbUrl(db.url.set(host=host, port=port), db.kind)
    try:
        conn = await connect_pg(direct, PROBE, timeout=DIRECT_TIMEOUT)
    except (BadInput, asyncio.TimeoutError):
        return None
    try:
        same = tuple(await conn.fetchrow(_IDENTITY)) == (server[2], server[3])
    finally:
        await conn.close()
    return direct if same else None


async def session_url(db: DbUrl, tool: str) -> DbUrl:
    """Where `tool` (pg_dump, pg_restore) connects: `db`, or the server behind a transaction pooler there.

    Those tools set session settings (search_path, extra_float_digits...) before their transaction:
    through a transaction pooler they could run on another server connection, and stay on it for
    another client. BadInput when the server does not answer us directly.
    """
    pooler = await find_pooler(db)
    if pooler is None:
        return db
    if pooler.direct is None:
        raise BadInput(f"{db.masked()}: {tool} cannot work through the transaction pooler there (its session "
                       f"settings would stay on a pooled connection): pass the server's own URL")
    return pooler.direct

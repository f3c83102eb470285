"""One wizard per MySQL database: a named lock (GET_LOCK) held by a connection of its own for the run.

MySQL drops a named lock when its connection ends, kill -9 of the wizard included.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from sqlalchemy import text

from wizard.db import connect
from wizard.errors import Refused
from wizard.urls import DbUrl


def lock_name(db: DbUrl) -> str:
    return f"engine-migration-wizard:{db.database}"[:64]  # MySQL's limit on a lock's name


@contextlib.asynccontextmanager
async def database_lock(db: DbUrl) -> AsyncIterator[None]:
    """Hold the database's wizard lock for the block, or Refused naming the connection that holds it."""
    async with connect(db) as conn:
        name = lock_name(db)
        if not (await conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name})).scalar():
            holder = (await conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name})).scalar()
            raise Refused(f"another wizard (server connection {holder}) holds database {db.database}: "
                          "wait for it to end, or stop it first")
        try:
            yield
        finally:
            await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})

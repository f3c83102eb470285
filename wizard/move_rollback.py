"""Undoing a move: drop the tables it created in the target (the source was never written).

Registered with wizard.rollback under the journal's undo action "drop_tables"; the
.env switch is undone by the registry's own "restore_env".
"""

from __future__ import annotations

import asyncpg

from wizard.db import quote
from wizard.errors import StepError
from wizard.events import Emit, StepFinished, StepStarted
from wizard.pg import connect_pg
from wizard.rollback import Credentials, UndoAction, register
from wizard.target_schema import drop_tables


@register
class DropTables(UndoAction):
    action = "drop_tables"

    @property
    def tables(self) -> list[str]:
        return list(self.undo.get("tables") or [])

    def describe(self) -> str:
        return (f"drop the {len(self.tables)} tables this move created in database {self.undo.get('database')} "
                f"({self.target}): {', '.join(self.tables)}")

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        step = f"undo {self.step}"
        db = credentials.resolve(self.target)
        emit(StepStarted(step, f"drop the move's tables in database {db.database}"))
        conn = await connect_pg(db)
        try:
            try:
                async with conn.transaction():
                    dropped = await drop_tables(conn, self.tables)
            except asyncpg.PostgresError as exc:
                raise StepError(f"cannot drop the move's tables in database {db.database}: {exc}: "
                                f"drop what depends on them first, then roll back again") from None
            left = [t for t in self.tables if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(t))]
        finally:
            await conn.close()
        if left:
            raise StepError(f"after the drop, database {db.database} still has {', '.join(left)}")
        sentence = f"dropped {len(dropped)} tables in database {db.database}; none of the move's tables remain"
        emit(StepFinished(step, sentence))
        return sentence

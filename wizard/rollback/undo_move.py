"""Undoing a move: carry what the engine wrote since back into the source (a SQLite file or a MySQL database),
then drop the tables the move created in the target (the source was never written by the move).

Registered with wizard.rollback.run under the journal's undo actions "carry_back" (the move's end state;
wizard.rollback.carry_back) and "drop_tables"; the .env switch is undone by the registry's own "restore_env".
"""

from __future__ import annotations

from typing import Awaitable, Callable

import asyncpg

from wizard.backup import BackupRecord
from wizard.rollback.carry_back import as_the_source_holds, carry_back, refusal_of_the_rows as refusal_into_file
from wizard.rollback.carry_mysql import carry_back_mysql, refusal_of_the_rows
from wizard.db import connect, quote
from wizard.errors import StepError
from wizard.events import Emit, StepFinished, StepStarted
from wizard.pg import connect_pg
from wizard.rollback.run import Credentials, SaveSince, UndoAction, dropped_columns, register
from wizard.rollback.since import CARRIED, END_STATE, Since, differs, measure
from wizard.rollback.saved_rows import DROPPED
from wizard.move.target_schema import OWN_TABLES, drop_tables
from wizard.mysql import target as mysql_target
from wizard.mysql.info import app_tables
from wizard.urls import DbUrl, parse_url


@register
class CarryBack(SaveSince):
    """The move's end state: rows written to the target since are carried back into the source, a SQLite file
    (wizard.rollback.carry_back) or a MySQL database (wizard.rollback.carry_mysql); with --restore-backup,
    saved to the run folder as SaveSince does."""

    action = "carry_back"

    def needed(self) -> bool:
        return self.since is not None and self.since.any

    def describe(self) -> str:
        if self.context.restore_backup:
            return super().describe()
        rows = f"carry the {self.since.rows:,} row(s) written to database {self.undo.get('database')} since the move"
        if self.undo["source"].startswith("sqlite:"):
            return (f"{rows} back into {self.undo['source'].split('///', 1)[1]}: a fresh backup of the file first, one "
                    f"SQLite transaction, then the file checked row by row against the target{self._downgrade()}")
        source = parse_url(self.undo["source"], "journal's")
        return (f"{rows} back into MySQL database {source.database}: its CHECKSUM "
                f"TABLE first (as the move left it), one transaction, then the database checked row by row against "
                f"the target{self._downgrade()}")

    def _downgrade(self) -> str:
        """A move that went on to a later revision: the target is downgraded to the source's before the rows are
        read, and what that drops is lost to the source; said, as an upgrade's rollback says it."""
        source = self.undo.get("revision")
        upgraded = next((r.get("revision") for r in reversed(self.context.run.records())
                         if r["kind"] == "step_finished" and r.get("step") == "upgrade"), None)
        if not source or not upgraded or upgraded == source:
            return ""
        line = f"; before that, the target is downgraded from {upgraded} to {source} (the source's revision)"
        dropped = dropped_columns(upgraded, source)
        if dropped:
            line += (f", first saving {', '.join(f'{t}.{c}' for t, cs in dropped.items() for c in cs)} (dropped by "
                     f"the downgrade, not carried back) to {self.context.run.folder / DROPPED}")
        return line

    async def foreseen_refusal(self, credentials: Credentials) -> str | None:
        if self.context.restore_backup or not self.needed():
            return None
        source, target = credentials.resolve(self.undo["source"]), credentials.resolve(self.target)
        since = as_the_source_holds(self.since, self.context.run.folder)
        if source.is_sqlite:
            return await refusal_into_file(source, target, since)
        return await refusal_of_the_rows(source, target, since)

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        if self.context.restore_backup:
            return await super().perform(emit, credentials)
        source, target = credentials.resolve(self.undo["source"]), credentials.resolve(self.target)
        moved, revision = BackupRecord.from_dict(self.undo["backup"]), self.undo.get("revision") or ""
        step, folder = f"undo {self.step}", self.context.run.folder
        since = as_the_source_holds(self.since, folder)
        if source.is_mysql:
            fingerprint = next(r for r in self.context.run.records() if r["kind"] == "source_fingerprint")
            return await carry_back_mysql(source, target, since, moved, fingerprint, revision, folder, emit, step)
        return await carry_back(source, target, since, moved, revision, folder, emit, step)


@register
class DropTables(UndoAction):
    action = "drop_tables"

    @property
    def tables(self) -> list[str]:
        return list(self.undo.get("tables") or [])

    def describe(self) -> str:
        # The move's bookkeeping tables are named apart: a finished move has dropped them itself.
        engine, own = _split(self.tables)
        text = (f"drop the {len(engine)} tables this move created in database {self.undo.get('database')} "
                f"({self.target}): {', '.join(engine)}")
        return text + (f"; and its bookkeeping ({', '.join(own)}) where it is left" if own else "")

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        step = f"undo {self.step}"
        db = credentials.resolve(self.target)
        emit(StepStarted(step, f"drop the move's tables in database {db.database}"))
        dropped, left = await (_drop_mysql if db.is_mysql else _drop_pg)(db, self.tables, self._refuse_written_during)
        if left:
            raise StepError(f"after the drop, database {db.database} still has {', '.join(left)}")
        engine, own = _split(dropped)
        sentence = (f"dropped {len(engine)} tables in database {db.database}"
                    + (f" and the move's bookkeeping ({', '.join(own)})" if own else "")
                    + "; none of the move's tables remain")
        emit(StepFinished(step, sentence))
        return sentence

    async def _refuse_written_during(self, db: DbUrl) -> None:
        """Rows the engine wrote during the rollback (it connected after the rollback's check that nothing was, or
        was pointed at the target again) would go with the tables: StepError, naming them, when the target is not
        as the rollback left it: as the carry-back's proof found it (CARRIED), else as it was measured when the
        rollback began. A run that never handed the engine its target (no end state) has nothing to compare."""
        since = self.since
        if since is None:
            return
        carried = self.context.run.folder / CARRIED
        if (carried / END_STATE).is_file():
            now, expected = await measure(db, carried, since.finished, since.journey), Since(since.where, "", [])
        else:
            now, expected = await measure(db, self.context.run.folder, since.finished, since.journey), since
        written = differs(now, expected)
        if written:
            against = ("the rows the carry-back proved equal to the source" if expected is not since
                       else "what the rollback measured when it began")
            raise StepError(f"database {db.database} was written during the rollback (against {against}: "
                            f"{written}): its tables were not dropped, and those rows are only there; stop whatever "
                            f"still writes to it, then carry them into the source by hand")


Check = Callable[[DbUrl], Awaitable[None]]


async def _drop_pg(db: DbUrl, tables: list[str], check: Check) -> tuple[list[str], list[str]]:
    """(the tables dropped, those still there after). The tables are locked against writes (reads go on) before
    `check` finds nothing written during the rollback, and stay so until they are dropped."""
    conn = await connect_pg(db)
    try:
        try:
            async with conn.transaction():
                present = [t for t in tables if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(t))]
                if present:
                    await conn.execute(f"LOCK TABLE {', '.join(quote(t) for t in present)} IN EXCLUSIVE MODE")
                await check(db)
                dropped = await drop_tables(conn, tables)
        except asyncpg.PostgresError as exc:
            raise StepError(f"cannot drop the move's tables in database {db.database}: {exc}: "
                            f"drop what depends on them first, then roll back again") from None
        left = [t for t in tables if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(t))]
    finally:
        await conn.close()
    return dropped, left


async def _drop_mysql(db: DbUrl, tables: list[str], check: Check) -> tuple[list[str], list[str]]:
    """As _drop_pg, on MySQL (its DROP TABLE commits itself: no transaction to hold it, nor a lock that lets
    `check` read)."""
    await check(db)
    async with connect(db) as conn:
        dropped = await mysql_target.drop(conn, tables)
        left = [t for t in await app_tables(conn) if t in tables]
    return dropped, left


def _split(tables: list[str]) -> tuple[list[str], list[str]]:
    """(the tables the move carried over, its own bookkeeping tables)."""
    return [t for t in tables if t not in OWN_TABLES], [t for t in tables if t in OWN_TABLES]

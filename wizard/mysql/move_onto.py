"""The move from SQLite into MySQL or MariaDB: wizard.move.run's journey, with the target's steps done MySQL's way.

The checks, the backup, the resume, the row counts, the row-level verification, the .env switch and the
report are the PostgreSQL move's own (wizard.move.run). What differs lives here: the schema (the engine's
history on MySQL, DDL committed statement by statement, so its undo is journaled before the first CREATE),
the copy (wizard.mysql.copy, --jobs tables at once), no deferred indexes (InnoDB builds them as the rows go in, the
foreign keys' checks off on the copy's sessions: the scan already decided every dangling reference), AUTO_INCREMENT
counters instead of sequences, and --to's upgrade one revision at a time (DDL commits itself on MySQL). The settings
move is the PostgreSQL move's too (wizard.move.settings). The end state is the PostgreSQL move's: a rollback carries
the rows written to MySQL since back into the SQLite file (wizard.rollback.carry_back). The move off MySQL to
PostgreSQL is wizard.mysql.move_off.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import schema
from wizard.db import connect, write_transaction
from wizard.errors import StepError
from wizard.events import StepFinished, StepStarted, Warn
from wizard.move.copy import TableCopy
from wizard.move.preflight import PreflightReport
from wizard.move.run import _copy_in_order, _Move
from wizard.move.scan import RowActions
from wizard.move.tables import SourceTable
from wizard.move.target_schema import TargetSchema, drop_tables_undo
from wizard.mysql import copy, target as mysql_target
from wizard.mysql.lock import database_lock
from wizard.mysql.upgrade import undo_cut
from wizard.urls import DbUrl


class _Session:
    """A SQLAlchemy connection to MySQL answering the few asyncpg calls wizard.move.run makes of the target's
    connections (fetchval, execute, close), each statement its own transaction."""

    def __init__(self, conn: AsyncConnection, owner: contextlib.AsyncExitStack | None = None) -> None:
        self.conn, self.owner = conn, owner

    async def fetchval(self, sql: str) -> Any:
        value = (await self.conn.exec_driver_sql(sql)).scalar()
        await self.conn.rollback()
        return value

    async def execute(self, sql: str) -> None:
        await self.conn.exec_driver_sql(sql)
        await self.conn.commit()

    async def close(self) -> None:
        if self.owner is not None:
            await self.owner.aclose()


async def ready(target: DbUrl) -> None:
    """Before any run exists: the target lets us in, and its character set keeps every character (else BadInput)."""
    await mysql_target.check_charset(target)


@contextlib.asynccontextmanager
async def held(target: DbUrl, holder: str) -> AsyncIterator[_Session]:
    """The database's wizard lock (a second wizard is refused), and a session on it, for the move."""
    async with database_lock(target), connect(target) as conn:
        yield _Session(conn)


class MoveOntoMySQL(_Move):
    copy_order = "parents before children, a chunk and its checkpoint a transaction"

    async def _schema(self, lock_conn: Any, report: PreflightReport) -> TargetSchema:
        revision = report.source_revision or ""
        conn = lock_conn.conn
        existing = await mysql_target.load(conn, self.run.id)
        if existing is not None:
            if "schema" not in self.done:
                self._end("schema", time.monotonic(), undo=self._drop_all(revision), tables=existing["tables"])
            return TargetSchema(self.run.id, existing["revision"], self.fingerprint, existing["tables"], [])
        # Journaled before the first CREATE: MySQL commits each one, so a kill mid-way leaves tables to drop.
        began = self._begin("schema", f"create the target's schema at revision {revision}",
                            undo=self._drop_all(revision))
        made = await mysql_target.create(conn, revision, self.run.id, self.fingerprint, self.emit, "schema")
        self._end("schema", began, undo=self._drop_all(revision), tables=made, revision=revision)
        self.emit(StepFinished("schema", f"created {len(made)} tables at revision {revision}",
                               {"revision": revision, "tables": made}))
        return TargetSchema(self.run.id, revision, self.fingerprint, made, [])

    def _drop_all(self, revision: str) -> dict[str, Any]:
        return drop_tables_undo(self.options.target, mysql_target.tables_made(revision))

    async def _connections(self, n: int) -> list[_Session]:
        owner = contextlib.AsyncExitStack()
        return [_Session(await owner.enter_async_context(connect(self.options.target)), owner)]

    async def _copy_tables(self, report: PreflightReport) -> dict[str, TableCopy]:
        o = self.options
        tables = report.tables
        async with contextlib.AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(copy.loading_connection(o.target))
                     for _ in range(max(1, min(o.jobs, len(tables))))]
            saved = await copy.load_checkpoints(conns[0], self.run.id)
            for conn in conns:
                # Off for these sessions only: the scan decided every dangling reference (quarantine, null or abort).
                await conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
                await conn.rollback()
            states = {t.name: saved.get(t.name) or TableCopy(t.name) for t in tables}
            for t in tables:
                states[t.name].source_rows = report.rows[t.name]
            actions = report.actions[self.policy]
            await _copy_in_order(tables, states, conns, self.stop, lambda conn, t: copy.copy_table(
                conn, self._copy_source(), t, actions.get(t.name) or RowActions(), self.run.id, states[t.name],
                self.run.folder, self.emit, self.stop, o.chunk_rows, report.unclean.get(t.name)))
        return states

    async def _indexes(self, conns: list[Any], target: TargetSchema, tables: list[SourceTable]) -> None:
        """Nothing deferred: the engine's schema on MySQL is made whole before the load."""

    async def _sequences(self, conn: _Session, tables: list[SourceTable]) -> dict[str, int]:
        began = self._begin("sequences", "set AUTO_INCREMENT past the highest ids")
        self.emit(StepStarted("sequences", "set AUTO_INCREMENT past the highest ids"))
        values = await mysql_target.set_auto_increment(conn.conn, [t.target for t in tables],
                                                       {t.target: t.sequence for t in tables if t.sequence is not None})
        self._end("sequences", began, sequences=values)
        self.emit(StepFinished("sequences", f"{len(values)} AUTO_INCREMENT counter(s) set: the next insert gets "
                                            "max + 1 of the source's ids, quarantined ones too",
                               {"sequences": values}))
        return values

    async def _apply_upgrade(self, wanted: str) -> None:
        """One revision at a time, each in a transaction of its own: MySQL commits DDL itself, so a kill leaves the
        revisions before it whole and recorded, and a resume carries on from the one alembic_version names. A
        revision cut after its DDL is undone first (wizard.mysql.upgrade.undo_cut) and applied again whole; tables
        that match neither it nor the revision recorded are refused, as no resume can finish them."""
        async with connect(self.options.target) as conn:
            state = await schema.inspect_schema(conn)
            await conn.rollback()
            undone = await undo_cut(conn, state)
            if undone:
                self.emit(Warn("upgrade", undone))
                state = await schema.inspect_schema(conn)
                await conn.rollback()
            if state.revision not in state.matches:
                raise StepError(f"the target's tables do not match revision {state.revision}, the one it records "
                                f"(an upgrade was cut mid-revision): roll this run back (wizard rollback --run "
                                f"{self.run.id}) and move again")
            for rev in schema.between(state.revision, wanted):
                async with write_transaction(conn):
                    await schema.upgrade(conn, rev.id, self.emit, step="upgrade")
            now = (await conn.execute(text(f"SELECT version_num FROM {schema.VERSION_TABLE}"))).scalar()
            await conn.rollback()
        if now != wanted:
            raise StepError(f"after the upgrade the target records revision {now}, not {wanted}: roll this run back "
                            f"(wizard rollback --run {self.run.id}) and move again")

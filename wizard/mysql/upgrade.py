"""An upgrade in place on MySQL or MariaDB: each revision committed, and journaled, on its own.

MySQL commits every DDL statement as it runs, so the whole upgrade cannot be one transaction
as on SQLite and PostgreSQL. Each revision is a step of its own instead: its undo (a downgrade
to the revision before it, or for a 1.0.0 database's baseline the removal of alembic_version)
is journaled when the step starts, before anything changes, so `wizard rollback` undoes a run
that failed or was killed between two revisions back to exactly the revision before the run;
the run's backup is restored instead when nothing was written since.

A kill can also land inside a revision, between its DDL (committed) and the commit of its data changes and
version row (rolled back): undo_cut takes such tables back to the revision recorded, so it applies again whole.
"""

from __future__ import annotations

from typing import Any, Callable

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import schema
from wizard.db import connect, write_transaction
from wizard.errors import Refused, StepError
from wizard.events import Emit
from wizard.journal import Run


async def apply_each(run: Run, plan: Any, result: Any, emit: Emit, check_stop: Callable[[str], None],
                     pending_now: Callable[[schema.SchemaState], list[schema.Revision]]) -> None:
    """Apply `plan` (wizard.upgrade's UpgradePlan) one revision at a time, filling `result` (its UpgradeResult).
    `check_stop(what)` raises before a revision when the operator asked to stop; `pending_now(state)` is what
    the database has pending now (it must still be the plan's)."""
    db = plan.db
    run.step_started("schema", f"upgrade {db} to {plan.target}, one revision at a time",
                     revisions=[r.id for r in plan.pending])
    steps = [(schema.Revision(plan.stamp, "baseline: record it"), True)] if plan.stamp else []
    steps += [(rev, False) for rev in plan.pending]
    async with connect(db) as conn:
        if pending_now(await schema.inspect_schema(conn)) != plan.pending:
            raise Refused(f"{db} changed while the wizard was backing it up: run the upgrade again")
        await conn.rollback()  # the inspection's own transaction: each revision begins its own
        previous = plan.stamp or plan.current
        for rev, baseline in steps:
            check_stop(f"revision {rev.id}")
            # Journaled before anything changes: a kill -9 mid-revision still leaves its undo (wizard.rollback).
            undo = {"action": "downgrade", "db": db.masked(), "from": rev.id,
                    "to": rev.id if baseline else previous, "drop_version_table": baseline}
            run.step_started(f"revision {rev.id}", rev.description, undo=undo)
            try:
                async with write_transaction(conn):
                    counts = await schema.upgrade(conn, rev.id, emit, stamp=rev.id if baseline else None,
                                                  step=f"revision {rev.id}")
            except DBAPIError as exc:
                detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                raise StepError(f"revision {rev.id} of the upgrade of {db} failed ({detail}); the revisions before "
                                f"it are committed: `wizard rollback --run {run.id}` takes the database back to "
                                f"{plan.current or '1.0.0'}") from None
            run.step_finished(f"revision {rev.id}", undo=undo, counts=counts.get(rev.id))
            result.counts.update(counts)
            if not baseline:
                result.applied.append(rev.id)
            previous = rev.id
        now = (await conn.execute(text(f"SELECT version_num FROM {schema.VERSION_TABLE}"))).scalar()
        await conn.rollback()
    if now != plan.target:
        raise StepError(f"after the upgrade {db} records revision {now}, not {plan.target}: "
                        f"`wizard rollback --run {run.id}` takes it back")
    run.step_finished("schema", applied=result.applied, baseline=plan.stamp, counts=result.counts)


async def undo_cut(conn: AsyncConnection, state: schema.SchemaState) -> str | None:
    """When the tables match not the revision alembic_version records but the next one: that revision was cut after
    its DDL (each statement committed by MySQL as it ran) and before its commit (its data changes and the version
    row, rolled back). Its downgrade, run on its own with alembic_version untouched, takes the tables back to the
    revision recorded, which the caller then upgrades from as usual; the sentence that says so, None when nothing
    was cut. A downgrade has one DDL statement in this history (0002's), so a kill inside it leaves either state."""
    ids = [r.id for r in schema.history()]
    if not state.recorded or state.revision in state.matches or state.revision == ids[-1]:
        return None
    cut = ids[ids.index(state.revision) + 1]
    if cut not in state.matches:
        return None

    def downgrade(sync_conn: Any) -> None:
        module = ScriptDirectory.from_config(schema.alembic_config()).get_revision(cut).module
        with schema.ALEMBIC_LOCK, Operations.context(MigrationContext.configure(sync_conn)):
            module.downgrade()

    async with write_transaction(conn):
        await conn.run_sync(downgrade)
    return (f"revision {cut} was cut in the middle (its tables changed, its data and alembic_version not): "
            f"its downgrade took the tables back to {state.revision}, the revision recorded")

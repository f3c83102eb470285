"""Upgrade in place: back up, then apply the pending revisions in one transaction.

Everything an operator can get wrong (the URL, the revision, a database whose
tables the history does not know, a 1.0.0 database without consent to record
its baseline) is found before a run starts, so it leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from migrations.batches import BATCH_ROWS
from wizard import schema
from wizard.rollback import since
from wizard import pgtools
from wizard.backup import BackupRecord, backup_database
from wizard.db import connect, write_transaction
from wizard.errors import BadInput, Interrupted, Refused, StepError, WizardError
from wizard.events import Emit, StopRequest, ignore
from wizard.journal import FAILED, FINISHED, INTERRUPTED, Run, new_run, new_run_id
from wizard.lock import StateLock
from wizard.mysql.lock import database_lock
from wizard.mysql.upgrade import apply_each
from wizard.target_lock import target_lock
from wizard.urls import DbUrl

JOURNEY = "upgrade"


@dataclass
class UpgradePlan:
    """What an upgrade of one database would do; computed without changing anything."""

    db: DbUrl
    state: schema.SchemaState
    target: str
    stamp: str | None  # the baseline to record first (a 1.0.0 database), else None
    pending: list[schema.Revision]

    @property
    def current(self) -> str | None:
        """The revision recorded now (None for a 1.0.0 database)."""
        return self.state.revision

    @property
    def nothing_to_do(self) -> bool:
        return not self.pending and not self.stamp

    @property
    def how(self) -> str:
        """How the revisions are applied, for the confirmation."""
        if self.db.is_mysql:
            return ("each revision on its own (MySQL commits each DDL statement itself: a revision is committed "
                    "and journaled alone; if the upgrade fails or is killed between two, `wizard rollback` takes "
                    "the database back to the revision before the run)")
        return "all of this in one transaction: if it fails, the database is as it was"


@dataclass
class UpgradeResult:
    run_id: str | None  # None when there was nothing to do
    from_revision: str | None  # None: no revision was recorded (1.0.0)
    to_revision: str
    backup: BackupRecord | None
    applied: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per data revision: rows, changed, ...
    baseline: str | None = None  # the baseline recorded first, if any


def _decide(db: DbUrl, state: schema.SchemaState, target: str) -> UpgradePlan:
    ids = [r.id for r in schema.history()]
    first = ids[0]
    if state.empty:
        raise Refused(f"{db} holds none of the engine's tables: nothing to upgrade (is it the right database?)")
    if state.recorded:
        if state.revision not in ids:
            raise Refused(f"{db} is at revision {state.revision}, which this wizard's history does not know: "
                          "use the wizard that came with that engine version")
        current, stamp = state.revision, None
    elif state.matches == [first]:
        current, stamp = first, first
    elif state.matches:
        raise Refused(f"{db} records no revision and its tables match {', '.join(state.matches)}, which differ only "
                      "in their data: record the right one with `alembic stamp REV`, then upgrade")
    else:
        raise Refused(f"{db} records no revision and its tables match none the wizard knows: "
                      + "; ".join(state.differences) + ": the revisions are written for the engine's own tables: "
                      "set apart what differs (its values kept in a table of their own), then upgrade")
    if ids.index(current) > ids.index(target):
        raise BadInput(f"{db} is at {current}, past {target}: upgrade only moves forward; "
                       "`wizard rollback` undoes an upgrade run")
    return UpgradePlan(db, state, target, stamp, schema.between(current, target))


async def plan_upgrade(db: DbUrl, target: str | None) -> UpgradePlan:
    """Resolve the target and inspect the database: BadInput/Refused for anything that cannot go ahead."""
    target_rev = schema.resolve_revision(target)
    async with connect(db) as conn:
        state = await schema.inspect_schema(conn)
    return _decide(db, state, target_rev)


async def upgrade_sql(db: DbUrl, target: str | None, emit: Emit = ignore) -> str:
    """The SQL an upgrade would run (`wizard upgrade --sql`), and what each data revision would do to the rows
    there now (every row is read: `emit` gets the progress); changes nothing."""
    plan = await plan_upgrade(db, target)
    if plan.nothing_to_do:
        return f"-- {db} is at {plan.target}: nothing to run\n"
    start = plan.stamp or plan.current
    head = [f"-- upgrade {db} from {start} to {plan.target}; the wizard backs it up first, then applies {plan.how}"]
    if plan.stamp:
        head.append(f"-- a 1.0.0 database: its baseline {plan.stamp} is recorded first, once you agree")
    async with connect(db, readonly=True) as conn:
        previews = await schema.preview_rewrites(conn, plan.pending, emit)
    said = {r.id: _preview_comment(r, previews[r.id]) for r in plan.pending if r.id in previews}
    return "\n".join(head) + "\n\n" + schema.upgrade_sql(db, start, plan.target, stamp=plan.stamp, previews=said)


def _preview_comment(rev: schema.Revision, preview: schema.RewritePreview) -> str:
    """A data revision in the SQL preview: its rule, the rows it changes (counted now), one of them before and
    after."""
    rw, counts = preview.rewrite, preview.counts
    lines = [f"{rev.id} rewrites {rw.table}.{rw.column} in Python, {BATCH_ROWS:,} rows a batch: no SQL to show.",
             f"Its rule: {rev.description}",
             f"On this database now: {counts['changed']:,} of its {counts['rows']:,} rows change."]
    if counts["invalid_json"]:
        lines.append(f"{counts['invalid_json']:,} hold text that is not JSON: they are left as they are.")
    if preview.example is not None:
        key, before, after = preview.example
        lines += [f"For example the row {rw.pk} {json.dumps(key, default=str)} (... is what stays as it was):",
                  f"  before: {_sketch(before, after)}", f"  after:  {_sketch(after, before)}"]
    return "\n".join(f"-- {line}" for line in lines)


_MISSING = object()


def _sketch(value: Any, other: Any) -> str:
    """`value` as JSON with what it shares with `other` left out ("..."), so that an example shows its change."""
    if isinstance(value, dict) and isinstance(other, dict):
        parts = [f"{json.dumps(k)}: {_sketch(v, other.get(k, _MISSING))}" if other.get(k, _MISSING) != v else "..."
                 for k, v in value.items()]
    elif isinstance(value, list) and isinstance(other, list) and len(value) == len(other):
        changed = [i for i, (a, b) in enumerate(zip(value, other)) if a != b]
        parts = ["..." if i != changed[0] else _sketch(value[i], other[i]) for i in range(len(value))] if changed \
            else ["..."] * len(value)
    else:
        return _brief(value)
    joined = [p for i, p in enumerate(parts) if p != "..." or i == 0 or parts[i - 1] != "..."]  # one ... a run
    return ("{%s}" if isinstance(value, dict) else "[%s]") % ", ".join(joined)


def _brief(value: Any, depth: int = 0) -> str:
    """`value` as JSON, shortened: two keys of an object, one item of an array, three levels, 40 characters of a
    string; "..." for the rest."""
    if isinstance(value, dict):
        if depth >= 3 and value:
            return "{...}"
        parts = [f"{json.dumps(k)}: {_brief(v, depth + 1)}" for k, v in list(value.items())[:2]]
        return "{" + ", ".join(parts + ["..."] * (len(value) > 2)) + "}"
    if isinstance(value, list):
        if depth >= 3 and value:
            return "[...]"
        return "[" + ", ".join([_brief(v, depth + 1) for v in value[:1]] + ["..."] * (len(value) > 1)) + "]"
    if isinstance(value, str) and len(value) > 40:
        return json.dumps(value[:40])[:-1] + '..."'
    return json.dumps(value, default=str)


async def run_upgrade(db: DbUrl, target: str | None, state_dir: Path, emit: Emit, accept_baseline: bool,
                      stop: StopRequest | None = None) -> UpgradeResult:
    db = db.absolute()
    plan = await plan_upgrade(db, target)
    if plan.stamp and not accept_baseline:
        raise Refused(f"{db} is a 1.0.0 database with no revision recorded: recording its baseline "
                      f"{plan.stamp} needs consent: pass --yes")
    if plan.nothing_to_do:
        return UpgradeResult(None, plan.current, plan.target, None)
    if db.kind == "postgresql":
        await pgtools.for_database(db)  # no pg_dump that can back it up: refused before anything is written
    run_id = new_run_id()
    with StateLock(state_dir).acquire(run_id, JOURNEY):
        # On PostgreSQL, one wizard per database whatever its state directory: taken before the backup,
        # so a database another run is working on is refused before anything is written.
        async with _hold_target(db, run_id):
            run = new_run(state_dir, JOURNEY, run_id=run_id, db=db.masked(), from_revision=plan.current,
                          baseline=plan.stamp, target=plan.target)
            try:
                record = await _backup_step(run, db, emit)
                result = await _apply(run, plan, emit, stop)
                await since.record_step(run, db, emit, {"action": "save_since", "db": db.masked()})
            except Interrupted as exc:
                run.step_failed("upgrade", exc.message)
                run.finish(INTERRUPTED, error=exc.message)
                raise
            except WizardError as exc:
                run.step_failed("upgrade", exc.message)
                run.finish(FAILED, error=exc.message)
                raise
            except BaseException:  # Ctrl+C, a cancelled task, a bug: the journal still says how it ended
                run.finish(INTERRUPTED, error="stopped")
                raise
            result.backup = record
            run.finish(FINISHED, to_revision=result.to_revision, applied=result.applied)
            return result


async def _backup_step(run: Run, db: DbUrl, emit: Emit) -> BackupRecord:
    run.step_started("backup", f"back up {db}")
    record = await backup_database(db, run.folder, emit)
    run.step_finished("backup", undo={"action": "restore_database", "db": db.masked(), "backup": record.to_dict()},
                      backup=record.to_dict())
    return record


def _check_stop(stop: StopRequest | None, before: str) -> None:
    if stop is not None and stop.is_set():
        raise Interrupted(f"{stop.reason}: stopped before {before}; the upgrade's transaction was rolled back, "
                          "the database is as it was")


async def _apply(run: Run, plan: UpgradePlan, emit: Emit, stop: StopRequest | None) -> UpgradeResult:
    db = plan.db
    result = UpgradeResult(run.id, plan.current, plan.target, None, baseline=plan.stamp)
    if db.is_mysql:
        await apply_each(run, plan, result, emit, lambda what: _check_stop(stop, what),
                         lambda state: _decide(db, state, plan.target).pending)
        return result
    run.step_started("schema", f"upgrade {db} to {plan.target}", revisions=[r.id for r in plan.pending])
    try:
        async with connect(db) as conn:
            async with write_transaction(conn):
                if _decide(db, await schema.inspect_schema(conn), plan.target).pending != plan.pending:
                    raise Refused(f"{db} changed while the wizard was backing it up: run the upgrade again")
                steps = plan.pending or [schema.Revision(plan.target, "baseline")]
                stamp = plan.stamp
                for rev in steps:
                    _check_stop(stop, f"revision {rev.id}")
                    run.step_started(f"revision {rev.id}", rev.description)
                    counts = await schema.upgrade(conn, rev.id, emit, stamp=stamp, step=f"revision {rev.id}")
                    stamp = None
                    result.counts.update(counts)
                    if plan.pending:
                        result.applied.append(rev.id)
                    # Recorded before the commit: a crash after this line leaves no step of it applied.
                    run.step_finished(f"revision {rev.id}", in_transaction=True, counts=counts.get(rev.id))
                _check_stop(stop, "the commit")
                now = (await conn.execute(text(f"SELECT version_num FROM {schema.VERSION_TABLE}"))).scalar()
                if now != plan.target:
                    raise StepError(f"after the upgrade {db} records revision {now}, not {plan.target}: rolled back")
    except DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise StepError(f"the upgrade of {db} failed ({detail}): its transaction was rolled back, "
                        f"the database is as it was; the backup is in {run.folder}") from None
    # A 1.0.0 database goes back to its baseline's tables with no alembic_version at all.
    undo = {"action": "downgrade", "db": db.masked(), "from": plan.target, "to": plan.stamp or plan.current,
            "drop_version_table": bool(plan.stamp)}
    run.step_finished("schema", undo=undo,
                      applied=result.applied, baseline=plan.stamp, counts=result.counts)
    return result


def _hold_target(db: DbUrl, run_id: str) -> Any:
    """The target's advisory lock for the run, named `wizard upgrade ID` so a second wizard can say who holds it."""
    if db.is_sqlite:
        return contextlib.nullcontext()  # SQLite: BEGIN IMMEDIATE holds the only write lock
    if db.is_mysql:
        return database_lock(db)
    return target_lock(db, f"wizard upgrade {run_id}")


def summary(result: UpgradeResult) -> dict[str, Any]:
    """The result as plain data, for --json and the TUI."""
    return {
        "run_id": result.run_id, "from_revision": result.from_revision, "to_revision": result.to_revision,
        "baseline": result.baseline, "applied": result.applied, "counts": result.counts,
        "backup": result.backup.to_dict() if result.backup else None,
    }

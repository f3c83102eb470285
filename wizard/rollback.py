"""Rollback: walk a run's journal backwards and undo what its steps recorded.

A step journals what undoes it as a dict with an "action" key. Each action name
maps to an UndoAction class that says in one line what it will do and then does
it, returning the sentence that says how the result was checked. A journey adds
its own actions by subclassing UndoAction with @register in a module listed in
ACTION_MODULES.

The journal keeps URLs masked. A PostgreSQL URL that had a password gets it back
from --db, PGPASSWORD, or the DATABASE_URL in .env that names the same database.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import text

from wizard import schema
from wizard.backup import BackupRecord, human_size, restore_database, restore_env
from wizard.db import connect, write_transaction
from wizard.envfile import database_url
from wizard.errors import BadInput, Refused, StepError, WizardError
from wizard.events import Emit, StepFinished, StepStarted
from wizard.journal import ROLLED_BACK, Run
from wizard.lock import StateLock
from wizard.secrets import MASK
from wizard.urls import DbUrl, parse_url

# Modules that register undo actions when imported (journeys other than upgrade add theirs here).
ACTION_MODULES: tuple[str, ...] = ("wizard.move_rollback",)

ACTIONS: dict[str, type["UndoAction"]] = {}


def register(cls: type["UndoAction"]) -> type["UndoAction"]:
    ACTIONS[cls.action] = cls
    return cls


@dataclass
class Credentials:
    """Where the passwords the journal masked come back from."""

    db_override: DbUrl | None = None
    env_file: Path | None = None
    _found: dict[str, DbUrl] = field(default_factory=dict, repr=False)

    def resolve(self, masked: str) -> DbUrl:
        """The database with its password; found once, so a later undo (.env restored) cannot lose it."""
        if masked not in self._found:
            self._found[masked] = self._resolve(masked)
        return self._found[masked]

    def _resolve(self, masked: str) -> DbUrl:
        db = parse_url(masked, "journal's")
        if self.db_override is not None:
            if not _same_database(self.db_override, db):
                raise BadInput(f"--db names {self.db_override}, but the run changed {db}: pass that database's URL")
            return self.db_override
        if db.is_sqlite or db.url.password != MASK:
            return db  # no password was in the URL: PGPASSWORD or ~/.pgpass apply as usual
        if os.environ.get("PGPASSWORD"):
            return DbUrl(db.url.set(password=os.environ["PGPASSWORD"]), db.kind)
        from_env = database_url(self.env_file) if self.env_file else None
        if from_env:
            candidate = parse_url(from_env, "DATABASE_URL")
            if _same_database(candidate, db) and candidate.url.password:
                return candidate
        raise BadInput(f"the journal keeps {db} without its password: pass --db with the full URL, "
                       "or set PGPASSWORD")


def _same_database(a: DbUrl, b: DbUrl) -> bool:
    if a.kind != b.kind:
        return False
    if a.is_sqlite:
        return a.sqlite_path.resolve() == b.sqlite_path.resolve()
    def place(u: DbUrl) -> tuple:
        return u.url.host or u.url.query.get("host"), u.url.port or 5432, u.database  # host= names a socket folder

    return place(a) == place(b)


class UndoAction:
    """One journaled undo. Subclasses set `action` and implement describe() and perform()."""

    action: ClassVar[str]
    # Actions this one makes needless when it can run (a restored backup brings the revision back too).
    supersedes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, undo: dict[str, Any], step: str, index: int) -> None:
        self.undo = undo
        self.step = step
        self.index = index  # the journal record it came from: how a retried rollback skips what is done

    @property
    def target(self) -> str:
        """What it changes, as the journal names it (for superseding: the same database)."""
        return str(self.undo.get("db", ""))

    def ready(self) -> bool:
        """False when what it needs (a backup file) is gone."""
        return True

    def describe(self) -> str:
        raise NotImplementedError

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        raise NotImplementedError


def _where(masked: str) -> str:
    """A SQLite database by its path (what an operator recognises), anything else by its masked URL."""
    return masked.split("///", 1)[1] if masked.startswith("sqlite:") else masked


@register
class RestoreDatabase(UndoAction):
    action = "restore_database"
    supersedes = ("downgrade",)

    @property
    def record(self) -> BackupRecord:
        return BackupRecord.from_dict(self.undo["backup"])

    def ready(self) -> bool:
        return Path(self.record.path).is_file()

    def describe(self) -> str:
        r = self.record
        line = f"restore {_where(self.target)} from backup {r.path} ({human_size(r.size)}, sha256 {r.sha256[:12]}...)"
        if r.kind == "pg_dump":
            rows = sum(n for _, n in r.row_counts)
            line += f": revision {r.revision or 'none (1.0.0)'}, {rows} rows in {len(r.row_counts)} tables"
        return line if self.ready() else line + " -- THE BACKUP FILE IS MISSING"

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        return await restore_database(self.record, credentials.resolve(self.target), emit, step=f"undo {self.step}")


@register
class RestoreEnv(UndoAction):
    action = "restore_env"

    @property
    def record(self) -> BackupRecord:
        return BackupRecord.from_dict(self.undo["backup"])

    @property
    def target(self) -> str:
        return str(self.undo.get("path") or self.record.source)

    def ready(self) -> bool:
        return Path(self.record.path).is_file()

    def describe(self) -> str:
        r = self.record
        line = f"restore {self.target} byte for byte from {r.path} (sha256 {r.sha256[:12]}...)"
        return line if self.ready() else line + " -- THE BACKUP FILE IS MISSING"

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        emit(StepStarted(f"undo {self.step}", f"restore {self.target}"))
        sentence = restore_env(self.record, Path(self.target))
        emit(StepFinished(f"undo {self.step}", sentence))
        return sentence


@register
class Downgrade(UndoAction):
    action = "downgrade"

    def describe(self) -> str:
        to = self.undo.get("to")
        line = f"downgrade {_where(self.target)} from {self.undo.get('from')} to {to or 'base'} with Alembic"
        if self.undo.get("drop_version_table"):
            line += ", then remove alembic_version (back to 1.0.0, no revision recorded)"
        return line

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        db = credentials.resolve(self.target)
        to = self.undo.get("to")
        drop = bool(self.undo.get("drop_version_table"))
        step = f"undo {self.step}"
        async with connect(db) as conn:
            async with write_transaction(conn):
                state = await schema.inspect_schema(conn)
                if state.recorded and state.revision != to:
                    await schema.downgrade(conn, to, emit, step=step)
                if drop and state.recorded:
                    await conn.execute(text(f"DROP TABLE {schema.VERSION_TABLE}"))
            after = await schema.inspect_schema(conn)
        if drop:
            if after.recorded or after.matches[:1] != [to]:
                raise StepError(f"after the downgrade {db} is {after.describe()}, not 1.0.0 at {to}")
            sentence = f"downgraded {db}: no revision recorded and its tables match {to}, as before the run"
        else:
            if after.revision != to:
                raise StepError(f"after the downgrade {db} records {after.revision}, not {to}")
            sentence = f"downgraded {db}: alembic_version records {to}, as before the run"
        emit(StepFinished(step, sentence))
        return sentence


def _load_action_modules() -> None:
    for name in ACTION_MODULES:
        importlib.import_module(name)


def plan_rollback(run: Run) -> list[UndoAction]:
    """What rolling `run` back would do, newest change first; Refused when there is nothing to do."""
    _load_action_modules()
    records = run.records()
    if run.state() == ROLLED_BACK:
        when = next(r["ts"] for r in records if r["kind"] == "rolled_back")
        raise Refused(f"run {run.id} was already rolled back at {when}")
    done = {r.get("index") for r in records if r["kind"] == "undo_done"}
    actions: list[UndoAction] = []
    for index in reversed(range(len(records))):
        rec = records[index]
        undo = rec.get("undo") if rec["kind"] == "step_finished" or _cut_short(records, index) else None
        if not undo or index in done:
            continue
        cls = ACTIONS.get(undo.get("action"))
        if cls is None:
            raise StepError(f"run {run.id} journaled an undo '{undo.get('action')}' this wizard does not know: "
                            "roll it back with the wizard version that made it")
        actions.append(cls(undo, rec.get("step", "?"), index))
    if not actions and not done:
        raise Refused(f"run {run.id} changed nothing that can be undone: nothing to roll back")
    return _drop_superseded(actions)


def _cut_short(records: list[dict[str, Any]], index: int) -> bool:
    """A step started, with its undo journalled before it changed anything, that never finished (a kill -9
    between its change and its step_finished): its undo applies, and redoes nothing if nothing changed."""
    rec = records[index]
    return rec["kind"] == "step_started" and not any(
        r["kind"] == "step_finished" and r.get("step") == rec.get("step") for r in records[index + 1:])


def _drop_superseded(actions: list[UndoAction]) -> list[UndoAction]:
    """A ready action makes those it supersedes needless; one that is not ready gives way to them."""
    keep = []
    for a in actions:
        covered_by = [b for b in actions if a.action in b.supersedes and b.target == a.target]
        fallback_for = [b for b in actions if b.action in a.supersedes and b.target == a.target]
        if any(b.ready() for b in covered_by):
            continue
        if not a.ready() and fallback_for:
            continue
        keep.append(a)
    return keep


async def rollback_run(run: Run, emit: Emit, db_override: DbUrl | None = None,
                       env_file: Path | None = None) -> list[str]:
    """Undo `run`, newest change first; returns the verification lines. Holds the state lock."""
    plan_rollback(run)  # refuse early, before taking the lock
    state_dir = run.folder.parent.parent
    credentials = Credentials(db_override, env_file)
    with StateLock(state_dir).acquire(run.id, "rollback"):
        actions = plan_rollback(run)  # again under the lock: the journal cannot move now
        # Every database's password before anything is undone: restoring .env takes away the switched
        # DATABASE_URL that holds the target's, and a missing one is said while nothing has changed.
        for a in actions:
            if a.undo.get("db"):
                credentials.resolve(a.target)
        run.append("rollback_started", actions=[a.describe() for a in actions])
        lines = []
        for a in actions:
            try:
                line = await a.perform(emit, credentials)
            except WizardError as exc:
                run.append("rollback_failed", index=a.index, action=a.action, error=exc.message)
                raise
            run.append("undo_done", index=a.index, action=a.action, verified=line)
            lines.append(line)
        run.append("rolled_back", verified=lines)
        return lines

"""Rollback: walk a run's journal backwards and undo what its steps recorded.

A step journals what undoes it as a dict with an "action" key. Each action name
maps to an UndoAction class that says in one line what it will do and then does
it, returning the sentence that says how the result was checked. A journey adds
its own actions by subclassing UndoAction with @register in a module listed in
ACTION_MODULES.

Before it asks anything, a rollback measures what was written to each database
since the run finished (wizard.rollback.since) and picks its path by that: nothing written
since, the fast path (restore the backup, drop the move's tables); rows written
since, a path that keeps them (downgrade instead of restore; the move's rows carried
back into its source, a SQLite file or a MySQL database), unless the operator chose to restore the backup anyway,
which saves those rows in the run folder first.

The journal keeps URLs masked. A URL that had a password gets it back from --db (the
run's database, or a move's target), PGPASSWORD (MYSQL_PWD for MySQL), or the DATABASE_URL
that names the same database in .env or in the run's copy of .env from before its switch.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import schema
from wizard.backup import (BackupRecord, human_size, processes_holding, restore_database, restore_env, reverted_env,
                           sha256_file)
from wizard.db import connect, quote, write_transaction
from wizard.envfile import database_url
from wizard.errors import RESTORE_ANYWAY, BadInput, Refused, StepError, WizardError
from wizard.events import Emit, StepFinished, StepStarted, Warn
from wizard.journal import FINISHED, ROLLED_BACK, Run, list_runs, rollback_began
from wizard.lock import StateLock
from wizard.mysql import info as mysql_info
from wizard.mysql.scratch import sweep_on
from wizard.pg import other_sessions
from wizard.pooler import find_pooler
from wizard.rollback.saved_rows import DROPPED, WRITTEN_SINCE, save_columns, save_keys, write_lines
from wizard.secrets import MASK, mask
from wizard.rollback.since import CARRIED, END_STATE_STEP, Since, TableSince, differs, measure
from wizard.rollback import untouched
from wizard.urls import DbUrl, parse_url, same_database

# Modules that register undo actions when imported (journeys other than upgrade add theirs here).
ACTION_MODULES: tuple[str, ...] = ("wizard.rollback.undo_move",)

ACTIONS: dict[str, type["UndoAction"]] = {}


def register(cls: type["UndoAction"]) -> type["UndoAction"]:
    ACTIONS[cls.action] = cls
    return cls


@dataclass
class Credentials:
    """Where the passwords the journal masked come back from."""

    db_override: DbUrl | None = None
    env_file: Path | None = None
    env_copies: list[Path] = field(default_factory=list)  # the run's copies of .env as it was before the switch
    _found: dict[str, DbUrl] = field(default_factory=dict, repr=False)

    def with_env_copies(self, run: Run) -> "Credentials":
        """The .env copies `run` took: after a move's switch .env names the target, its copy the source."""
        self.env_copies = [Path(r["undo"]["backup"]["path"]) for r in run.records()
                           if (r.get("undo") or {}).get("action") == "restore_env"]
        return self

    def resolve(self, masked: str) -> DbUrl:
        """The database with its password; found once, so a later undo (.env restored) cannot lose it."""
        if masked not in self._found:
            self._found[masked] = self._resolve(masked)
        return self._found[masked]

    def _resolve(self, masked: str) -> DbUrl:
        db = parse_url(masked, "journal's")
        if self.db_override is not None and not (db.kind != self.db_override.kind and (db.is_sqlite or db.is_mysql)):
            # (a move's source, SQLite or MySQL, is not what --db names: it names the move's target)
            if not same_database(self.db_override, db):
                raise BadInput(f"--db names {self.db_override}, but the run changed {db}: pass that database's URL")
            return self.db_override
        if db.is_sqlite or db.url.password != MASK:
            return db  # no password was in the URL: PGPASSWORD or ~/.pgpass apply as usual
        variable = "MYSQL_PWD" if db.is_mysql else "PGPASSWORD"
        if os.environ.get(variable):
            return DbUrl(db.url.set(password=os.environ[variable]), db.kind)
        for env in ([self.env_file] if self.env_file else []) + self.env_copies:
            from_env = database_url(env) if env.is_file() else None
            if from_env:
                candidate = parse_url(from_env, "DATABASE_URL")
                if same_database(candidate, db) and candidate.url.password:
                    return candidate
        raise BadInput(f"the journal keeps {db} without its password: pass --db with the full URL, "
                       f"or set {variable}")


@dataclass
class RollbackContext:
    """What every action of one rollback knows: the run, what was written since, the operator's choice."""

    run: Run
    since: dict[str, Since] = field(default_factory=dict)  # by the journal's (masked) name of the database
    restore_backup: bool = False  # restore backups even though rows were written since (saved first)

    @property
    def keep_since(self) -> bool:
        """Rows were written since and the rollback must keep them."""
        return not self.restore_backup and any(s.any for s in self.since.values())


class UndoAction:
    """One journaled undo. Subclasses set `action` and implement describe() and perform()."""

    action: ClassVar[str]
    # Actions this one makes needless when it can run (a restored backup brings the revision back too).
    supersedes: ClassVar[tuple[str, ...]] = ()
    # True: it replaces what is there, losing rows written since the run; an action it supersedes that
    # keeps them goes instead when rows were written since.
    loses_since: ClassVar[bool] = False

    def __init__(self, undo: dict[str, Any], step: str, index: int) -> None:
        self.undo = undo
        self.step = step
        self.index = index  # the journal record it came from: how a retried rollback skips what is done
        self.context = RollbackContext(Run("", Path()))

    @property
    def since(self) -> Since | None:
        return self.context.since.get(self.target)

    def needed(self) -> bool:
        """False when this rollback has nothing for it to do (no rows written since to keep)."""
        return True

    @property
    def target(self) -> str:
        """What it changes, as the journal names it (for superseding: the same database)."""
        return str(self.undo.get("db", ""))

    def ready(self) -> bool:
        """False when what it needs (a backup file) is gone."""
        return True

    def describe(self) -> str:
        raise NotImplementedError

    async def foreseen_refusal(self, credentials: Credentials) -> str | None:
        """What this action's own checks will refuse, asked before the operator confirms (None: nothing)."""
        return None

    def refuse_now(self) -> None:
        """Refused, before the plan is shown and before any action of the rollback runs, when this one would be."""

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        raise NotImplementedError


def _where(masked: str) -> str:
    """A SQLite database by its path (what an operator recognises), anything else by its masked URL."""
    return masked.split("///", 1)[1] if masked.startswith("sqlite:") else masked


@register
class RestoreDatabase(UndoAction):
    action = "restore_database"
    supersedes = ("downgrade",)
    loses_since = True

    @property
    def record(self) -> BackupRecord:
        return BackupRecord.from_dict(self.undo["backup"])

    def ready(self) -> bool:
        return Path(self.record.path).is_file()

    def describe(self) -> str:
        r = self.record
        line = f"restore {_where(self.target)} from backup {r.path} ({human_size(r.size)}, sha256 {r.sha256[:12]}...)"
        if r.kind in ("pg_dump", "mysqldump", "mysql_stream"):
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
        # "env_file"; journals written before the one switch (wizard.move.switch) said "path" for a move's
        # (earlier journals kept it as given, maybe relative: the backup's source is the same file, absolute)
        named = str(self.undo.get("env_file") or self.undo.get("path") or "")
        return named if Path(named).is_absolute() else self.record.source

    def ready(self) -> bool:
        return Path(self.record.path).is_file()

    def describe(self) -> str:
        r = self.record
        if not self.ready():
            return f"restore {self.target} byte for byte from {r.path} -- THE BACKUP FILE IS MISSING"
        reverted = reverted_env(r, Path(self.target))
        if reverted is not None:
            return (f"put {', '.join(reverted[1]) or 'nothing'} back in {self.target} as {r.path} has it (the lines "
                    f"the switch wrote); the edits made to it since the switch stay as they are")
        return f"restore {self.target} byte for byte from {r.path} (sha256 {r.sha256[:12]}...)"

    def refuse_now(self) -> None:
        if self.ready():
            reverted_env(self.record, Path(self.target))  # Refused: the operator edited a line the switch wrote

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        emit(StepStarted(f"undo {self.step}", f"restore {self.target}"))
        sentence = restore_env(self.record, Path(self.target))
        emit(StepFinished(f"undo {self.step}", sentence))
        return sentence


def dropped_columns(current: str, to: str | None) -> dict[str, list[str]]:
    """The engine's columns a downgrade from `current` to `to` drops, per table (0002's workflows.tags)."""
    shapes = schema.expected_shapes()
    now, then = shapes.get(current, {}), shapes.get(to, {}) if to else {}
    return {t: sorted(cols - then.get(t, frozenset())) for t, cols in now.items()
            if t in then and cols - then.get(t, frozenset())}


@register
class Downgrade(UndoAction):
    action = "downgrade"

    def describe(self) -> str:
        to = self.undo.get("to")
        line = f"downgrade {_where(self.target)} from {self.undo.get('from')} to {to or 'base'} with Alembic"
        if self.undo.get("drop_version_table"):
            line += ", then remove alembic_version (back to 1.0.0, no revision recorded)"
        dropped = dropped_columns(self.undo.get("from"), to)
        if self.since is not None and self.since.any:
            # MySQL commits each revision's DDL on its own: its upgrade's undo is one action a revision
            how = "committed on its own (MySQL)" if parse_url(self.target).is_mysql else "in one transaction"
            line += f", {how}; the {self.since.rows:,} row(s) written since stay"
            record = self._backup_record()
            if record is not None and self._reaches(record):
                line += f"; then every other row put back as the backup {record.path} holds it"
        if dropped:
            where = self.context.run.folder / DROPPED
            line += (f"; first saves {', '.join(f'{t}.{c}' for t, cs in dropped.items() for c in cs)} "
                     f"(dropped by the downgrade) to {where}")
        return line

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        db = credentials.resolve(self.target)
        to = self.undo.get("to")
        drop = bool(self.undo.get("drop_version_table"))
        step = f"undo {self.step}"
        saved = []
        backup = self._backup() if self.since is not None else None
        if backup is not None and not self._reaches(backup):
            backup = None
        dumped = (await untouched.read_dump(db, backup, self.context.run.folder)
                  if backup is not None and not db.is_sqlite and not db.is_mysql else None)
        try:
            async with contextlib.AsyncExitStack() as stack:
                scratch = (await stack.enter_async_context(untouched.restored_dump(db, backup, self.context.run.folder))
                           if backup is not None and db.is_mysql else None)
                after, put_back = await self._downgrade(db, to, drop, step, backup, dumped, saved, emit)
                if scratch is not None:
                    put_back = await untouched.put_back_mysql(db, self.since, scratch)
        finally:
            if dumped:
                untouched.forget(dumped)
        if drop:
            if after.recorded or after.matches[:1] != [to]:
                raise StepError(f"after the downgrade {db} is {after.describe()}, not 1.0.0 at {to}")
            sentence = f"downgraded {db}: no revision recorded and its tables match {to}, as before the run"
        else:
            if after.revision != to:
                raise StepError(f"after the downgrade {db} records {after.revision}, not {to}")
            sentence = f"downgraded {db}: alembic_version records {to}, as before the run"
        if put_back is not None:
            put, checked = put_back
            sentence += (f"; every row not written since equal to the backup's, value and type, in "
                         f"{', '.join(checked) or 'no table'} (by primary key; {put:,} rewritten by the run put back "
                         f"from {backup.path})")
        if saved:
            sentence += "; " + "; ".join(saved)
        emit(StepFinished(step, sentence))
        return sentence


    async def _downgrade(self, db: DbUrl, to: str | None, drop: bool, step: str, backup: BackupRecord | None,
                         dumped: untouched.Dumped | None, saved: list[str],
                         emit: Emit) -> tuple[schema.SchemaState, tuple[int, list[str]] | None]:
        """The downgrade (and on SQLite and PostgreSQL the put-back, in its transaction); the schema after it."""
        put_back = None
        async with connect(db) as conn:
            if backup is not None and db.is_sqlite:
                await untouched.attach(conn, Path(backup.path))
            async with write_transaction(conn):
                if backup is not None and not db.is_mysql:
                    await self._refuse_written_during(conn, db)
                state = await schema.inspect_schema(conn)
                if state.recorded and state.revision != to:
                    # What the downgrade drops goes to the run folder first, read in its own transaction.
                    for table, columns in dropped_columns(state.revision, to).items():
                        path, n = await save_columns(conn, table, columns, self.context.run.folder)
                        saved.append(f"{n:,} value(s) of {', '.join(f'{table}.{c}' for c in columns)} "
                                     f"saved to {path}")
                    try:
                        await schema.downgrade(conn, to, emit, step=step)
                    except DBAPIError as exc:
                        if db.is_mysql:  # its DDL commits statement by statement: not "nothing changed"
                            raise
                        raise StepError(f"the downgrade of {db} to {to or 'base'} stopped: {_refusal(exc)}: "
                                        f"nothing was changed (one transaction); drop or change what uses a "
                                        f"column the downgrade removes, then roll back again") from None
                if drop and state.recorded:
                    await conn.execute(text(f"DROP TABLE {schema.VERSION_TABLE}"))
                if backup is not None and not db.is_mysql:
                    put_back = await (untouched.put_back(conn, self.since) if dumped is None else
                                      untouched.put_back_pg(conn, self.since, dumped))
            return await schema.inspect_schema(conn), put_back

    def _reaches(self, record: BackupRecord) -> bool:
        """This downgrade leaves the database at the revision of its backup `record`: on MySQL an upgrade is
        undone a revision an action, and only the last leaves rows the backup's can be compared with."""
        if record.kind in ("sqlite", "pg_dump"):
            return True
        return (record.revision is None) if self.undo.get("drop_version_table") else self.undo.get("to") == record.revision

    async def _refuse_written_during(self, conn: AsyncConnection, db: DbUrl) -> None:
        """The rows put back from the backup are those not written since the rollback measured: a row the engine
        changed after that (it connected after the check that nothing was) would be put back over. Inside the
        downgrade's transaction, with writes held off (SQLite's BEGIN IMMEDIATE; PostgreSQL's tables locked, reads
        go on), measured again: StepError, nothing changed, when anything was written in between."""
        since = self.since
        if not db.is_sqlite:
            tables = [t.table for t in since.tables]
            present = [t for t in tables if (await conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"),
                                                                {"t": quote(t)})).scalar()]
            if present:
                await conn.execute(text(f"LOCK TABLE {', '.join(map(quote, present))} IN EXCLUSIVE MODE"))
        written = differs(await measure(db, self.context.run.folder, since.finished, since.journey), since)
        if written:
            raise StepError(f"{_where(self.target)} was written during the rollback ({written}, where it measured "
                            f"{since.rows:,} row(s) written since the run): nothing was changed; stop whatever writes "
                            f"to it, then roll back again (it measures again)", unchanged=True)

    def _backup(self) -> BackupRecord | None:
        """The run's proven backup of this database, when it is there as written (wizard.rollback.untouched)."""
        record = self._backup_record()
        if record is None or not Path(record.path).is_file():
            return None
        return record if sha256_file(Path(record.path)) == record.sha256 else None

    def _backup_record(self) -> BackupRecord | None:
        """The run's journaled backup of this database, of a kind the rows can be put back from."""
        record = next((BackupRecord.from_dict(r["undo"]["backup"]) for r in self.context.run.records()
                       if r["kind"] == "step_finished" and (r.get("undo") or {}).get("action") == "restore_database"
                       and r["undo"].get("db") == self.target), None)
        return record if record is not None and record.kind in ("sqlite", "pg_dump", "mysqldump",
                                                                  "mysql_stream") else None


def _refusal(exc: DBAPIError) -> str:
    """The server's one-line reason, with PostgreSQL's detail (the objects that depend on a column)."""
    said = str(exc.orig).strip().splitlines()[0]
    detail = getattr(exc.orig.__cause__, "detail", None)
    return f"{said} ({' '.join(detail.split())})" if detail else said


@register
class SaveSince(UndoAction):
    """Journaled by a run's end state: when the backup is restored even though rows were written since
    (--restore-backup), those rows are saved to the run folder first, and the plan says how many are lost."""

    action = "save_since"

    def needed(self) -> bool:
        return self.context.restore_backup and self.since is not None and self.since.any

    def describe(self) -> str:
        since = self.since
        rows = since.rows if since else 0
        return (f"save the {rows:,} row(s) written to {_where(self.target)} since the run to "
                f"{self.context.run.folder / WRITTEN_SINCE} ({since.describe() if since else ''}); "
                f"the restore then takes them out of the database")

    async def perform(self, emit: Emit, credentials: Credentials) -> str:
        step = f"undo {self.step}"
        emit(StepStarted(step, f"save the rows written since the run in {self.context.run.folder}"))
        sentence = await save_written_since(credentials.resolve(self.target), self.since, self.context.run.folder)
        emit(StepFinished(step, sentence))
        return sentence


async def save_written_since(db: DbUrl, since: Since | None, folder: Path) -> str:
    """Every row written since (added or changed, whole; removed, by key) to <folder>/written-since/."""
    if since is None or not since.any:
        return "nothing was written since the run: nothing to save"
    saved = 0
    async with connect(db, readonly=db.is_sqlite) as conn:
        for t in since.tables:
            if t.any and t.keyed:
                await save_keys(conn, t.table, t.added + t.changed, t.removed, folder)
                saved += len(t.added) + len(t.changed) + len(t.removed)
    unkeyed = [t.table for t in since.tables if t.any and not t.keyed]
    return (f"saved {saved:,} row(s) written since the run to {folder / WRITTEN_SINCE} (their keys and values; "
            f"removed ones by key)" + (f"; {', '.join(unkeyed)} have no primary key: their rows are counted, "
                                       "not saved" if unkeyed else ""))


def _load_action_modules() -> None:
    for name in ACTION_MODULES:
        importlib.import_module(name)


def plan_rollback(run: Run, context: RollbackContext | None = None) -> list[UndoAction]:
    """What rolling `run` back would do, newest change first; Refused when there is nothing to do.

    Without a `context` (nothing measured), the plan is the journal's: the fast path.
    """
    _load_action_modules()
    context = context or RollbackContext(run)
    records = run.records()
    if run.state() == ROLLED_BACK:
        when = next(r["ts"] for r in records if r["kind"] == "rolled_back")
        raise Refused(f"run {run.id} was already rolled back at {when}")
    _refuse_before_later_runs(run)
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
        action = cls(undo, rec.get("step", "?"), index)
        action.context = context
        actions.append(action)
    if not [a for a in actions if a.action not in _END_STATE_ACTIONS] and not done:
        raise Refused(f"run {run.id} changed nothing that can be undone: nothing to roll back")
    # A run that took its end state again (wizard.rollback.since.record_again) is measured against the newest.
    newest = [a for i, a in enumerate(actions) if a.action not in _END_STATE_ACTIONS
              or not any(b.action in _END_STATE_ACTIONS and b.target == a.target for b in actions[:i])]
    return _since_before_env([a for a in _drop_superseded(newest, context.keep_since) if a.needed()])


# The end state's undo actions: they keep rows written since, and undo nothing of the run themselves.
_END_STATE_ACTIONS = ("save_since", "carry_back")


def changed_databases(run: Run) -> set[str]:
    """The databases `run` journaled an undo for (a move's source and target), as the journal names them (masked)."""
    return {str(rec["undo"][k]) for rec in run.records() if rec.get("undo") for k in ("db", "source")
            if rec["undo"].get(k)}


def _refuse_before_later_runs(run: Run) -> None:
    """A run that changed a database after `run` did, and is not rolled back, is undone first: `run`'s undo
    starts from the database as `run` left it (a downgrade from its revision, its backup restored over the later
    run's changes), and the later run's rollback from the database as it left it."""
    mine = {name: parse_url(name, "journal's") for name in changed_databases(run)}
    began = run.started().get("ts", "")
    later: list[tuple[str, Run, str]] = []  # (when it began, the run, which of run's databases it changed)
    for other in list_runs(run.folder.parent.parent):
        when = other.started().get("ts", "")
        if other.id == run.id or when <= began or other.state() == ROLLED_BACK:
            continue
        theirs = [parse_url(name, "journal's") for name in changed_databases(other)]
        shared = next((name for name, db in mine.items() if any(same_database(db, t) for t in theirs)), None)
        if shared is not None:
            later.append((when, other, shared))
    if later:
        later.sort(key=lambda entry: entry[0], reverse=True)
        _, newest, shared = later[0]
        named = ", then ".join(f"{r.id} ({r.journey})" for _, r, _ in later)
        raise Refused(f"run {newest.id} ({newest.journey}) changed {_where(shared)} after run {run.id} and is not "
                      f"rolled back: nothing was undone; roll back {named} first (`wizard rollback --run "
                      f"{newest.id}`, or Ctrl+R on it in the wizard's Runs screen), then run {run.id}")


def _since_before_env(actions: list[UndoAction]) -> list[UndoAction]:
    """The rows written since are carried back (or saved) before .env points at the source again, as when the
    switch came before the end state (the CLI's move): the TUI switches on its Finish screen, after the end state,
    so newest first would restore .env first, and a carry-back that then stopped would leave the engine on a
    source without those rows."""
    env = next((i for i, a in enumerate(actions) if a.action == "restore_env"), None)
    if env is None:
        return actions
    later = actions[env:]
    return (actions[:env] + [a for a in later if a.action in _END_STATE_ACTIONS]
            + [a for a in later if a.action not in _END_STATE_ACTIONS])


def _cut_short(records: list[dict[str, Any]], index: int) -> bool:
    """A step started, with its undo journalled before it changed anything, that never finished (a kill -9
    between its change and its step_finished): its undo applies, and redoes nothing if nothing changed."""
    rec = records[index]
    return rec["kind"] == "step_started" and not any(
        r["kind"] == "step_finished" and r.get("step") == rec.get("step") for r in records[index + 1:])


def _drop_superseded(actions: list[UndoAction], keep_since: bool) -> list[UndoAction]:
    """A ready action makes those it supersedes needless; one that is not ready gives way to them.
    When rows written since must be kept, an action that would lose them gives way instead."""
    keep = []
    for a in actions:
        covered_by = [b for b in actions if a.action in b.supersedes and b.target == a.target]
        fallback_for = [b for b in actions if b.action in a.supersedes and b.target == a.target]
        if keep_since and a.loses_since and fallback_for:
            continue
        if any(b.ready() and not (keep_since and b.loses_since) for b in covered_by):
            continue
        if not a.ready() and fallback_for:
            continue
        keep.append(a)
    return keep


@dataclass
class RollbackPlan:
    """What a rollback of `run` will do, and why: what was written since, and which path keeps it."""

    run: Run
    actions: list[UndoAction]
    context: RollbackContext
    notes: list[str] = field(default_factory=list)

    @property
    def since(self) -> list[Since]:
        return list(self.context.since.values())

    def path(self) -> str:
        """One sentence: which path, and what it keeps and loses."""
        written = [s for s in self.since if s.any]
        if not self.since and self.run.state() == FINISHED:  # an older wizard's run: no end state to measure by
            return ("what was written since the run finished was not measured (it recorded no end state): "
                    "restoring the backup loses whatever the engine wrote since")
        if not written:
            how = "restore .env and drop the move's tables" if self.run.journey == "move" else "restore the backup"
            said = "; ".join(s.describe() for s in self.since) or "nothing was written since the run finished"
            return f"{said}: the fast path ({how}) loses nothing"
        rows = sum(s.rows for s in written)
        if self.context.restore_backup:
            # Said on the TUI's confirmation too, which offers this as a key: no flag's name in it.
            return (f"the {rows:,} row(s) written since are saved to {self.run.folder / WRITTEN_SINCE} first, then "
                    "the backup is restored and the database loses them")
        if self.run.journey == "move":
            source = next((a.undo["source"] for a in self.actions if a.action == "carry_back"), "sqlite:")
            into = "the SQLite file" if source.startswith("sqlite:") else "the MySQL database"
            return (f"the {rows:,} row(s) written since are carried back into {into}, and checked row by "
                    "row, before .env points at it again")
        return f"the {rows:,} row(s) written since are kept: undone by the revisions' downgrades, not the backup"

    def restoring_backup(self) -> "RollbackPlan":
        """The same rollback restoring the backups anyway (--restore-backup), from the same measurement."""
        context = RollbackContext(self.run, self.context.since, restore_backup=True)
        return RollbackPlan(self.run, plan_rollback(self.run, context), context, self.notes)

    def lines(self) -> list[str]:
        """The confirmation's text, before the numbered actions."""
        # With nothing written anywhere the path says so itself, naming each database: said once, not twice.
        written = any(s.any for s in self.since)
        return [*(mask(s.describe()) for s in self.since if written), *self.notes, mask(self.path())]

    def described(self) -> list[str]:
        return [mask(a.describe()) for a in self.actions]

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run.id, "journey": self.run.journey, "since": [s.to_dict() for s in self.since],
                "notes": self.notes, "path": self.path(), "restore_backup": self.context.restore_backup,
                "actions": self.described()}


SINCE_FILE = "rollback-since.json"  # what was measured when the rollback began: a retried one goes on with it


async def prepare_rollback(run: Run, credentials: Credentials | None = None,
                           restore_backup: bool = False) -> RollbackPlan:
    """Measure what was written since `run`, refuse while anything still uses its databases, and plan.

    Refused: the run was rolled back already, has nothing to undo, a database is in use, or it
    recorded no end state (an older wizard) and rows written since could not be measured.
    """
    credentials = (credentials or Credentials()).with_env_copies(run)
    plan_rollback(run)  # the journal's refusals first
    records = run.records()
    began = rollback_began(records)
    await _refuse_if_in_use(run, credentials)
    context = RollbackContext(run, restore_backup=restore_backup)
    notes: list[str] = []
    if began:  # a rollback that stopped part-way goes on as it began, with what it measured then
        first = began[0]
        if bool(first.get("restore_backup")) != restore_backup:
            raise Refused(f"the rollback of run {run.id} began {'with' if first.get('restore_backup') else 'without'} "
                          f"--restore-backup: finish it the same way",
                          remedy=RESTORE_ANYWAY if first.get("restore_backup") else None)
        context.since = load_since(run)
        notes.append(f"this rollback began at {first['ts']} and goes on from where it stopped")
    else:
        ends = {rec["undo"]["db"]: rec["ts"] for rec in records  # the newest end state of each database
                if rec["kind"] == "step_finished" and rec.get("step") == END_STATE_STEP and rec.get("undo")}
        for masked, finished in ends.items():
            context.since[masked] = await measure(credentials.resolve(masked), run.folder, finished, run.journey)
        if not context.since and run.state() == FINISHED and not restore_backup:
            raise Refused(f"run {run.id} recorded no end state (an older wizard made it): what the engine wrote "
                          f"since cannot be measured, and a rollback would lose it; compare the database yourself, "
                          f"then pass --restore-backup to roll back anyway", remedy=RESTORE_ANYWAY)
        if not context.since and run.state() != FINISHED:
            notes.append(f"run {run.id} did not finish: the engine was never handed its database")
        _refuse_losing_since(run, context)
    actions = plan_rollback(run, context)
    for action in actions:
        action.refuse_now()
    for action in actions:
        refusal = await action.foreseen_refusal(credentials)
        if refusal:
            notes.append(f"as things stand it will stop before changing anything: {refusal}")
    return RollbackPlan(run, actions, context, notes)


def _refuse_losing_since(run: Run, context: RollbackContext) -> None:
    """A move whose end state only saves (a move off MySQL made by an earlier wizard, which journaled no carry-back)
    would drop the rows written to its target since: refused, unless --restore-backup saves them first."""
    saves_only = any(r["kind"] == "step_finished" and r.get("step") == END_STATE_STEP
                     and (r.get("undo") or {}).get("action") == "save_since" for r in run.records())
    if run.journey == "move" and saves_only and context.keep_since:
        rows = sum(s.rows for s in context.since.values())
        raise Refused(f"{rows:,} row(s) were written to the target since move {run.id}, and a move off MySQL cannot "
                      f"carry them back into it: nothing was undone; pass --restore-backup to save them to the run "
                      f"folder and roll back anyway", remedy=RESTORE_ANYWAY)


def save_since(run: Run, context: RollbackContext) -> None:
    """Every key measured, fsynced to the run folder before anything is undone (a retried rollback reads it)."""
    data = {name: {"where": s.where, "finished": s.finished, "journey": s.journey,
                   "tables": [{"table": t.table, "keyed": t.keyed, "added": t.added, "changed": t.changed,
                               "removed": t.removed} for t in s.tables]}
            for name, s in context.since.items()}
    write_lines(run.folder / SINCE_FILE, [data])


def load_since(run: Run) -> dict[str, Since]:
    path = run.folder / SINCE_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8", errors="surrogatepass"))
    return {name: Since(s["where"], s["finished"], [TableSince(**t) for t in s["tables"]], s["journey"])
            for name, s in data.items()}


async def _refuse_if_in_use(run: Run, credentials: Credentials) -> None:
    """Rows written while the rollback runs would be lost: no other session on a database it changes."""
    for masked in sorted(changed_databases(run)):
        db = credentials.resolve(masked)
        if db.is_sqlite:
            holders = processes_holding(db.sqlite_path) if db.sqlite_path.exists() else []
            if holders:
                raise Refused(f"{db.sqlite_path} is open in process {', '.join(holders)}: stop the engine, "
                              f"then roll back again")
        else:
            others = await (mysql_info.other_sessions(db) if db.is_mysql
                            else other_sessions(db, busy_only=await find_pooler(db) is not None))
            if others:
                raise Refused(f"database {db.database} has other sessions connected: {'; '.join(others[:3])}"
                              f"{f' and {len(others) - 3} more' if len(others) > 3 else ''}: stop the engine "
                              f"(rows it writes during the rollback would be lost), then roll back again")


async def rollback_run(run: Run, emit: Emit, db_override: DbUrl | None = None, env_file: Path | None = None,
                       restore_backup: bool = False, expected: list[str] | None = None) -> list[str]:
    """Undo `run`, newest change first; returns the verification lines. Holds the state lock.

    `expected`: the actions as the operator confirmed them (RollbackPlan.described); refused if the
    plan made under the lock differs (the engine wrote meanwhile).
    """
    plan_rollback(run)  # refuse early, before taking the lock
    state_dir = run.folder.parent.parent
    credentials = Credentials(db_override, env_file).with_env_copies(run)
    with StateLock(state_dir).acquire(run.id, "rollback"):
        # Every database's password before anything is undone: restoring .env takes away the switched
        # DATABASE_URL that holds the target's, and a missing one is said while nothing has changed.
        dbs = {credentials.resolve(rec["undo"][key]) for rec in run.records() for key in ("db", "source")
               if rec.get("undo") and rec["undo"].get(key)}
        plan = await prepare_rollback(run, credentials, restore_backup)  # again under the lock
        if expected is not None and plan.described() != expected:
            raise Refused(f"what rolling back run {run.id} would do changed since it was shown (the database was "
                          f"written meanwhile): nothing was undone; look at the plan again")
        for db in dbs:
            swept = await sweep_on(db, run.folder) if db.is_mysql else None  # what the run, killed mid-proof, left
            if swept:
                emit(Warn("rollback", swept))
        if not rollback_began(run.records()):
            save_since(run, plan.context)
            # A carry-back's record from an attempt that changed nothing: this one's proof records its own.
            shutil.rmtree(run.folder / CARRIED, ignore_errors=True)
        run.append("rollback_started", actions=plan.described(), since=[s.to_dict() for s in plan.since],
                   restore_backup=restore_backup)
        lines = []
        for a in plan.actions:
            try:
                line = await a.perform(emit, credentials)
            except WizardError as exc:
                undone = any(r["kind"] == "undo_done" for r in run.records())
                run.append("rollback_refused" if isinstance(exc, Refused) and not undone else "rollback_failed",
                           index=a.index, action=a.action, error=exc.message,
                           **({"unchanged": True} if exc.unchanged and not undone else {}))
                raise
            run.append("undo_done", index=a.index, action=a.action, verified=line)
            lines.append(line)
        run.append("rolled_back", verified=lines)
        return lines

"""The move journey: the engine's SQLite database to PostgreSQL, end to end, as one resumable service call.

Pre-flight checks, backup (source and .env), the target's schema at the source's
revision, the copy (wizard.move.copy), indexes and foreign keys, sequences, row counts and
the row-level verification (wizard.verify.run), the .env switch, the settings move, an
optional upgrade, and the report. Each step is journalled with what undoes it; a
resumed run skips the steps its journal shows finished and carries the copy on
from its checkpoints. The source is only ever opened read-only.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import asyncpg
from sqlalchemy.exc import DBAPIError

from wizard import envfile, schema
from wizard.rollback import since
from wizard.move import switch, target_schema
from wizard.verify import report as verify_report
from wizard.backup import BackupRecord, backup_database, backup_env, needs_proof, prove_sqlite_copy
from wizard.move.copy import CHUNK_ROWS, TableCopy, copy_table, load_checkpoints
from wizard.db import check_sqlite_file, connect, quote
from wizard.errors import BadInput, Interrupted, Refused, StepError, WizardError
from wizard.events import Emit, StepFinished, StepStarted, StopRequest, Warn, ignore
from wizard.journal import (FAILED, FINISHED, INTERRUPTED, RUNNING, Run, list_runs, new_run, new_run_id, now_iso,
                            resolve_state_dir)
from wizard.lock import StateLock
from wizard.pg import connect_pg
from wizard.pooler import find_pooler
from wizard.target_lock import target_lock
from wizard.move.preflight import PreflightReport, backup_room, check_target_kind, run_checks
from wizard.move.report import RunReport, TableRow, write
from wizard.move.scan import ABORT, POLICIES, RowActions
from wizard.move.normalize import takes
from wizard.move.settings import KEPT_WHY as settings_kept_why, move_openai_key
from wizard.move.tables import SourceTable
from wizard.move.target_schema import TargetSchema, target_kinds
from wizard.urls import DbUrl
from wizard.verify.run import VerifyReport, verify_run

JOURNEY = "move"
PROOF_STEP = "backup_check"
PROOF_NICE = 10  # the backup's deferred check yields the CPU to the copy and the verification


JOBS = range(1, 17)  # how many tables may be copied, and indexes built, at once: what each face offers


@dataclass
class MoveOptions:
    source: DbUrl
    target: DbUrl
    state_dir: Path | None = None
    to: str | None = None  # upgrade the target to this revision after the move ("head"); None: stay
    yes: bool = False  # no question before writing (else `confirm` is asked)
    resume: bool = False
    jobs: int = 2  # tables copied, and indexes built, at once
    on_orphans: str | None = None  # abort | null | quarantine; None: abort, or what the resumed run used
    env_file: Path | None = None  # switch DATABASE_URL in it, and move OPENAI_API_KEY out of it
    reflected: bool = False  # a source with none of the engine's tables: its tables copied as they are
    confirm: Callable[[PreflightReport], Awaitable[bool] | bool] | None = None
    chunk_rows: int = CHUNK_ROWS


# The note of a move given no .env: a face that offers the switch itself (the TUI's Finish screen) leaves it out.
NOT_SWITCHED = "no --env-file: DATABASE_URL was not switched; point the engine at the target yourself"


@dataclass
class MoveResult:
    run_id: str
    state: str
    report: RunReport
    report_json: Path
    report_md: Path
    preflight: PreflightReport | None = field(default=None, repr=False)
    verification: VerifyReport | None = field(default=None, repr=False)  # the row-level verification, when run

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "state": self.state, "report_json": str(self.report_json),
                "report_md": str(self.report_md), **self.report.to_dict(),
                **({"verification": self.verification.to_dict()} if self.verification else {})}


def source_fingerprint(path: Path) -> dict[str, Any]:
    """What the source file looks like now: any commit to it changes one of these.

    Size and mtime of the file and of its WAL, and SQLite's file change counter
    (header bytes 24-27, bumped by every commit outside WAL mode). Cheap on any size;
    the backup records the file's sha256 as well.
    """
    st = path.stat()
    with open(path, "rb") as f:
        header = f.read(100)
    wal = Path(f"{path}-wal")
    # A reader of a WAL database makes an empty -wal if there is none: empty counts as none.
    wal_state = [wal.stat().st_size, wal.stat().st_mtime_ns] if wal.exists() and wal.stat().st_size else None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "change_counter": int.from_bytes(header[24:28], "big"),
            "wal": wal_state}


def shown_key(key: Any) -> str:
    """An example key as the refusal and the screens name it (a NULL key as NULL). A character that does not print
    (a newline, ESC, NUL: the source's data, not the wizard's) is spelled as Python escapes it, so the line stays
    one line that says what the key holds, and no escape sequence reaches the terminal."""
    if key is None:
        return "NULL"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(key))


def resume_command(options: MoveOptions, policy: str) -> str:
    parts = ["wizard migrate", f"--source {options.source.masked()}", f"--target {options.target.masked()}"]
    if options.env_file:
        parts.append(f"--env-file {options.env_file}")
    if options.state_dir:
        parts.append(f"--state-dir {options.state_dir}")
    if options.to:
        parts.append(f"--to {options.to}")
    if options.reflected:
        parts.append("--reflected")
    parts += [f"--on-orphans {policy}", "--resume"]
    return " ".join(parts)


def _source_id(source: DbUrl) -> str:
    """The source as a run's journal names it: a SQLite file's absolute path, a server's masked URL."""
    return str(source.sqlite_path.absolute()) if source.is_sqlite else source.masked()


def _find_resumable(state_dir: Path, options: MoveOptions) -> Run:
    source = _source_id(options.source)
    for run in reversed(list_runs(state_dir)):
        started = run.started()
        if (run.journey == JOURNEY and run.state() in (RUNNING, INTERRUPTED, FAILED)
                and started.get("source_path") == source and started.get("target") == options.target.masked()):
            return run
    raise BadInput(f"no unfinished move from {options.source.masked()} to {options.target.masked()} in {state_dir}: "
                   f"run without --resume, or pass the --state-dir the move used")


async def run_move(options: MoveOptions, emit: Emit = ignore, stop: StopRequest | None = None) -> MoveResult:
    """Move the source to the target (see the module's docstring); Interrupted when `stop` is set mid-way."""
    if not (options.source.is_sqlite or options.source.is_mysql):
        raise BadInput("the source of a move must be the engine's SQLite file (sqlite:///path/to/file.db) or its "
                       "MySQL/MariaDB database (mysql://user@host:3306/dbname)")
    if options.source.is_mysql and options.reflected:
        raise BadInput("--reflected copies a SQLite file's own tables; a MySQL source moves the engine's tables: "
                       "leave --reflected out")
    check_target_kind(options.target)
    if options.jobs not in JOBS:
        raise BadInput(f"--jobs must be {JOBS[0]} to {JOBS[-1]}")
    if options.on_orphans is not None and options.on_orphans not in POLICIES:
        raise BadInput(f"--on-orphans must be one of {', '.join(POLICIES)}")
    if options.to is not None:
        if options.reflected:
            raise BadInput("--to upgrades the engine's schema, and a --reflected copy has none: leave --to out")
        schema.resolve_revision(options.to)
    if options.env_file is not None and not options.env_file.is_file():
        why = "is not a file" if options.env_file.exists() else "does not exist"  # /dev/null, a pipe: no .env to switch
        raise BadInput(f"{options.env_file} {why}: pass the engine's .env with --env-file, or leave it out")
    # Bad input is said before any run exists (exit 2, nothing written, no journal), not found mid-move:
    # a source that is no SQLite file, a .env the switch could not rewrite, a target that does not let us in.
    if options.source.is_sqlite:
        check_sqlite_file(options.source)
    else:
        async with connect(options.source):  # a MySQL source that does not let us in
            pass
    if options.env_file is not None:
        envfile.check_rewritable(options.env_file)
    ready, locked, journey = _sides(options.source, options.target)
    await ready(options.target)  # it answers, and lets a transaction through (MySQL: keeps every character)
    state_dir = resolve_state_dir(options.state_dir)
    stop = stop or StopRequest()
    resumed = _find_resumable(state_dir, options) if options.resume else None
    recorded = resumed.started().get("policy") if resumed else None
    if recorded and options.on_orphans and options.on_orphans != recorded:
        raise Refused(f"run {resumed.id} copies with --on-orphans {recorded}: resume it with the same")
    run_id = resumed.id if resumed else new_run_id()
    lock = StateLock(state_dir).acquire(run_id, JOURNEY)  # before the run exists: a refusal leaves no trace
    try:
        # The target's lock too: a second move to it is refused with no run journaled, and a resumed run
        # stays as it was.
        async with locked(options.target, f"wizard move {run_id}") as lock_conn:
            run = resumed or new_run(
                state_dir, JOURNEY, run_id=run_id, source=options.source.absolute().masked(),
                source_path=_source_id(options.source), target=options.target.masked(),
                database=options.target.database, policy=options.on_orphans or ABORT, to=options.to,
                env_file=str(options.env_file.absolute()) if options.env_file else None,
                reflected=options.reflected, jobs=options.jobs)
            return await _journaled(journey(run, options, emit, stop), lock_conn)
    finally:
        lock.release()


def _sides(source: DbUrl, target: DbUrl) -> tuple[Callable, Callable, type[_Move]]:
    """For the source's and target's kinds: the target's check before a run exists, its lock (with a session on
    it), the steps. The MySQL moves build on this module's _Move, hence imported here."""
    if target.is_mysql:
        from wizard.mysql import move_onto

        return move_onto.ready, move_onto.held, move_onto.MoveOntoMySQL
    if source.is_mysql:
        from wizard.mysql.move_off import MoveOffMySQL

        return find_pooler, target_lock, MoveOffMySQL
    return find_pooler, target_lock, _Move


async def _journaled(move: _Move, lock_conn: asyncpg.Connection) -> MoveResult:
    """The move, its end journaled whatever it is; errors become one line that says how to resume."""
    run, options = move.run, move.options
    try:
        return await move.go(lock_conn)
    except Interrupted as exc:
        run.finish(INTERRUPTED, error=exc.message)
        raise Interrupted(f"{exc.message}: resume with: {resume_command(options, move.policy)}") from None
    except WizardError as exc:
        run.step_failed(move.step, exc.message)
        run.finish(FAILED, error=exc.message)
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, DBAPIError) as exc:  # DBAPIError: MySQL's
        message = f"{move.step}: {_describe_failure(exc)}"
        run.step_failed(move.step, message)
        run.finish(FAILED, error=message)
        raise StepError(f"{message}: resume with: {resume_command(options, move.policy)}") from None
    except (asyncio.CancelledError, KeyboardInterrupt):  # the chunk in hand was rolled back
        run.finish(INTERRUPTED, error="cancelled")
        raise
    except Exception as exc:  # a bug: said in one line, the journal keeps it, the cause stays chained
        message = f"{move.step}: unexpected {type(exc).__name__}: {exc}".splitlines()[0]
        run.step_failed(move.step, message)
        run.finish(FAILED, error=message)
        raise StepError(f"{message} (a bug in the wizard: report it with {run.journal_path})") from exc


# What a network (not this machine's disk) says when the target goes away.
_NETWORK_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT, errno.ECONNABORTED}


def _describe_failure(exc: BaseException) -> str:
    """A failure in words: a lost connection (a restart, a network), what the server refused, or this
    machine's own (a full disk under the state directory is no lost connection)."""
    said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) \
            and exc.errno not in _NETWORK_ERRNOS:
        return f"this machine refused: {said}"
    lost = isinstance(exc, (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                            asyncpg.AdminShutdownError, asyncpg.CannotConnectNowError))
    return f"lost the connection to the target ({said})" if lost else f"the target refused: {said}"


def _done_steps(run: Run) -> set[str]:
    """The steps the journal shows finished (a backup discarded after a refusal does not count)."""
    done: set[str] = set()
    for r in run.records():
        if r["kind"] == "step_finished":
            done.add(r["step"])
        elif r["kind"] == "backup_discarded":
            done.discard("backup")
    return done


class _Move:
    copy_order = "parents before children"  # how the copy step says it goes
    proof_name = "integrity_check"  # the backup's deferred check, as the backup_check step names it
    proof_failed = "the source itself may be damaged"  # what a backup failing it means
    reader_class: Any = None  # the copy's reader of another source (wizard.mysql.move_off); None: SQLite's

    def __init__(self, run: Run, options: MoveOptions, emit: Emit, stop: StopRequest) -> None:
        self.run, self.options, self.emit, self.stop = run, options, emit, stop
        started = run.started()
        self.policy = options.on_orphans or (started.get("policy") if options.resume else None) or ABORT
        self.step = "preflight"
        self.timings: dict[str, float] = {}
        self.done = _done_steps(run)
        self.started_at = started.get("ts", now_iso())
        self.notes: list[str] = []
        self.verification: VerifyReport | None = None
        self.env_file = options.env_file or (Path(started["env_file"]) if options.resume and started.get("env_file")
                                             else None)
        self.to = options.to or (started.get("to") if options.resume else None)
        self.proof: asyncio.Future | None = None  # the backup's deferred check, running beside the move
        self.proof_stop = threading.Event()
        self.early_end_state: asyncio.Task | None = None  # recorded beside the verification (_end_state_beside)

    def _begin(self, step: str, title: str, **fields: Any) -> float:
        self.step = step
        self.run.step_started(step, title, **fields)
        return time.monotonic()

    def _end(self, step: str, began: float, undo: dict[str, Any] | None = None, **fields: Any) -> None:
        self.timings[step] = time.monotonic() - began
        self.run.step_finished(step, undo=undo, seconds=round(self.timings[step], 3), **fields)
        self.done.add(step)

    async def go(self, lock_conn: asyncpg.Connection) -> MoveResult:
        o = self.options
        if "report" in self.done:  # everything was done; the process died before it said so
            return await self._finish(lock_conn)
        if o.resume:
            self.run.append("run_resumed", pid=os.getpid(), policy=self.policy)
        report, backup = await self._checks_and_backup()
        self.proof = self._prove_backup(backup["database"])
        try:
            return await self._after_backup(lock_conn, report, backup)
        finally:
            self.proof_stop.set()  # a run that ends before the switch needs the proof no more
            if self.proof is not None and self.proof.done() and not self.proof.cancelled():
                self.proof.exception()  # said already, or moot: the run failed first
            elif self.proof is not None:  # a MySQL dump's restore: stopped, its scratch database dropped
                self.proof.cancel()
                await asyncio.gather(self.proof, return_exceptions=True)
            if self.early_end_state is not None:  # a run that failed first: its end state is no one's
                self.early_end_state.cancel()
                await asyncio.gather(self.early_end_state, return_exceptions=True)
            if since.END_STATE_STEP not in self.done:
                (self.run.folder / since.END_STATE).unlink(missing_ok=True)

    async def _after_backup(self, lock_conn: asyncpg.Connection, report: PreflightReport,
                            backup: dict[str, Any]) -> MoveResult:
        o = self.options
        names = target_schema.renames(report.tables)
        self.notes += [f"{a} is {b} in the target (PostgreSQL keeps 63 bytes of a name)" for a, b in names.items()]
        self.notes += [n.line() for n in report.not_carried]
        self._stop_point("schema")
        target = await self._schema(lock_conn, report)
        copies = await self._copy(report, target)
        if await self._fingerprint() != self.fingerprint:
            raise StepError(f"the source {self._source_kind()} changed during the copy (an app wrote to it): stop the "
                            f"engine, roll this run back (wizard rollback --run {self.run.id}) and move again")
        # The indexes are built while the rows are verified (they need only the keys, there since the schema
        # step); the verification's schema check waits for them. Its own connection counts and sets sequences.
        conns = await self._connections(max(1, o.jobs) + 1)
        indexes = None
        try:
            sequences = await self._sequences(conns[0], report.tables)
            indexes = asyncio.create_task(self._indexes(conns[1:], target, report.tables))
            self.early_end_state = self._end_state_beside(indexes, target)
            rows = await self._verify(conns[0], copies, report.tables, indexes)
        finally:
            if indexes is not None:
                indexes.cancel()  # done already, unless the verification failed first
                await asyncio.gather(indexes, return_exceptions=True)
            for c in conns:
                await c.close()
        await self._backup_proven()
        await self._switch(backup)
        changed = await self._settings()
        upgraded = await self._upgrade(target)
        await self._end_state(backup, target, changed)
        began = self._begin("report", "write the report")
        report_data = RunReport(
            self.run.id, JOURNEY, o.source.masked(), o.target.masked(), FINISHED, self.started_at, now_iso(),
            self.policy, target.revision, upgraded, dict(self.timings), rows,
            str(self.run.folder / "quarantine") if any(r.quarantined for r in rows) else None, sequences, self.notes,
        )
        if names:
            report_data.sections["names"] = names
        if self.verification is not None:
            report_data.sections.update(verify_report.run_sections(self.verification))
        self.timings["report"] = time.monotonic() - began
        report_data.timings = dict(self.timings)
        json_path, md_path = write(report_data, self.run.folder)
        self._end("report", began, report=str(json_path))
        totals = report_data.totals
        self.emit(StepFinished("report", f"moved {totals['copied']:,} rows ({totals['quarantined']:,} in quarantine); "
                                         f"report: {md_path}", {"report": str(json_path)}))
        result = await self._finish(lock_conn)
        result.preflight = report
        result.verification = self.verification
        return result

    async def _finish(self, lock_conn: asyncpg.Connection) -> MoveResult:
        """Drop the move's bookkeeping from the target, and close the run."""
        await target_schema.forget(lock_conn)
        json_path = self.run.folder / "report.json"
        self.run.finish(FINISHED, report=str(json_path))
        return MoveResult(self.run.id, FINISHED, RunReport.load(json_path), json_path, self.run.folder / "report.md")

    async def _fingerprint(self) -> dict[str, Any]:
        return source_fingerprint(self.options.source.sqlite_path)

    def _copy_source(self) -> Any:
        """What the copy's reader reads (its `path`)."""
        return self.options.source.sqlite_path

    def _stop_point(self, step: str) -> None:
        if self.stop.is_set():
            raise Interrupted(f"stopped before the {step} step ({self.stop.reason})")

    # --- the steps ---

    async def _preflight(self) -> PreflightReport:
        o = self.options
        began = self._begin("preflight", "pre-flight checks")
        fingerprint = await self._fingerprint()
        recorded = next((r for r in self.run.records() if r["kind"] == "source_fingerprint"), None)
        if recorded is None:
            self.run.append("source_fingerprint", **fingerprint)
        elif {k: recorded.get(k) for k in fingerprint} != fingerprint:
            raise Refused(f"the source {self._source_kind()} changed since run {self.run.id} began (an app wrote to "
                          f"it?): its copy cannot be resumed; roll it back (wizard rollback --run {self.run.id}) and "
                          f"move again")
        self.fingerprint = fingerprint
        report = await run_checks(o.source, o.target, self.emit, state_dir=o.state_dir,
                                  resume_run=self.run.id if o.resume else None, reflected=o.reflected, to=self.to)
        failed = report.failed
        if failed:
            raise Refused(f"pre-flight check '{failed[0].name}' failed: {failed[0].reason}")
        if self.policy == ABORT and report.affected.get(ABORT):
            problems = report.problems()
            for f in problems:
                self.emit(Warn("preflight", f"{f.table}.{f.column}: {f.count:,} row(s) {f.problem} "
                                            f"(e.g. {', '.join(map(shown_key, f.examples))})"))
            first = problems[0]
            raise Refused(f"{report.affected[ABORT]:,} row(s) {report.server} will not take as they are (listed above; "
                          f"first {first.table}.{first.column} at key {shown_key(first.examples[0])}: {first.problem}); "
                          f"nothing was written: choose --on-orphans quarantine or null, or fix the source")
        if not o.yes and "schema" not in self.done:
            answer = o.confirm(report) if o.confirm else False
            if inspect.isawaitable(answer):
                answer = await answer
            if not answer:
                raise Refused("the move was not confirmed: nothing was written (pass --yes to move without asking)")
        self._end("preflight", began, checks=[c.__dict__ for c in report.checks], affected=report.affected,
                  findings=[f.to_dict() for f in report.scan])
        return report

    async def _checks_and_backup(self) -> tuple[PreflightReport, dict[str, Any]]:
        """The checks, and the backup alongside their data scan: both only read the source.

        The backup is kept only when the checks let the move go on; a refusal removes it, so a
        refused move leaves nothing behind but its journal.
        """
        free, need = backup_room(self.options.source, self.run.folder)
        # One thing at a time when a question goes to the terminal, and when the backup would not fit
        # (the checks refuse first, rather than the backup filling the disk beside them).
        if "backup" in self.done or not self.options.yes or free < need:
            report = await self._preflight()
            self._stop_point("backup")
            return report, await self._backup()
        backup = asyncio.create_task(self._backup())
        try:
            report = await self._preflight()
        except BaseException:
            self.step = "preflight"
            await self._discard(backup)
            raise
        return report, await backup

    async def _discard(self, backup: asyncio.Task) -> None:
        try:
            records = await backup
        except BaseException:  # it failed too (or was stopped): nothing to keep
            return
        removed = [record["path"] for record in records.values() if record]
        for path in removed:
            Path(path).unlink(missing_ok=True)
        self.run.append("backup_discarded", why="the checks did not let the move go on")
        # Its "backup ..." line was said already: say it is gone, lest an operator count on it.
        self.emit(Warn("backup", f"removed the backup {' and '.join(removed)} (made beside the checks, which did "
                                 "not let the move go on)"))
        self.done.discard("backup")

    async def _backup(self) -> dict[str, Any]:
        """The source's and .env's backups (their records, from this run or the journal of an earlier one)."""
        if "backup" in self.done:
            finished = [r for r in self.run.finished_steps() if r["step"] == "backup"][-1]
            return {"database": finished.get("backup"), "env": finished.get("env_backup")}
        began = self._begin("backup", "back up the source and .env")
        db_record = await backup_database(self.options.source, self.run.folder, self.emit, defer_check=True)
        env_record = backup_env(self.env_file, self.run.folder) if self.env_file else None
        records = {"database": db_record.to_dict(), "env": env_record.to_dict() if env_record else None}
        self._end("backup", began, backup=records["database"], env_backup=records["env"])
        return records

    def _prove_backup(self, record: dict[str, Any]) -> asyncio.Future | None:
        """The backup's integrity_check it deferred (wizard.backup.prove_sqlite_copy), started now in a thread of
        its own at a lower CPU priority, so it takes what the copy leaves of the cores; awaited before the switch."""
        if PROOF_STEP in self.done or not needs_proof(BackupRecord.from_dict(record)):
            return None
        loop = asyncio.get_running_loop()
        proved = loop.create_future()

        def settle(result: str | None, error: BaseException | None) -> None:
            if not proved.done() and not self.proof_stop.is_set():  # a stopped proof's end is no one's concern
                proved.set_exception(error) if error is not None else proved.set_result(result)

        def work() -> None:
            if sys.platform == "linux":  # a thread's own nice value (elsewhere the id would name a process)
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PROOF_NICE)
            try:
                result, error = prove_sqlite_copy(BackupRecord.from_dict(record), self.proof_stop), None
            except BaseException as exc:
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:
                pass  # the loop is gone: the run ended before the proof did, and needs it no more

        threading.Thread(target=work, name="backup proof", daemon=True).start()
        return proved

    async def _backup_proven(self) -> None:
        """Wait for the backup's deferred check: a backup that does not pass it leaves the target unswitched."""
        if self.proof is None:
            return
        began = self._begin(PROOF_STEP, f"wait for the backup's {self.proof_name}")
        self.emit(StepStarted(PROOF_STEP, f"the backup's {self.proof_name} (running since the backup was taken)"))
        try:
            said = await self.proof
        except StepError as exc:
            raise StepError(f"{exc.message}: {self.proof_failed}; the target was not switched to "
                            f"(wizard rollback --run {self.run.id} drops it)") from None
        self._end(PROOF_STEP, began, check=said)
        self.emit(StepFinished(PROOF_STEP, f"backup proven: {said}", {"check": said}))

    async def _schema(self, lock_conn: asyncpg.Connection, report: PreflightReport) -> TargetSchema:
        o = self.options
        existing = await target_schema.load(lock_conn, self.run.id)
        if existing is not None:
            if "schema" not in self.done:  # made, then the process died before the journal said so
                self._end("schema", time.monotonic(), undo=self._drop_undo(existing), tables=existing.tables)
            return existing
        began = self._begin("schema", f"create the target's schema at revision {report.source_revision}"
                            if report.source_revision else "create the source's tables as they are (--reflected)")
        made = await target_schema.create(o.target, report.source_revision or "", report.tables, self.run.id,
                                          self.fingerprint, self.emit)
        self._end("schema", began, undo=self._drop_undo(made), tables=made.tables, revision=made.revision)
        return made

    def _drop_undo(self, made: TargetSchema) -> dict[str, Any]:
        return target_schema.drop_tables_undo(self.options.target, made.tables)

    def _source_kind(self) -> str:
        """How the refusals name the source: a SQLite file, a MySQL database."""
        return "database" if self.options.source.is_mysql else "file"

    async def _connections(self, n: int) -> list[asyncpg.Connection]:
        conns = []
        for _ in range(n):
            conns.append(await connect_pg(self.options.target, f"wizard move {self.run.id}"))
        return conns

    async def _copy(self, report: PreflightReport, target: TargetSchema) -> list[TableCopy]:
        tables = report.tables
        total = sum(report.rows.values())
        began = self._begin("copy", f"copy {len(tables)} tables, {total:,} rows")
        self.emit(StepStarted("copy", f"copy {len(tables)} tables ({total:,} rows), {self.copy_order}"))
        states = await self._copy_tables(report)
        copies = [states[t.name] for t in tables]
        copied, quarantined = sum(c.copied for c in copies), sum(c.quarantined for c in copies)
        self._end("copy", began, tables=[c.to_dict() for c in copies])
        self.emit(StepFinished("copy", f"copied {copied:,} rows, {quarantined:,} in quarantine",
                               {"tables": [c.to_dict() for c in copies]}))
        return copies

    async def _copy_tables(self, report: PreflightReport) -> dict[str, TableCopy]:
        """Every table copied from its checkpoint on; where each stands."""
        o = self.options
        tables = report.tables
        conns = await self._connections(max(1, min(o.jobs, len(tables))))
        try:
            saved = await load_checkpoints(conns[0], self.run.id)
            states = {t.name: saved.get(t.name) or TableCopy(t.name) for t in tables}
            for t in tables:
                states[t.name].source_rows = report.rows[t.name]
                await _check_kinds(conns[0], t)
            actions = report.actions[self.policy]
            await _copy_in_order(tables, states, conns, self.stop, lambda conn, t: copy_table(
                conn, self._copy_source(), t, actions.get(t.name) or RowActions(), self.run.id, states[t.name],
                self.run.folder, self.emit, self.stop, o.chunk_rows, report.unclean.get(t.name), self.reader_class))
        finally:
            for c in conns:
                await c.close()
        return states

    async def _indexes(self, conns: list[asyncpg.Connection], target: TargetSchema, tables: list[SourceTable]) -> None:
        if "indexes" in self.done:
            return
        began = self._begin("indexes", "build the indexes and foreign keys")
        try:
            await target_schema.rebuild(conns, target.deferred, self.emit)
            for t in tables:
                await conns[0].execute(f"ANALYZE {quote(t.target)}")
        except BaseException:
            self.step = "indexes"  # the verification beside it is not what failed
            raise
        self._end("indexes", began, built=len(target.deferred))

    async def _sequences(self, conn: asyncpg.Connection, tables: list[SourceTable]) -> dict[str, int]:
        began = self._begin("sequences", "set the sequences past the highest ids")
        self.emit(StepStarted("sequences", "set the sequences past the highest ids"))
        values = await target_schema.set_sequences(conn, [t.target for t in tables],
                                                   {t.target: t.sequence for t in tables if t.sequence is not None})
        self._end("sequences", began, sequences=values)
        self.emit(StepFinished("sequences", f"{len(values)} sequence(s) set: the next insert gets max + 1 of the "
                                            "source's ids, quarantined ones too (or what AUTOINCREMENT would hand out)",
                               {"sequences": values}))
        return values

    async def _verify(self, conn: asyncpg.Connection, copies: list[TableCopy], tables: list[SourceTable],
                      indexes: asyncio.Task) -> list[TableRow]:
        if "verify" in self.done:  # verified before the process died: the target may be upgraded since (--to)
            await indexes
            finished = [r for r in self.run.finished_steps() if r["step"] == "verify"][-1]
            return [TableRow.from_dict(t) for t in finished["tables"]]
        began = self._begin("verify", "count the rows on both sides")
        self.emit(StepStarted("verify", "row counts: source rows minus quarantined against the target"))
        rows = await verify_counts(conn, copies, {t.name: t.target for t in tables})
        bad = [r for r in rows if r.status != "ok"]
        if not bad:
            await self._verify_rows(copies, indexes)
        self._end("verify", began, tables=[r.to_dict() for r in rows])
        if bad:
            raise StepError("row counts differ: " + "; ".join(
                f"{r.table}: {r.source_rows:,} source - {r.quarantined:,} quarantined != {r.target_rows:,} in the "
                f"target" for r in bad))
        self.emit(StepFinished("verify", f"row counts match in {len(rows)} tables",
                               {"tables": [r.to_dict() for r in rows]}))
        return rows

    async def _verify_rows(self, copies: list[TableCopy], indexes: asyncio.Task) -> None:
        """Row by row (wizard.verify.run); its report goes to verify.md in the run folder, differences or not."""
        o = self.options
        folder = self.run.folder
        self.verification = await verify_run(o.source, o.target, folder, self.emit, stop=self.stop,
                                             schema_ready=indexes)
        facts = verify_report.copy_facts(folder, {c.table: c.conversions for c in copies if c.conversions})
        written, _ = await asyncio.to_thread(verify_report.write, folder / "verify.md", self.verification, facts)
        if not self.verification.ok:
            raise StepError(f"{self.verification.summary()}: {written} lists them; the target was not switched to")

    async def _switch(self, backup: dict[str, Any]) -> None:
        if self.env_file is None:
            self.notes.append(NOT_SWITCHED)
            return
        if "switch" in self.done:
            return
        self.step = "switch"
        began = time.monotonic()
        self.emit(StepStarted("switch", f"point DATABASE_URL in {self.env_file} at the target"))
        said = switch.point_at(self.run, self.env_file, self.options.target, backup["env"])
        self.timings["switch"] = time.monotonic() - began
        self.done.add("switch")
        self.emit(StepFinished("switch", said))

    async def _settings(self) -> bool:
        """Move the key; True when that wrote to the target."""
        if self.env_file is None or "settings" in self.done:
            return False
        if self.options.reflected:  # not the engine's database: it has no settings to take the key
            self.notes.append(f"OPENAI_API_KEY (if any) stays in {self.env_file}: {settings_kept_why}")
            return False
        began = self._begin("settings", "move OPENAI_API_KEY into the settings")
        self.emit(StepStarted("settings", "move OPENAI_API_KEY from .env into the settings of user anonymous"))
        moved = await move_openai_key(self.env_file, self.options.target, self.run.folder)
        said = moved.describe(self.env_file) if moved else f"no OPENAI_API_KEY in {self.env_file}: nothing to move"
        self.notes.append(said)
        # No undo of its own: the switch's restore of .env (taken before both) brings the key back.
        self._end("settings", began, result=said)
        self.emit(StepFinished("settings", said))
        return moved is not None

    def _end_state_beside(self, indexes: asyncio.Task, target: TargetSchema) -> asyncio.Task | None:
        """The end state recorded beside the verification, once the indexes are built: the rows are final by
        then unless an upgrade is to come (then it is recorded after it, as the settings move's change is)."""
        if since.END_STATE_STEP in self.done or (self.to is not None and
                                                 schema.resolve_revision(self.to) != target.revision):
            return None

        async def record() -> dict[str, int]:
            await indexes
            return await since.record_end_state(self.options.target, self.run.folder)

        return asyncio.create_task(record(), name="end state")

    async def _end_state(self, backup: dict[str, Any], target: TargetSchema, changed: bool) -> None:
        """Every row's key and digest as the move leaves the target: a rollback tells from it what the engine
        wrote since, and carries that back into the source (undo "carry_back"). `changed`: the settings move
        wrote to the target after the end state recorded beside the verification, which is then taken again."""
        if since.END_STATE_STEP in self.done:
            return
        self.step = since.END_STATE_STEP
        o = self.options
        began = time.monotonic()
        early, self.early_end_state = self.early_end_state, None
        if early is not None and changed:
            await asyncio.gather(early, return_exceptions=True)  # superseded; its file is written over
            early = None
        await since.record_step(self.run, o.target, self.emit, self._end_state_undo(backup, target), recorded=early)
        self.done.add(since.END_STATE_STEP)
        self.timings[since.END_STATE_STEP] = time.monotonic() - began

    def _end_state_undo(self, backup: dict[str, Any], target: TargetSchema) -> dict[str, Any]:
        """The end state's undo: carry what the engine wrote since back into the source."""
        o = self.options
        return {"action": "carry_back", "db": o.target.masked(), "database": o.target.database,
                "source": o.source.absolute().masked(), "backup": backup["database"], "revision": target.revision}

    async def _upgrade(self, target: TargetSchema) -> str | None:
        if self.to is None:
            return None
        wanted = schema.resolve_revision(self.to)
        ids = [r.id for r in schema.history()]
        if ids.index(wanted) < ids.index(target.revision):
            raise BadInput(f"--to {wanted} is older than the source's revision {target.revision}: a move never "
                           f"downgrades; leave --to out")
        if "upgrade" in self.done or wanted == target.revision:
            return wanted
        began = self._begin("upgrade", f"upgrade the target to {wanted}")
        await self._apply_upgrade(wanted)
        self._end("upgrade", began, revision=wanted)
        return wanted

    async def _apply_upgrade(self, wanted: str) -> None:
        """The revisions after the target's up to `wanted`, in one transaction; a data revision's rows it left as
        they were (JSON Python cannot read) said and noted in the report."""
        async with connect(self.options.target) as conn:
            async with conn.begin():
                counts = await schema.upgrade(conn, wanted, self.emit, step="upgrade")
        rewrites = schema.rewrites([r for r in schema.history() if r.id in counts])
        for rev, done in counts.items():
            if done.get("invalid_json"):
                rw = rewrites[rev]
                said = (f"revision {rev} left {done['invalid_json']:,} row(s) of {rw.table}.{rw.column} as they were: "
                        f"JSON that Python's json cannot read (nested past about 1,000 levels), as the engine cannot")
                self.emit(Warn("upgrade", said))
                self.notes.append(said)


async def _check_kinds(conn: asyncpg.Connection, t: SourceTable) -> None:
    """The target's columns must take the values the scan judged for them (the type map = the revision's types)."""
    kinds = await target_kinds(conn, t.target)
    for c in t.columns:
        if not takes(kinds.get(c.target), c.kind):
            raise StepError(f"{t.name}.{c.name} is {kinds.get(c.target) or 'missing'} in the target but {c.kind} in the "
                            f"source's type map: the target's schema is not the one this move made")


async def _copy_in_order(tables: list[SourceTable], states: dict[str, TableCopy], conns: list[Any], stop: StopRequest,
                         copy_one: Callable[[Any, SourceTable], Awaitable[Any]]) -> None:
    """Copy every table (`copy_one(conn, table)` on one of `conns`), each once its parents are done, up to
    len(conns) at a time."""
    names = {t.name for t in tables}
    tasks: dict[str, asyncio.Task] = {}
    free: asyncio.Queue = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)

    async def one(t: SourceTable, parents: list[asyncio.Task]) -> None:
        if parents:
            await asyncio.gather(*parents)
        if stop.is_set() and not states[t.name].done:
            raise Interrupted(f"stopped before table {t.name} ({stop.reason})")
        conn = await free.get()
        try:
            await copy_one(conn, t)
        finally:
            free.put_nowait(conn)

    for t in tables:
        parents = [tasks[fk.parent] for fk in t.foreign_keys if fk.parent in names and fk.parent in tasks]
        tasks[t.name] = asyncio.create_task(one(t, parents), name=f"copy {t.name}")
    try:
        await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def verify_counts(conn: asyncpg.Connection, copies: list[TableCopy], targets: dict[str, str]) -> list[TableRow]:
    """Per table: target rows against source rows minus quarantined (the row-level verify replaces this);
    `targets`: each source table's name in the target."""
    rows = []
    for c in copies:
        n = await conn.fetchval(f"SELECT count(*) FROM {quote(targets[c.table])}")
        ok = n == c.source_rows - c.quarantined == c.copied
        rows.append(TableRow(c.table, c.source_rows, c.copied, c.quarantined, n, c.seconds, c.conversions,
                             "ok" if ok else "differs"))
    return rows

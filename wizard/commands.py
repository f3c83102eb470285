"""The command layer: one async function per command, the one API both faces call.

As Alembic's command.py is under its CLI: wizard/cli.py maps click options onto
these functions and prints their events; the TUI (wizard/app.py and screens/)
calls the same functions and draws the same events. Each takes typed options,
an `emit` for its events and, where it runs long, a `stop` request, and does all
the composing of the service below it: a face composes nothing.

The faces import this module, wizard.events, wizard.errors and wizard.secrets,
and nothing else of the service (an import-linter contract in pyproject.toml
holds them to it); what they name (a URL, a run, a plan or a report) is
re-exported here.

    plan            what a run would do; changes nothing
    backup          a proven backup in a run folder of its own
    check_target    the connection test of a move's target
    preflight       the checks and data scan of a move; changes nothing
    migrate         the move, end to end (its checks, backup, schema, copy, verification, .env switch)
    upgrade         an upgrade in place (upgrade_plan, upgrade_sql: its plan and SQL preview)
    verify          a row-by-row verification, with what a run did on purpose counted in
    switch_env      the .env switch after a move, on the operator's word
    rollback        the undo of a run (rollback_plan: what it would do, measured)
    status          every run in the journal
"""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from wizard import schema
from wizard.move import settings, switch
from wizard.verify import report as verify_report
from wizard.backup import BackupRecord, check_deferred, human_size, run_backup
from wizard.db import check_sqlite_writable
from wizard.demo import Demo, discard as discard_demo, prepare as prepare_demo
from wizard.envfile import DEFAULT_ENV_FILE, database_url, read_env
from wizard.errors import RESTORE_ANYWAY, BadInput, Interrupted, Refused, WizardError
from wizard.events import Emit, StopRequest, ignore
from wizard.health import get_version
from wizard.journal import (ROLLBACK_FAILED, ROLLBACK_UNFINISHED, Run, list_runs, load_run, resolve_state_dir,
                            unfinished_runs)
from wizard.move.run import JOBS, NOT_SWITCHED, PROOF_STEP, MoveOptions, MoveResult, run_move
from wizard.move.plan import PlanReport, plan as _plan
from wizard.move.preflight import PreflightReport, TargetInfo, check_target as _check_target, run_checks
from wizard.rollback.run import Credentials, RollbackPlan, plan_rollback, prepare_rollback, rollback_run
from wizard.move.scan import ABORT, POLICY_MEANINGS
from wizard.secrets import mask
from wizard.upgrade import UpgradePlan, UpgradeResult, plan_upgrade, run_upgrade
from wizard.upgrade import summary as upgrade_summary
from wizard.upgrade import upgrade_sql as _upgrade_sql
from wizard.pgsession import schema_of, with_schema
from wizard.mysql.info import is_mariadb
from wizard.urls import SSL_MODES, DbUrl, form_url as _form_url, parse_url, same_database
from wizard.verify.run import VerifyReport, verify_run

__all__ = [
    # the commands
    "plan", "backup", "check_target", "preflight", "migrate", "move_question", "move_notes", "upgrade_plan", "upgrade_start", "upgrade_steps", "upgrade_question", "upgrade_counts",
    "upgrade_sql", "upgrade", "verify",
    "write_verify_report",
    "env_preview", "env_key_preview", "switch_env", "undo_preview", "rollback_plan", "rollback_choices", "rollback_alternative",
    "rollback", "status", "run_summary", "health",
    "prepare_demo", "discard_demo",
    # what the faces name
    "ORPHAN_POLICIES", "DEFAULT_POLICY", "JOBS", "SSL_MODES", "BACKUP_CHECK_STEP", "VERIFY_HEADERS", "BackupDone", "BackupRecord", "DbUrl", "Demo",
    "MoveOptions", "MoveResult", "PlanReport", "PreflightReport", "Revision", "RollbackPlan", "Run", "Status",
    "TargetInfo", "UpgradePlan", "UpgradeResult", "Verification", "VerifyReport",
    # small helpers on what the faces are given
    "parse_url", "form_url", "schema_of", "resolve_url", "in_schema", "env_file_or_default", "database_url", "state_dir_of", "find_run", "runs", "unfinished",
    "resumable", "Resumable", "resumable_target", "human_size", "backup_needs_proof", "verify_rows", "upgrade_summary", "revisions", "head_revision",
    "first_revision", "in_keys",
]

# --- what the faces name ---

ORPHAN_POLICIES: dict[str, str] = dict(POLICY_MEANINGS)  # --on-orphans: name -> what it does to such rows
DEFAULT_POLICY = ABORT
BACKUP_CHECK_STEP = PROOF_STEP  # a move's wait for its backup's deferred proof, which ran beside the copy


def backup_needs_proof(data: dict[str, Any]) -> bool:
    """A backup (its record, as its step reported it) whose integrity_check (SQLite) or restore (a MySQL dump)
    still has to run, beside the copy."""
    return check_deferred(data.get("kind"), str(data.get("check", "")))
VERIFY_HEADERS = verify_report.HEADERS  # the verification table's columns (verify_rows gives its rows)
verify_rows = verify_report.table_rows
Revision = schema.Revision

Confirm = Callable[[Any], "bool | Awaitable[bool]"]


def resolve_url(url: str | None, env_file: Path | None, what: str) -> DbUrl:
    """A URL as given, or DATABASE_URL from the .env file (`env_file`, else ./.env) when it is not.

    BadInput (one line) for a URL that does not parse, or no URL anywhere."""
    if url is None and env_file is not None:  # a .env named on the command line must be there
        url = read_env(env_file).get("DATABASE_URL")
    return parse_url(url or database_url(env_file or DEFAULT_ENV_FILE), what)


def in_schema(db: DbUrl, schema: str | None) -> DbUrl:
    """`db` with its tables in `schema` (--schema), or as its URL has it when None."""
    return with_schema(db, schema) if schema else db


def form_url(base: DbUrl | None, host: str, port: int | str | None, database: str, user: str, password: str,
             sslmode: str | None, sslrootcert: str | None, schema: str) -> DbUrl:
    """The Connection screen's target from its fields, over `base` (the URL it shows: what no field holds is kept);
    an empty `schema` leaves the role's own search_path."""
    return with_schema(_form_url(base, host, port, database, user, password, sslmode, sslrootcert), schema)


def env_file_or_default(env_file: Path | None) -> Path | None:
    """The .env given, else ./.env when there is one, else None."""
    return env_file or (DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.exists() else None)


def state_dir_of(option: Path | None) -> Path:
    """The state directory: the option, else WIZARD_STATE_DIR, else ./.wizard."""
    return resolve_state_dir(option)


def find_run(state_dir: Path | None, run_id: str | None = None, last: bool = False) -> Run:
    """A run of the journal by id (or the newest); BadInput naming what there is when there is no such run."""
    return load_run(resolve_state_dir(state_dir), run_id, last)


def runs(state_dir: Path) -> list[Run]:
    """Every run in the state directory, oldest first."""
    return list_runs(state_dir)


def unfinished(state_dir: Path) -> list[Run]:
    """The runs that did not end (interrupted, or still running): the Start screen offers to resume them."""
    return list(unfinished_runs(state_dir))


@dataclass
class Resumable:
    """What an unfinished move was begun with, as `migrate --resume` carries it on: its policy for rows the
    target will not take, the revision it upgrades to after, whether it copies the tables as they are."""
    run_id: str
    target: str | None  # the target it was writing to, when the journal has it whole (no password masked out)
    policy: str
    to: str | None
    reflected: bool


def resumable(state_dir: Path, run_id: str) -> Resumable:
    """The choices an unfinished move was begun with (a resume that named others is refused)."""
    started = load_run(state_dir, run_id).started()
    target = started.get("target")
    return Resumable(run_id, target if target and "***" not in target else None,
                     started.get("policy") or DEFAULT_POLICY, started.get("to"), bool(started.get("reflected")))


def resumable_target(state_dir: Path, run_id: str) -> str | None:
    """The target an unfinished move was writing to, when the journal has it whole (no password masked out)."""
    return resumable(state_dir, run_id).target


# The service words a remedy as the CLI takes it; the TUI says the same sentence with its key instead of the flag.
_KEYS = [
    (re.compile(r"began with --restore-backup: finish it the same way"),
     "began restoring the backup anyway: finish it the same way (r on the rollback's confirmation)"),
    (re.compile(r"began without --restore-backup: finish it the same way"),
     "began keeping the rows written since: finish it the same way (y on the rollback's confirmation)"),
    (re.compile(r"pass --restore-backup to roll back anyway"),
     "restore the backup anyway with r on the rollback's confirmation"),
    (re.compile(r"pass --restore-backup to save them to the run folder and roll back anyway"),
     "restore the backup anyway with r on the rollback's confirmation (it saves them to the run folder first)"),
    (re.compile(r"(?:pass|roll back with) --restore-backup"),
     "restore the backup anyway with r on the rollback's confirmation"),
    (re.compile(r"run the move again with --resume"), "resume the move (Resume, on the Start screen)"),
    (re.compile(r"--resume it, or roll it back"), "resume it (Resume, on the Start screen), or roll it back"),
    (re.compile(r"pass --db with the full URL"), "give the full URL with u on the Runs screen"),
    (re.compile(r"`?wizard rollback --run [\w-]+`?"), "Ctrl+R"),
]


def in_keys(text: str) -> str:
    """A message of the service as the TUI says it: a remedy named by its key and screen, not by its flag."""
    for pattern, keys in _KEYS:
        text = pattern.sub(keys, text)
    return text


def revisions(current: str | None, to: str) -> list[Revision]:
    """The revisions after `current` (None: an empty database) up to `to`, oldest first."""
    return schema.between(current, to)


def head_revision() -> str:
    return schema.head()


def first_revision() -> str:
    return schema.history()[0].id


async def _agreed(confirm: Confirm, about: Any) -> bool:
    answer = confirm(about)
    return bool(await answer) if inspect.isawaitable(answer) else bool(answer)


def _one_side_mysql(source: DbUrl, target: DbUrl) -> None:
    """BadInput for a move from MySQL into MySQL, before it connects: a move has MySQL on one side at most."""
    if source.is_mysql and target.is_mysql:
        raise BadInput(f"{target}: a move off MySQL goes to PostgreSQL, and a move onto MySQL comes from the "
                       "engine's SQLite file; MySQL to MySQL is not built: give a postgresql:// target")


def _stop_point(stop: StopRequest | None, what: str) -> None:
    if stop is not None and stop.is_set():
        raise Interrupted(f"{stop.reason}: stopped before {what}; nothing was changed")


# --- plan, backup ---


async def plan(source: DbUrl, target: DbUrl | None = None) -> PlanReport:
    """`wizard plan`: engine, size, tables and row counts, revision, pending revisions, what a move carries and
    how; of `target` too when given. Changes nothing."""
    return await _plan(source, target)


@dataclass
class BackupDone:
    run_id: str
    record: BackupRecord

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.record.to_dict()}


async def backup(source: DbUrl, state_dir: Path | None, emit: Emit = ignore,
                 stop: StopRequest | None = None) -> BackupDone:
    """`wizard backup`: a proven backup of `source` in a run folder of its own. `stop` is heeded before the
    backup begins; once begun, it is written and proven whole (a half backup is no backup)."""
    _stop_point(stop, "the backup")
    run_id, record = await run_backup(source, resolve_state_dir(state_dir), emit)
    return BackupDone(run_id, record)


# --- the move ---


async def check_target(target: DbUrl, source: DbUrl | None = None) -> TargetInfo:
    """Connect to a move's target and say what it is: server version, may the user create tables, is it empty
    (or the partial copy of which run); of a MySQL or MariaDB target its character set too. Changes nothing.
    With the move's `source`: BadInput, before it connects, for a pair `migrate` refuses (MySQL to MySQL)."""
    if source is not None:
        _one_side_mysql(source, target)
    return await _check_target(target)


async def preflight(source: DbUrl, target: DbUrl, emit: Emit = ignore, *, state_dir: Path | None = None,
                    reflected: bool = False) -> PreflightReport:
    """A move's pre-flight checks and its scan of every row, and how many rows each orphan policy would
    affect (`report.affected`). Changes nothing; `migrate` runs them again before it writes."""
    _one_side_mysql(source, target)
    return await run_checks(source, target, emit, state_dir=state_dir, reflected=reflected)


async def migrate(options: MoveOptions, emit: Emit = ignore, stop: StopRequest | None = None) -> MoveResult:
    """`wizard migrate`: move the SQLite or MySQL source to the PostgreSQL target, or the SQLite source to the MySQL
    target (wizard.move.run; MySQL's own steps in wizard.mysql.move_off and move_onto: checks, backup, schema,
    copy, indexes, sequences, counts, the row-level verification, with `options.env_file` the .env switch and the
    settings move, with `options.to` an upgrade, the report). Interrupted when `stop` is set mid-way: a `resume`
    carries on from the last checkpoint."""
    _one_side_mysql(options.source, options.target)
    return await run_move(options, emit, stop)


def move_question(options: MoveOptions, report: PreflightReport) -> str:
    """What a move asks before it writes (the CLI without --yes, the TUI's n), as both faces ask it: the databases,
    what is created and copied, the rows the policy sets aside, the upgrade after; masked."""
    policy = options.on_orphans or DEFAULT_POLICY
    rows = sum(report.rows.values())
    what = "its tables as they are" if options.reflected else \
        f"the engine's tables at revision {report.source_revision or '?'}"
    lines = [f"Back up {options.source.masked()} (only ever read), then create {what} in "
             f"{options.target.masked()} and copy {rows:,} rows in {len(report.rows)} tables into them."]
    if report.affected.get(policy):
        lines.append(f"{report.affected[policy]:,} rows {report.server} will not take as they are: "
                     f"{policy} ({ORPHAN_POLICIES[policy]}).")
    if options.to:
        lines.append(f"Then upgrade the target to {options.to}.")
    if options.env_file is not None:  # the CLI's --env-file: the switch follows the verification unasked
        key = settings.key_preview(options.env_file, options.reflected)
        lines.append(f"Once verified, DATABASE_URL in {options.env_file} is switched to the target"
                     + (f"; {key}." if key else "."))
    lines.append(f"{options.jobs} tables at once. Move now?")
    return mask("\n".join(lines))


def move_notes(result: MoveResult, switch_offered: bool = False) -> list[str]:
    """What a move's report says to do after it (what it did not make in the target and how to, names PostgreSQL
    cut, the settings move), masked, as both faces say it; `switch_offered`: the face switches .env itself
    after the move (the TUI's Finish screen), so the note that the move did not is left out."""
    return [mask(n) for n in result.report.notes if not (switch_offered and n == NOT_SWITCHED)]


# --- upgrade ---


async def upgrade_plan(db: DbUrl, to: str | None = None) -> UpgradePlan:
    """What upgrading `db` to `to` (None: head) would do. Changes nothing."""
    return await plan_upgrade(db, to)


def upgrade_start(plan: UpgradePlan) -> str:
    """Where an upgrade starts, as both faces' confirmations say it (a 1.0.0 database: its baseline first)."""
    return plan.current or f"1.0.0 (no revision recorded; baseline {plan.stamp} is recorded first)"


def upgrade_steps(plan: UpgradePlan) -> list[str]:
    """What an upgrade does after its backup, in order, as its confirmation lists it."""
    return ([f"record the 1.0.0 baseline {plan.stamp}"] if plan.stamp else []) \
        + [f"apply {rev.id}: {rev.description}" for rev in plan.pending]


def upgrade_question(plan: UpgradePlan) -> str:
    """What an upgrade asks before it writes (the CLI without --yes, the TUI's a), as both faces ask it: the
    database, from and to, the backup, how the revisions go in, each step; masked."""
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(upgrade_steps(plan), 1))
    return mask(f"Upgrade {plan.db.masked()}\nfrom {upgrade_start(plan)} to {plan.target}.\n\n"
                f"First a backup of it, proven; then, {plan.how}:\n{steps}\n\nUpgrade now?")


def upgrade_counts(result: UpgradeResult) -> list[tuple[str, str]]:
    """What each data revision of a finished upgrade did to the rows, as both faces say it: ("rows in 0004",
    "rows 100, changed 99, invalid_json 1"), oldest first."""
    return [(f"rows in {rev}", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            for rev, counts in result.counts.items()]


async def upgrade_sql(db: DbUrl, to: str | None = None, empty: bool = False, emit: Emit = ignore) -> str:
    """The SQL an upgrade of `db` to `to` would run (`wizard upgrade --sql`), with what each data revision would
    do to the rows there now (`emit`: the progress of reading them); `empty`: the SQL that builds a move's
    empty target up to `to`. Changes nothing."""
    if empty:
        mariadb = db.is_mysql and await is_mariadb(db)
        return await asyncio.to_thread(schema.upgrade_sql, db, None, schema.resolve_revision(to), mariadb=mariadb)
    return await _upgrade_sql(db, to, emit)


async def upgrade(db: DbUrl, to: str | None, state_dir: Path | None, emit: Emit = ignore,
                  stop: StopRequest | None = None, confirm: Confirm | None = None) -> UpgradeResult:
    """`wizard upgrade`: back up `db`, then apply the revisions up to `to` (None: head) in one transaction.

    `confirm(plan)` is asked first, with the UpgradePlan (a 1.0.0 database's baseline is recorded only on
    its yes); None: the operator agreed already (--yes, or Apply on a screen that said it). A no is Refused,
    nothing changed. Nothing to do: a result with no run (`run_id` None), nothing written."""
    the_plan = await plan_upgrade(db, to)
    if the_plan.nothing_to_do:
        return UpgradeResult(None, the_plan.current, the_plan.target, None)
    if db.is_sqlite:  # before the question and the backup: else the upgrade fails after both
        check_sqlite_writable(db)
    if confirm is not None and not await _agreed(confirm, the_plan):
        raise Refused("nothing was changed: the operator said no")
    _stop_point(stop, "the upgrade")
    return await run_upgrade(db, to, resolve_state_dir(state_dir), emit, accept_baseline=True, stop=stop)


# --- verify ---


@dataclass
class Verification:
    report: VerifyReport
    report_md: Path | None = None  # the Markdown report written, when one was asked for (its JSON beside it)


async def verify(source: DbUrl, target: DbUrl, emit: Emit = ignore, stop: StopRequest | None = None, *,
                 run: Run | None = None, tables: list[str] | None = None,
                 report_file: Path | None = None) -> Verification:
    """`wizard verify`: compare `target` with `source` row by row, and its schema with its revision.

    With `run` (a move), what it did on purpose counts in: its quarantine, the foreign keys it set to NULL,
    the rows it changed after the copy (the settings move). `tables`: only those. `report_file`: the report
    in Markdown there (its JSON beside it, mode 0600), with the run's copy facts. Writes no database."""
    if same_database(source, target) and schema_of(source) == schema_of(target):
        # Equal to itself, row by row: a "verified" that would say nothing of any copy.
        raise BadInput(f"the source and the target are one database ({target}): give as --target the database the "
                       f"source was moved to")
    if report_file is not None:
        verify_report.check_writable(report_file)
    report = await verify_run(source, target, run.folder if run is not None else None, emit, tables or None, stop)
    written = await write_verify_report(report, report_file, run) if report_file is not None else None
    return Verification(report, written)


async def write_verify_report(report: VerifyReport, report_file: Path, run: Run | None = None) -> Path:
    """A verification's report in Markdown at `report_file` and its JSON beside it (mode 0600; the folder
    made, 0700: the report holds row values), with `run`'s copy facts; the Markdown file's path."""
    report_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    facts = verify_report.copy_facts(run.folder) if run is not None else None
    written, _ = await asyncio.to_thread(verify_report.write, report_file, report, facts)
    return written


# --- the .env switch ---


def env_preview(env_file: Path, target: DbUrl) -> tuple[str, str]:
    """The DATABASE_URL line of `env_file` now, and as switch_env would write it; masked."""
    return switch.preview(env_file, target)


def env_key_preview(env_file: Path, run: Run | None = None) -> str | None:
    """What switch_env would do with OPENAI_API_KEY (move it into the target's settings; keep it in .env after
    `run`, a copy of another app's tables as they are), said before it does; masked."""
    return settings.key_preview(env_file, reflected=run is not None and bool(run.started().get("reflected")))


async def switch_env(run: Run, env_file: Path, target: DbUrl, emit: Emit = ignore) -> list[str]:
    """Point DATABASE_URL in `env_file` at a move's `target` (its backup and undo journaled in `run`), and move
    OPENAI_API_KEY into the target's settings; the sentences that say what was done."""
    return await switch.switch_env(run, env_file, target, emit)


# --- rollback ---


def undo_preview(run: Run) -> tuple[list[str], str]:
    """What rolling `run` back would undo by its journal alone (nothing measured yet), masked, newest change
    first; or, when nothing can be, why not."""
    try:
        return [mask(a.describe()) for a in plan_rollback(run)], ""
    except WizardError as exc:
        return [], mask(exc.message)


def _credentials(run: Run, db_url: DbUrl | None, env_file: Path | None, typed: DbUrl | None) -> Credentials:
    """Passwords the journal masked come back from `db_url` (the operator named the database), from a URL
    typed in this session that names the run's target, or from .env."""
    if db_url is None and typed is not None and run.started().get("target") == typed.masked():
        db_url = typed
    return Credentials(db_url, env_file)


async def rollback_plan(run: Run, db_url: DbUrl | None = None, env_file: Path | None = None,
                        restore_backup: bool = False, typed: DbUrl | None = None) -> RollbackPlan:
    """Measure what was written since `run` and say what rolling it back would do, in order, and which path
    keeps those rows (`restore_backup`: restore the backups anyway, those rows saved first). Changes
    nothing. `db_url`: the database's full URL when the journal's masked one needs its password back;
    `typed`: a target URL the operator typed this session, used when it names the run's target."""
    return await prepare_rollback(run, _credentials(run, db_url, env_file, typed), restore_backup)


async def rollback_choices(run: Run, db_url: DbUrl | None = None, env_file: Path | None = None,
                           typed: DbUrl | None = None) -> tuple[RollbackPlan | None, RollbackPlan | None, str]:
    """What a confirmation offers (the TUI's): the rollback keeping what was written since (y), the same restoring the
    backups anyway (r, when rows were written since), and why there is no y when that is refused and only the
    restore would go (the CLI's refusal that says to pass --restore-backup). Changes nothing."""
    try:
        plan = await rollback_plan(run, db_url, env_file, typed=typed)
    except Refused as exc:
        if exc.remedy != RESTORE_ANYWAY:
            raise
        return None, await rollback_plan(run, db_url, env_file, restore_backup=True, typed=typed), exc.message
    return plan, rollback_alternative(plan), ""


def rollback_alternative(plan: RollbackPlan) -> RollbackPlan | None:
    """The other choice a confirmation offers: with rows written since that `plan` keeps, the same rollback
    restoring the backups anyway (those rows saved first; --restore-backup); else None."""
    return plan.restoring_backup() if plan.context.keep_since else None


async def rollback(run: Run, emit: Emit = ignore, db_url: DbUrl | None = None, env_file: Path | None = None,
                   restore_backup: bool = False, expected: list[str] | None = None,
                   typed: DbUrl | None = None) -> list[str]:
    """`wizard rollback`: undo `run`, newest change first, keeping what was written since; the sentences that
    say how each result was checked. `expected`: the actions as the operator confirmed them
    (RollbackPlan.described()); refused, nothing undone, when the plan made under the lock differs."""
    credentials = _credentials(run, db_url, env_file, typed)
    return await rollback_run(run, emit, credentials.db_override, credentials.env_file, restore_backup, expected)


# --- status, health ---


@dataclass
class Status:
    state_dir: Path
    runs: list[dict[str, Any]]  # each run's summary: id, journey, state, started, steps, failed_step

    def to_dict(self) -> dict[str, Any]:
        return {"state_dir": str(self.state_dir), "runs": self.runs}

    def rollbacks_unfinished(self) -> list[str]:
        """The runs whose rollback stopped part-way: `wizard rollback --run ID` goes on with each."""
        return [r["id"] for r in self.runs if r["state"] in (ROLLBACK_UNFINISHED, ROLLBACK_FAILED)]


def run_summary(run: Run) -> dict[str, Any]:
    """What `wizard status` says of one run: id, journey, state (a run whose process is gone with no last record
    is interrupted), started, steps finished, the step it failed at and why."""
    return run.summary()


async def status(state_dir: Path | None) -> Status:
    """`wizard status`: every run in the journal, oldest first."""
    folder = resolve_state_dir(state_dir)
    return Status(folder, [run_summary(r) for r in list_runs(folder)])


def health(url: str) -> str:
    """What the engine answers at `url` (GET, a few seconds at most); StepError with why it did not."""
    return get_version(url)

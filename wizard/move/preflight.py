"""Pre-flight checks for a move: each one pass / warn / fail with a one-line reason, and the data scan.

Nothing here writes: the source is opened read-only (SQLite mode=ro), the target
is only asked questions.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from wizard.move import scan as data_scan
from wizard.move.pgnames import clashes, pg_name
from wizard.backup import processes_holding
from wizard.db import check_sqlite_file, connect, quote
from wizard.errors import BadInput, WizardError
from wizard.events import Emit, Progress, StepFinished, StepStarted, ignore
from wizard.journal import resolve_state_dir
from wizard.pg import connect_pg
from wizard.pgsession import schema_of, without_options
from wizard.pooler import find_pooler
from wizard.schema import (ENGINE_TABLES, VERSION_TABLE, Revision, SchemaState, between, history, inspect_schema,
                           named_indexes, resolve_revision, rewrites)
from wizard.move.tables import NotCarried, SourceTable, open_readonly
from wizard.move.target_schema import MOVES, OWN_TABLES, read_source, renames
from wizard.urls import DbUrl

STEP = "preflight"
PASS, WARN, FAIL = "pass", "warn", "fail"
MIN_SERVER = 10  # identity columns


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | warn | fail
    reason: str


@dataclass
class TargetInfo:
    """What the target said when asked: enough to tell the operator whether a move can go there."""

    server_version: str = ""
    can_create: bool = False
    tables: list[str] = field(default_factory=list)  # every table in its current schema
    schema: str = "public"
    run_id: str | None = None  # the move whose partial copy it holds, if any
    user: str = ""  # who we are there (current_user)
    server: str = "PostgreSQL"  # or MySQL, MariaDB (wizard.mysql.target.describe: `schema` is then the database)
    charset: str = ""  # MySQL's: the database's default character set (collation); PostgreSQL's: not UTF8's
    charset_problem: str = ""  # why that character set would lose characters ('' when it would not)
    max_packet: int = 0  # MySQL's max_allowed_packet: the longest row a client can send or be sent

    @property
    def major(self) -> int:
        try:
            return int(self.server_version.split(".")[0].split()[0])
        except ValueError:
            return 0

    @property
    def engine_tables(self) -> list[str]:
        return [t for t in self.tables if t in ENGINE_TABLES or t in (VERSION_TABLE, *OWN_TABLES)]

    @property
    def problem(self) -> str:
        """Why a fresh move cannot go there ('' when it can)."""
        if self.server == "PostgreSQL" and self.major and self.major < MIN_SERVER:
            return f"PostgreSQL {self.server_version} is too old: the wizard needs {MIN_SERVER} or newer"
        return self.charset_problem or self.create_problem or self.held_problem

    @property
    def create_problem(self) -> str:
        """Why we may not create tables there ('' when we may)."""
        if self.can_create:
            return ""
        if self.server != "PostgreSQL":
            return (f"the user {self.user} may not create tables in database {self.schema}: "
                    f"GRANT CREATE, ALTER, DROP, INDEX, REFERENCES ON {self.schema}.* TO it")
        to = f" TO {self.user}" if self.user else ""
        return (f"the user {self.user} may not create tables in schema {self.schema}: "
                f"GRANT CREATE ON SCHEMA {self.schema}{to}, or connect as its owner")

    @property
    def held_problem(self) -> str:
        """Why what it holds keeps a fresh move out ('' when it holds none of the engine's tables)."""
        if self.engine_tables:
            held = f" (the partial copy of run {self.run_id}: --resume it, or roll it back)" if self.run_id else ""
            return f"it already holds the engine's tables ({', '.join(self.engine_tables)}){held}: use an empty database"
        return ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def lines(self) -> list[str]:
        where = "schema" if self.server == "PostgreSQL" else "database"
        return [
            f"{self.server} {self.server_version}" + (f", character set {self.charset}" if self.charset else ""),
            "may create tables" if self.can_create else f"may NOT create tables in {where} {self.schema}",
            "empty of the engine's tables" if not self.engine_tables else f"holds: {', '.join(self.engine_tables)}",
        ]


def check_target_kind(target: DbUrl) -> None:
    """BadInput unless a move can go to `target`: a move, its plan and its target's test say it alike."""
    if target.is_sqlite:
        raise BadInput("the target of a move must be PostgreSQL or MySQL: postgresql://user@host:5432/dbname")


async def check_target(target: DbUrl) -> TargetInfo:
    """Ask the target its version, whether we may create tables, and what it holds (BadInput if it does not answer)."""
    check_target_kind(target)
    if target.is_mysql:
        from wizard.mysql.target import describe  # MySQL's own questions (wizard.mysql builds on this module)

        return await describe(target)
    conn = await connect_pg(target)
    try:
        return await describe_target(conn)
    finally:
        await conn.close()


async def describe_target(conn: asyncpg.Connection) -> TargetInfo:
    row = await conn.fetchrow(
        "SELECT current_setting('server_version') AS version, current_schema() AS schema, "
        "has_schema_privilege(current_schema(), 'CREATE') AS can_create, current_user AS username, "
        "current_setting('server_encoding') AS encoding, current_database() AS database"
    )
    tables = [r[0] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    )]
    info = TargetInfo(row["version"], bool(row["can_create"]), tables, row["schema"] or "public", user=row["username"])
    # UTF8 holds every character SQLite's text may; SQL_ASCII stores the bytes unchecked. Any other encoding
    # refuses the first character outside it, in the middle of the copy.
    if row["encoding"] not in ("UTF8", "SQL_ASCII"):
        info.charset = row["encoding"]
        info.charset_problem = (
            f"database {row['database']} is encoded in {row['encoding']}, which refuses every character outside "
            f"it: move to a database made with CREATE DATABASE name ENCODING 'UTF8' TEMPLATE template0 "
            f"(createdb -E UTF8 -T template0 name)")
    if MOVES in tables:
        info.run_id = await conn.fetchval(f"SELECT run_id FROM {MOVES} LIMIT 1")
    return info


@dataclass
class PreflightReport:
    checks: list[Check]
    scan: list[data_scan.Finding] = field(default_factory=list)
    affected: dict[str, int] = field(default_factory=dict)  # policy -> rows it would quarantine/null/stop on
    rows: dict[str, int] = field(default_factory=dict)  # source rows per table
    source_revision: str | None = None  # what the target will be created at
    tables: list[SourceTable] = field(default_factory=list)  # in copy order
    target: TargetInfo | None = None
    actions: dict[str, Any] = field(default_factory=dict, repr=False)  # policy -> table -> scan.RowActions
    unclean: dict[str, Any] = field(default_factory=dict, repr=False)  # table -> keys the copy must convert
    not_carried: list[NotCarried] = field(default_factory=list)  # views, triggers, defaults, ...: said, not made
    server: str = "PostgreSQL"  # the target's, as the data check and a refusal name it: or MySQL, MariaDB

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def problems(self) -> list[data_scan.Finding]:
        """Findings the policy decides on (not the counted conversions)."""
        return [f for f in self.scan if not f.converted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": [c.__dict__ for c in self.checks],
            "scan": [f.to_dict() for f in self.scan],
            "affected": self.affected,
            "rows": self.rows,
            "source_revision": self.source_revision,
            "not_carried": [n.line() for n in self.not_carried],
        }


async def run_checks(source: DbUrl, target: DbUrl, emit: Emit = ignore, *, state_dir: Path | None = None,
                     resume_run: str | None = None, reflected: bool = False, to: str | None = None) -> PreflightReport:
    """Every pre-flight check and the data scan; never writes. `resume_run` accepts that run's partial copy;
    `reflected` accepts a source with none of the engine's tables, to be copied as it is; `to`: the revision the
    move upgrades the target to after the copy (None: none)."""
    emit(StepStarted(STEP, "pre-flight checks"))
    report = PreflightReport(checks=[], server="MySQL" if target.is_mysql else "PostgreSQL")  # until it answers
    add = report.checks.append
    if source.is_mysql:
        from wizard.mysql.checks import check_source  # here: it builds on this module
        await check_source(source, report, add, emit)
        await _check_target(target, report, add, resume_run)
        return _said(report, emit)
    opened = _source_opens(source, add)
    if opened:
        _check_in_use(source.sqlite_path, add)
    # quick_check and the data scan each read the whole file, on connections of their own: at once.
    quick = asyncio.create_task(asyncio.to_thread(_quick_check, source.sqlite_path)) if opened else None
    # A MySQL target is asked at once: the scan needs to know its server (how deep its JSON may nest).
    described = asyncio.create_task(check_target(target)) if target.is_mysql else None
    scanning = asyncio.create_task(_scan(source, emit, described)) if opened else None
    try:
        source_ok = quick is not None and await _check_source(source, await quick, report, add, reflected,
                                                               target.is_mysql)
        if described is not None:
            await _check_mysql_target(target, described, report, add, resume_run)
        else:
            await _check_target(target, report, add, resume_run)
        if source_ok and scanning is not None:
            _check_disk(source, resolve_state_dir(state_dir), add)
            _add_scan(report, await scanning, add)
            _check_unenforced_keys(source.sqlite_path, report.tables, add)
            _check_names(report, add, resume_run)
            if to is not None and report.source_revision is not None:
                _check_rewrites(source.sqlite_path, between(report.source_revision, resolve_revision(to)), add)
    finally:
        # The file failed its check (the scan's end is moot), or a check raised before the target's answer was read.
        # Gathered done or not: a damaged file's scan ends in an error that is moot too, and one never retrieved
        # is printed as a traceback above the refusal.
        await asyncio.gather(*(task for task in (scanning, described) if task is not None), return_exceptions=True)
    return _said(report, emit)


def _said(report: PreflightReport, emit: Emit) -> PreflightReport:
    """The checks' end, said in one line."""
    failed, warned = report.failed, [c for c in report.checks if c.status == WARN]
    summary = (f"{len(failed)} of {len(report.checks)} checks: " + "; ".join(f"{c.name}: {c.reason}" for c in failed)) if failed \
        else f"{len(report.checks)} checks passed" + (
            f", {len(warned)} with a warning: " + "; ".join(f"{c.name}: {c.reason}" for c in warned) if warned else "")
    emit(StepFinished(STEP, summary, report.to_dict(), passed=not failed))
    return report


def _source_opens(source: DbUrl, add: Any) -> bool:
    if not source.is_sqlite:
        add(Check("source", FAIL, "the source of a move must be the engine's SQLite file: sqlite:///path/to/file.db"))
        return False
    try:
        check_sqlite_file(source)
    except BadInput as exc:
        add(Check("source", FAIL, exc.message))
        return False
    return True


# SQLite's write locks (unix VFS): in WAL mode a writer holds WAL_WRITE_LOCK, byte 120 of the -shm file; in
# rollback-journal mode PENDING, RESERVED or EXCLUSIVE (the SHARED range), bytes 0x40000000 to 0x400001ff of the file.
WAL_WRITE_BYTE = 120
PENDING_BYTE = 0x40000000
SHARED_END = PENDING_BYTE + 2 + 510


def _check_in_use(path: Path, add: Any) -> None:
    """Another process writing the source now, or holding it open: the engine was not stopped."""
    writers = _sqlite_writers(path)
    if writers:
        add(Check("source in use", FAIL, f"{path} has a write transaction open in process {', '.join(writers)}: "
                                         f"the engine is running: stop it, then move again"))
        return
    holders = processes_holding(path)
    if holders:
        add(Check("source in use", WARN, f"{path} is open in process {', '.join(holders)}: stop the engine before "
                                         f"the move, or what it writes after the copy will not be in the target"))


def _sqlite_writers(path: Path) -> list[str]:
    """Other processes holding a SQLite write lock on `path` ("pid (name)"), from /proc/locks where there is one.

    Read from the kernel's list, never by opening the file: closing any descriptor of a file drops
    every POSIX lock this process holds on it, the read locks of our own connections included.
    """
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    ranges = {}  # (major, minor, inode) -> the bytes a writer locks
    for file, first, last in ((path, PENDING_BYTE, SHARED_END - 1),
                              (path.with_name(path.name + "-shm"), WAL_WRITE_BYTE, WAL_WRITE_BYTE)):
        try:
            st = os.stat(file)
        except OSError:
            continue
        ranges[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = (first, last)
    found = []
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 3568 fd:00:1835178 120 120"; a waiter's line has "->" and holds nothing.
        if len(fields) < 8 or fields[1] == "->" or fields[3] != "WRITE" or fields[1] not in ("POSIX", "OFDLCK"):
            continue
        try:
            major, minor, inode = fields[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
            start, end = int(fields[6]), (float("inf") if fields[7] == "EOF" else int(fields[7]))
        except ValueError:
            continue
        if key in ranges and start <= ranges[key][1] and end >= ranges[key][0] and fields[4] != str(os.getpid()):
            pid = fields[4]
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                name = "?"
            found.append(f"{pid} ({name})" if pid != "-1" else "? (an open file description lock)")
    return sorted(set(found))


async def _check_source(source: DbUrl, integrity: str, report: PreflightReport, add: Any, reflected: bool,
                        onto_mysql: bool) -> bool:
    if integrity != "ok":
        add(Check("source", FAIL, f"PRAGMA quick_check says: {integrity}: restore it from a backup first"))
        return False
    add(Check("source", PASS, f"{source.sqlite_path} opens read-only and passes quick_check"))
    async with connect(source, readonly=True) as conn:
        state = await inspect_schema(conn)
    known = [r.id for r in history()]
    revision = state.effective
    if state.empty and reflected and state.other_tables:
        add(Check("revision", WARN, f"none of the engine's tables: its {len(state.other_tables)} table(s) are copied "
                                    f"as they are, with the type map (--reflected): {', '.join(state.other_tables)}"))
    elif state.empty:
        held = f"its tables are {', '.join(state.other_tables)}" if state.other_tables else "it holds no tables"
        offer = ", or pass --reflected to copy its tables as they are (no engine schema)" if state.other_tables \
            else ""
        add(Check("revision", FAIL, f"the source holds none of the engine's tables ({held}): point --source at the "
                                    f"engine's database file{offer}"))
    elif reflected:
        add(Check("revision", FAIL, f"{state.describe()}: this is the engine's database; move it without --reflected"))
    elif revision is None or revision not in known or state.differences:
        add(Check("revision", FAIL, no_schema_to_match(state)))
    elif onto_mysql and state.other_tables:  # MySQL gets the engine's schema alone: no type map for it
        add(Check("revision", FAIL, f"{state.describe()}; table(s) {', '.join(state.other_tables)} are not the "
                                    f"engine's and a move to MySQL carries the engine's tables only: drop them from a "
                                    f"copy of the source (sqlite3 copy.db 'DROP TABLE \"name\"') and move the copy"))
    else:
        report.source_revision = revision
        extra = f"; {len(state.other_tables)} table(s) the history does not know are carried with the type map: " \
            f"{', '.join(state.other_tables)}" if state.other_tables else ""
        add(Check("revision", PASS if not state.other_tables else WARN, state.describe() + extra))
    return True


def _quick_check(path: Path) -> str:
    conn = open_readonly(path)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except Exception as exc:  # sqlite3.DatabaseError and friends: the file is damaged
        return str(exc)
    finally:
        conn.close()
    # One line: SQLite puts several findings in one row ("*** in database main ***\nOn tree page 42 ...").
    found = [line.strip() for r in rows for line in str(r[0]).splitlines()
             if line.strip() and not line.startswith("*** in database")]
    return "; ".join(found[:3]) or " ".join(str(r[0]) for r in rows).replace("\n", " ")


async def _check_target(target: DbUrl, report: PreflightReport, add: Any, resume_run: str | None) -> None:
    try:
        info = await check_target(target)
        pooler = await find_pooler(target)
        engine_schema = await _engine_schema(target)
    except WizardError as exc:
        add(Check("target", FAIL, exc.message))
        return
    report.target = info
    ok = info.major >= MIN_SERVER
    add(Check("target", PASS if ok else FAIL,
              f"{target.masked()} answers: PostgreSQL {info.server_version}" + ("" if ok else f" (needs {MIN_SERVER}+)")))
    if info.charset_problem:
        add(Check("encoding", FAIL, info.charset_problem))
    add(Check("privileges", PASS if info.can_create else FAIL,
              f"the user may create tables in schema {info.schema}" if info.can_create else info.create_problem))
    if pooler is not None:
        add(Check("pooler", WARN, pooler.advice()))
    if engine_schema is not None and engine_schema != info.schema:
        found = f"schema {engine_schema}" if engine_schema else "no schema it may use"
        add(Check("engine's schema", WARN, f"the engine's DATABASE_URL cannot carry the URL's options (its asyncpg "
                                           f"takes none), and {info.user} alone finds {found}: "
                                           f"ALTER ROLE {info.user} SET search_path = {info.schema}, or the engine "
                                           f"will not find its tables"))
    if not info.engine_tables:
        add(Check("target empty", PASS, f"database {target.database} holds none of the engine's tables"))
    elif resume_run and info.run_id == resume_run:
        add(Check("target empty", PASS, f"database {target.database} holds run {resume_run}'s partial copy: resuming"))
    else:
        add(Check("target empty", FAIL, f"database {target.database}: {info.problem}"))


async def _check_mysql_target(target: DbUrl, described: asyncio.Task, report: PreflightReport, add: Any,
                              resume_run: str | None) -> None:
    """The checks of a MySQL target, from what it said when asked (`described`: check_target's task)."""
    from wizard.mysql.target import checks  # MySQL's own questions (wizard.mysql)

    try:
        info = await described
    except WizardError as exc:
        add(Check("target", FAIL, exc.message))
        return
    report.target, report.server = info, info.server
    for name, passed, reason in checks(target, info, resume_run):
        add(Check(name, PASS if passed else FAIL, reason))


async def _engine_schema(target: DbUrl) -> str | None:
    """The schema the engine will find its tables in, connected as .env will have it ('' for none); None when
    the URL names no schema of its own (then it is the one the move uses)."""
    if schema_of(target) is None:
        return None
    conn = await connect_pg(without_options(target))
    try:
        return await conn.fetchval("SELECT current_schema()") or ""
    finally:
        await conn.close()


# PostgreSQL's system columns: CREATE TABLE refuses a column of one of these names (quoted as the move quotes them,
# only the lower-case spelling is taken; oid is a plain name since PostgreSQL 12).
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})


def _check_names(report: PreflightReport, add: Any, resume_run: str | None) -> None:
    """The names the move gives the source's tables in the target (wizard.move.pgnames) must be free: of each
    other, of the wizard's bookkeeping, of the indexes the engine's schema names, of the target's tables."""
    unknown = [t for t in report.tables if not t.engine]
    problems = [f"tables {a} and {b} would both be {pg_name(a)} in PostgreSQL (63 bytes at most)"
                for a, b in clashes(t.name for t in report.tables)]
    for t in report.tables:
        problems += [f"columns {t.name}.{a} and {t.name}.{b} would both be {pg_name(a)} in PostgreSQL"
                     for a, b in clashes(c.name for c in t.columns)]
    problems += [f"table {t.name!r} of the source has an empty name, which PostgreSQL does not take"
                 for t in report.tables if not t.name]
    problems += [f"column {t.name}.{c.name!r} of the source has an empty name, which PostgreSQL does not take"
                 for t in report.tables for c in t.columns if not c.name]
    system = [f"{t.name}.{c.name}" for t in report.tables for c in t.columns if c.target in SYSTEM_COLUMNS]
    if system:
        problems.append(f"column(s) {', '.join(system)} of the source have the name of a system column every "
                        f"PostgreSQL table has, which no column may take")
    problems += [f"table {t.name} of the source has the name of the wizard's own bookkeeping table in the target"
                 for t in unknown if t.target in OWN_TABLES]
    if report.source_revision:
        problems += [f"table {t.name} of the source has the name of an index the engine's schema creates"
                     for t in unknown if t.target in named_indexes(report.source_revision)]
    if problems:
        add(Check("names", FAIL, "; ".join(problems) + ": rename it in a copy of the source (sqlite3 copy.db "
                                 "'ALTER TABLE \"old\" RENAME TO \"new\"', and the column alike) and move the copy"))
        return
    names = renames(report.tables)
    if names:
        add(Check("names", WARN, f"{len(names)} name(s) over PostgreSQL's 63 bytes get another in the target: "
                                 + ", ".join(f"{a} -> {b}" for a, b in names.items())))
    info = report.target
    if info is None or (resume_run and info.run_id == resume_run):
        return
    taken = sorted({t.target for t in unknown} & set(info.tables))
    if taken:
        add(Check("target tables", FAIL, f"the target already has table(s) {', '.join(taken)} that the move would "
                                         f"create: use an empty database"))


def _check_unenforced_keys(path: Path, tables: list[SourceTable], add: Any) -> None:
    """An engine table's key or UNIQUE columns that the file does not hold unique must hold no repeats: the
    target's do, and would refuse the copy half-way."""
    repeats = []
    conn = open_readonly(path)
    try:
        for t in tables:
            for columns in t.unenforced:
                cols = ", ".join(quote(c) for c in columns)
                known = " AND ".join(f"{quote(c)} IS NOT NULL" for c in columns)  # NULLs are the scan's to hold
                found = conn.execute(f"SELECT {cols}, count(*) FROM {quote(t.name)} WHERE {known} GROUP BY {cols} "
                                     f"HAVING count(*) > 1 LIMIT 1").fetchone()
                if found:
                    repeats.append(f"{t.name}.{', '.join(columns)} holds {', '.join(map(str, found[:-1]))} in "
                                   f"{found[-1]} rows")
    finally:
        conn.close()
    if repeats:
        add(Check("keys", FAIL, "; ".join(repeats) + ": the file's table does not hold those columns unique (another "
                                "program made it), the engine's schema does: remove the repeats in a copy of the "
                                "source and move the copy"))


def _check_rewrites(path: Path, revisions: list[Revision], add: Any) -> None:
    """A data revision the move's upgrade runs reads its column through Python's json, which takes a number past
    a double's range (1e400) for Infinity and writes that back: no JSON, and the target's json refuses it, stopping
    the upgrade after the copy. SQLite's json_tree reads such a number as a REAL that is not finite too."""
    conn = open_readonly(path)
    try:
        for rev, rw in rewrites(revisions).items():
            text = f"CAST({quote(rw.column)} AS TEXT)"
            found = conn.execute(
                f"SELECT t.{quote(rw.pk)}, j.fullkey FROM {quote(rw.table)} AS t, "
                f"json_tree(CASE WHEN json_valid({text}) THEN {text} END) AS j "
                f"WHERE j.type = 'real' AND abs(j.atom) > 1.7976931348623157e308 LIMIT 1").fetchone()
            if found:
                add(Check("upgrade", FAIL, f"{rw.table}.{rw.column} at key {found[0]} holds a number past a double's "
                                           f"range at {found[1]}: revision {rev}, which the move's upgrade runs, "
                                           f"would write it back as Infinity, which JSON has not: move without --to, "
                                           f"or write the number within range in a copy of the source"))
                return
    finally:
        conn.close()


def backup_room(source: DbUrl, state_dir: Path) -> tuple[int, int]:
    """(bytes free where the backup goes, bytes the backup needs with a tenth to spare)."""
    path = source.sqlite_path
    need = path.stat().st_size + sum(p.stat().st_size for p in (Path(f"{path}-wal"),) if p.exists())
    where = state_dir
    while not where.exists():
        where = where.parent
    return shutil.disk_usage(where).free, int(need * 1.1)


def _check_disk(source: DbUrl, state_dir: Path, add: Any) -> None:
    free, need = backup_room(source, state_dir)
    if free < need:
        add(Check("disk", FAIL, f"{state_dir} has {_size(free)} free, the backup needs {_size(need)}: free space or "
                                f"pass --state-dir on a larger disk"))
    else:
        add(Check("disk", PASS, f"{_size(free)} free in {state_dir} for a {_size(need)} backup"))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


async def _scan(source: DbUrl, emit: Emit, described: asyncio.Task | None
                ) -> tuple[list[SourceTable], list[NotCarried], data_scan.ScanResult]:
    """The data scan; onto MySQL (`described`: the target's answer) also for values too big for its columns."""
    loop = asyncio.get_running_loop()
    server, revision, packet = await _mysql_target_and_revision(source, described) if described else (None,) * 3

    def progress(table: str, done: int, total: int) -> None:
        loop.call_soon_threadsafe(emit, Progress(STEP, "data scan", done, total))

    def run() -> tuple[list[SourceTable], list[NotCarried], data_scan.ScanResult]:
        tables, left = read_source(source.sqlite_path)
        limits = None
        if server:
            from wizard.mysql.limits import limits_of  # MySQL's own (wizard.mysql builds on this module)

            limits = limits_of(server, revision, packet)
        return tables, left, data_scan.scan(source.sqlite_path, tables, progress, limits)

    return await asyncio.to_thread(run)


async def _mysql_target_and_revision(source: DbUrl, described: asyncio.Task
                                     ) -> tuple[str | None, str | None, int | None]:
    """The MySQL target's server (MySQL or MariaDB), the source's revision (the schema the target gets) and the
    server's max_allowed_packet: what its limits depend on. Nones when the target did not answer: its check
    fails and says why."""
    try:
        info = await described
    except WizardError:
        return None, None, None
    async with connect(source, readonly=True) as conn:
        return info.server, (await inspect_schema(conn)).effective, info.max_packet


def no_schema_to_match(state: SchemaState) -> str:
    """The revision check's failure for a source whose tables are no revision the history knows: why, and what to
    do (the target gets the engine's schema at the source's revision, which has no place for what differs)."""
    revision, known = state.effective, [r.id for r in history()]
    if revision is not None and revision not in known and not state.differences:
        return (f"revision {revision} is not in this wizard's history, which ends at {known[-1]}: move it with a "
                f"wizard that knows {revision}")
    return (f"{state.describe()}: the target's schema cannot be made to match: make a copy of the source whose "
            f"tables are the engine's (what differs set apart or dropped there; the original stays as it is) and "
            f"move the copy")


def _add_scan(report: PreflightReport, scanned: tuple[list[SourceTable], list[NotCarried], data_scan.ScanResult],
              add: Any) -> None:
    report.tables, report.not_carried, result = scanned
    if report.not_carried:
        add(Check("not carried", WARN, f"{len(report.not_carried)} thing(s) the move does not make in the target "
                                       f"(the report says what to do): "
                                       + ", ".join(f"{n.what} {n.name}" for n in report.not_carried)))
    report.scan, report.affected, report.rows, report.actions, report.unclean = (
        result.findings, result.affected, result.rows, result.actions, result.unclean)
    stops = result.affected[data_scan.ABORT]
    converted = sum(f.count for f in result.findings if f.converted)
    if stops:
        tables = sorted({f.table for f in report.problems()})
        add(Check("data", WARN, f"{stops:,} row(s) {report.server} will not take as they are, in "
                                f"{', '.join(tables)}: abort stops on them; quarantine would set aside "
                                f"{result.affected['quarantine']:,}, null {result.affected['null']:,}"))
    elif converted:
        add(Check("data", PASS, f"every row fits; {converted:,} value(s) will be converted (counted in the report)"))
    else:
        add(Check("data", PASS, f"every row of {sum(result.rows.values()):,} fits as it is"))

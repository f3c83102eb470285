"""Backups proven before anything changes, and restores checked after.

SQLite: under one read transaction (our read lock keeps the original still) the
file is copied byte for byte and hashed in the same pass; the copy, read back, must
have that sha256, and must pass PRAGMA integrity_check. A move defers that last,
slow check (prove_sqlite_copy): it runs beside the copy and the move fails before its
.env switch if it does not pass, since nothing before the switch can need the backup.
A database whose WAL holds frames not yet checkpointed is not the main file alone:
it is copied with the online backup API (page by page, in the same read transaction),
whose copy differs from the original in its 100-byte header counters (change counter,
schema cookie, version-valid-for), and is always integrity-checked at once. A restore
puts the original's header back and proves the result against the original's sha256.

PostgreSQL: pg_dump -Fc of the app's tables in one exported snapshot, with the
revision and row counts read in that same snapshot, listed by pg_restore --list.
The password reaches pg_dump and pg_restore only through PGPASSWORD.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from errno import ENOSPC
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from sqlalchemy import text

from wizard.db import check_sqlite_file, connect, quote, row_counts, sqlite_uri, table_names
from wizard import pgtools
from wizard.envfile import EditedSince, fsync_path, revert_lines, write_atomically
from wizard.errors import Refused, StepError, WizardError
from wizard.events import Emit, ProgressMeter, StepFinished, StepStarted
from wizard.journal import FAILED, FINISHED, INTERRUPTED, new_run, new_run_id
from wizard.lock import StateLock
from wizard.pooler import session_url
from wizard.schema import ENGINE_TABLES, VERSION_TABLE
from wizard.urls import DbUrl

HEADER_BYTES = 100  # SQLite's database header
BACKUP_PAGES_PER_STEP = 256  # 1 MB at the default 4 KiB page: a Progress event per step at most
INTEGRITY_OK = "integrity_check: ok"
RESTORED = "restored into a scratch database"  # a MySQL dump's proof (wizard.mysql.dump), as its check says it
COPY_BYTES = 1 << 20  # a byte copy's read, hash and write, at a time
LOCK_TIMEOUT = "30s"  # pg_restore gives up instead of waiting forever behind the engine's locks


@dataclass
class BackupRecord:
    kind: str  # "sqlite" | "pg_dump" | "mysqldump" | "mysql_stream" (wizard.mysql.stream_dump) | "env"
    source: str  # masked URL or path
    path: str
    size: int
    sha256: str
    check: str  # how the backup was proven, e.g. "integrity_check: ok"
    # SQLite and .env: the original file, when it could be read still (see the module docstring).
    original_sha256: str | None = None
    original_header: str | None = None  # hex
    mode: int | None = None  # the original file's permission bits
    # What the database held, for checking a restore: revision (None: none recorded) and
    # [[table, rows], ...] -- a list, because the journal masks dict keys that look like secrets.
    revision: str | None = None
    row_counts: list[list[Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BackupRecord":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> str:
        return f"{self.path} ({human_size(self.size)}, sha256 {self.sha256[:12]}..., {self.check})"


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def sha256_file(path: Path | str) -> str:
    with open(path, "rb") as f:
        return sha256_of(f)


def sha256_of(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.wizard-tmp")


def publish(tmp: Path, final: Path) -> None:
    """fsync the finished temp file, rename it into place, fsync the folder."""
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def _thread_emit(emit: Emit) -> Emit:
    """An Emit usable from a worker thread: events are delivered on the event loop."""
    loop = asyncio.get_running_loop()
    return lambda event: loop.call_soon_threadsafe(emit, event)


# --- SQLite ---


def _copy_sqlite(src: Path, tmp: Path, meter: ProgressMeter) -> dict[str, Any]:
    """Copy `src` into the empty file `tmp` in one read transaction; returns what is known of the original."""
    # Read-only: the source is never written, not even by a checkpoint when we close.
    conn = sqlite3.connect(sqlite_uri(src), uri=True, isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read lock: no commit lands until we end
        facts: dict[str, Any] = {"mode": src.stat().st_mode & 0o777}
        # One handle, closed only once the read transaction has ended: closing any handle on a
        # file drops every POSIX lock this process holds on it, SQLite's read lock included.
        with open(src, "rb") as original:
            if _main_file_is_whole(conn, src):
                facts["original_header"] = original.read(HEADER_BYTES).hex()
                original.seek(0)
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                facts["original_sha256"] = _copy_bytes(original, tmp, page, meter)
            else:
                _copy_pages(conn, tmp, meter)
            meter.finish()
            conn.execute("ROLLBACK")
        return facts
    finally:
        conn.close()


def _copy_bytes(original: BinaryIO, tmp: Path, page: int, meter: ProgressMeter) -> str:
    """The file as it is, hashed as it is read: one pass; returns its sha256. Progress in pages of `page` bytes."""
    digest = hashlib.sha256()
    meter.total = -(-os.fstat(original.fileno()).st_size // page)
    with open(tmp, "r+b") as dest:
        while chunk := original.read(COPY_BYTES):
            digest.update(chunk)
            dest.write(chunk)
            meter.advance(-(-len(chunk) // page))
    return digest.hexdigest()


def _copy_pages(conn: sqlite3.Connection, tmp: Path, meter: ProgressMeter) -> None:
    """The online backup API: the database as the read transaction sees it, the WAL's frames included."""
    dest = sqlite3.connect(tmp)
    try:
        def progress(_status: int, remaining: int, total: int) -> None:
            meter.total = total
            meter.advance(total - remaining - meter.done)

        conn.backup(dest, pages=BACKUP_PAGES_PER_STEP, progress=progress)
    finally:
        dest.close()


def _main_file_is_whole(conn: sqlite3.Connection, path: Path) -> bool:
    """True when the main file alone is the database: no WAL frames waiting to be checkpointed."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        return True
    wal = path.with_name(path.name + "-wal")
    return not wal.exists() or wal.stat().st_size == 0


def _check_sqlite_copy(path: Path, original_sha256: str | None, defer: bool) -> tuple[str, str, str | None,
                                                                                      list[list[Any]]]:
    """Prove the copy: (how, its sha256, the revision and the row counts it holds).

    A byte copy must read back with the sha256 its original had under the read lock; integrity_check
    then runs here, unless `defer` leaves it to prove_sqlite_copy. A copy by the backup API has no
    original's bytes to equal, and is always integrity-checked here."""
    digest = sha256_file(path)
    if original_sha256 is not None and digest != original_sha256:
        raise StepError(f"the backup copy does not read back as the source was read (sha256 {digest[:12]}..., the "
                        f"source's {original_sha256[:12]}...): check the disk of {path.parent}; nothing was changed")
    checks = ["sha256 equal to the source's"] if original_sha256 is not None else []
    if original_sha256 is None or not defer:
        damage = integrity_problem(path)
        if damage:
            raise StepError(f"the backup copy fails PRAGMA integrity_check ({damage}): the database itself may be "
                            f"damaged; nothing was changed")
        checks.append(INTEGRITY_OK)
    revision, counts = _contents(path)
    return ", ".join(checks), digest, revision, counts


def integrity_problem(path: Path, stop: threading.Event | None = None) -> str | None:
    """What PRAGMA integrity_check finds wrong in a SQLite copy no one else has, in one line; None: nothing.
    `stop`, once set, interrupts it (sqlite3.OperationalError)."""
    # immutable: nothing else has this file, and no -wal/-shm are made beside it.
    conn = sqlite3.connect(sqlite_uri(path, immutable=True), uri=True, check_same_thread=False)
    try:
        if stop is not None:
            conn.set_progress_handler(stop.is_set, 10_000)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        if stop is not None and stop.is_set():
            raise
        return str(exc)  # damaged beyond checking
    finally:
        conn.close()
    if result == ["ok"]:
        return None
    return "; ".join(line.strip() for line in result[0].splitlines()  # one line: SQLite's has several
                     if line.strip() and not line.startswith("*** in database")) or result[0]


def prove_sqlite_copy(record: BackupRecord, stop: threading.Event | None = None) -> str:
    """The check a move deferred: the backup still has its recorded sha256 and passes integrity_check.
    Returns what it proved; StepError when it does not hold."""
    digest = sha256_file(record.path)
    if digest != record.sha256:
        raise StepError(f"the backup {record.path} changed after it was taken (sha256 {digest[:12]}..., recorded "
                        f"{record.sha256[:12]}...)")
    damage = integrity_problem(Path(record.path), stop)
    if damage:
        raise StepError(f"the backup {record.path} fails PRAGMA integrity_check ({damage})")
    return f"sha256 unchanged, {INTEGRITY_OK}"


def needs_proof(record: BackupRecord) -> bool:
    """True for a SQLite backup whose integrity_check, or a MySQL dump whose restore, was deferred
    (backup_database's defer_check)."""
    return check_deferred(record.kind, record.check)


def check_deferred(kind: str | None, check: str) -> bool:
    """needs_proof of a backup as its step reported it: its kind and what its check said."""
    return (kind == "sqlite" and INTEGRITY_OK not in check) or (kind in ("mysqldump", "mysql_stream")
                                                                 and RESTORED not in check)


def _contents(path: Path) -> tuple[str | None, list[list[Any]]]:
    """The revision and the row counts of a SQLite copy."""
    conn = sqlite3.connect(sqlite_uri(path, immutable=True), uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        revision = None
        if VERSION_TABLE in tables:
            revision = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
            revision = revision[0] if revision else None
        return revision, [[t, conn.execute(f"SELECT count(*) FROM {quote(t)}").fetchone()[0]] for t in tables]
    finally:
        conn.close()


def create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a leftover file


async def _backup_sqlite(db: DbUrl, dest_dir: Path, emit: Emit, step: str, defer_check: bool) -> BackupRecord:
    check_sqlite_file(db)
    src = db.sqlite_path.resolve()
    emit(StepStarted(step, f"back up {src}"))
    final = dest_dir / f"{src.name}.backup"
    tmp = temp_for(final)
    create_private(tmp)
    meter = ProgressMeter(_thread_emit(emit), step, "backup", None)
    try:
        facts = await asyncio.to_thread(_copy_sqlite, src, tmp, meter)
        check, digest, revision, counts = await asyncio.to_thread(
            _check_sqlite_copy, tmp, facts.get("original_sha256"), defer_check)
        publish(tmp, final)
    except (sqlite3.Error, OSError) as exc:
        # Full: SQLite's online backup says SQLITE_FULL, the byte copy's write ENOSPC.
        full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or getattr(exc, "errno", None) == ENOSPC
        if isinstance(exc, OSError) and not full:
            raise
        why = f"{dest_dir} is full ({exc}): free space there or pass --state-dir on a larger disk" if full else str(exc)
        raise StepError(f"backup of {src} failed: {why}: nothing was changed") from None
    finally:
        # The copy's own rollback journal too: a write that failed (a full disk) leaves it beside the temp file.
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            leftover.unlink(missing_ok=True)
    record = BackupRecord("sqlite", db.masked(), str(final), final.stat().st_size, digest, check,
                          revision=revision, row_counts=counts, **facts)
    emit(StepFinished(step, f"backup {record.describe()}", record.to_dict()))
    return record


def _restore_sqlite(record: BackupRecord, target: Path) -> str:
    tmp = temp_for(target)
    try:
        shutil.copyfile(record.path, tmp)
        os.chmod(tmp, record.mode if record.mode is not None else 0o600)
        if record.original_header and record.original_sha256:
            # Undo the backup API's header counters: the original's bytes, proven by its sha256 below.
            with open(tmp, "r+b") as f:
                f.write(bytes.fromhex(record.original_header))
        got = sha256_file(tmp)
        exact = got == record.original_sha256
        if not exact and got != record.sha256:
            # Patching the header did not give the original: the copy is still the proven backup.
            shutil.copyfile(record.path, tmp)
            got = sha256_file(tmp)
            if got != record.sha256:
                raise StepError(f"restoring {target} failed: the copy's sha256 {got[:12]}... is not the backup's")
        _refuse_if_in_use(target)
        # A stale -wal beside the restored file would be replayed onto it: corruption.
        for suffix in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if exact:
        return f"restored {target}: sha256 {got[:16]}... equals the file as it was before the run"
    return (f"restored {target} from the backup: sha256 {got[:16]}... equals the verified backup "
            "(the original's bytes were not recorded: its WAL held changes when it was backed up)")


def processes_holding(path: Path) -> list[str]:
    """Other processes with `path` open ("pid (name)"), from /proc where there is one.

    An engine that has the file open but idle holds no SQLite lock, and would go on
    writing to the replaced file after a restore: only its open descriptors show it.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    target = os.path.realpath(path)
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                found.append(f"{entry.name} ({(entry / 'comm').read_text().strip()})")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return found


def _refuse_if_in_use(path: Path) -> None:
    if not path.exists():
        return
    holders = processes_holding(path)
    if holders:
        raise Refused(f"{path} is open in process {', '.join(holders)}: stop the engine, then roll back again")
    try:
        conn = sqlite3.connect(sqlite_uri(path, "rw"), uri=True, isolation_level=None, timeout=2)
    except sqlite3.Error:
        return  # not an openable database: nothing can be using it as one
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise Refused(f"{path} is in use ({exc}): stop the engine, then roll back again") from None
    except sqlite3.DatabaseError:
        pass  # damaged beyond opening: replacing it is the point
    finally:
        conn.close()


# --- PostgreSQL ---


_PIPE = "/dev/fd/"


@contextlib.contextmanager
def libpq_env(db: DbUrl) -> Iterator[dict[str, str]]:
    """The environment for libpq tools: the connection in PG* variables, the password never in argv.

    libpq has no variable for a client key's password (sslpassword): it goes in a service file that is a pipe
    (PGSERVICEFILE=/dev/fd/N, inherited by tool_run's client), so no file holds it, not even after a kill -9.
    libpq reads the file once, as it connects: one client per block connects."""
    url = db.url
    env = dict(os.environ)
    host = url.host or url.query.get("host")
    settings = {
        "PGHOST": host if isinstance(host, str) else None,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,  # absent: an inherited PGPASSWORD or ~/.pgpass still applies
        "PGDATABASE": url.database,
        "PGSSLMODE": db.tls().get("sslmode"),  # absent: an inherited PGSSLMODE still applies, as in asyncpg
        **db.tls_files(),  # PGSSLROOTCERT, PGSSLCERT, PGSSLKEY
        "PGCONNECT_TIMEOUT": "10",
        "PGOPTIONS": f"-c lock_timeout={LOCK_TIMEOUT}",
    }
    env.update({k: v for k, v in settings.items() if isinstance(v, str) and v})
    key_password = db.tls().get("sslpassword")
    if not key_password:
        yield env
        return
    read, write = os.pipe()
    try:
        with os.fdopen(write, "w") as pipe:  # a few bytes: the pipe holds them all before the client reads
            pipe.write(f"[wizard]\nsslpassword={key_password}\n")
        yield {**env, "PGSERVICEFILE": f"{_PIPE}{read}", "PGSERVICE": "wizard"}
    finally:
        os.close(read)


async def tool_run(args: list[str], env: dict[str, str], stdin: BinaryIO | None = None,
                    stdout: BinaryIO | None = None, pass_fds: tuple[int, ...] = ()) -> str:
    """Run a client tool (`pass_fds`: descriptors it inherits); its output (none when `stdout` takes it), or
    StepError with its first error line."""
    service = env.get("PGSERVICEFILE", "")
    if service.startswith(_PIPE):  # libpq_env's pipe
        pass_fds = (*pass_fds, int(service[len(_PIPE):]))
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdin=stdin, stdout=stdout or asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        pass_fds=pass_fds)
    try:
        out, errout = await proc.communicate()
    except asyncio.CancelledError:  # e.g. a move's dump proof a run that ended first no longer needs: no client left
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        lines = [ln for ln in errout.decode(errors="replace").splitlines() if ln.strip()]
        # The mysql client echoes the failed statement before its ERROR line.
        detail = next((ln for ln in lines if ln.startswith("ERROR")), lines[0]) if lines else f"exit code {proc.returncode}"
        raise StepError(f"{Path(args[0]).name} failed: {detail}")
    return (out or b"").decode(errors="replace")


async def _app_tables(conn: Any) -> list[str]:
    """The tables of the session's schema (public, or the one the URL's search_path names)."""
    rows = await conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"))
    return [r[0] for r in rows]


async def _schema(conn: Any) -> str:
    return (await conn.execute(text("SELECT current_schema()"))).scalar_one()


async def _revision_and_counts(conn: Any, tables: list[str]) -> tuple[str | None, list[list[Any]]]:
    revision = None
    if VERSION_TABLE in tables:
        revision = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar()
    counts = await row_counts(conn, tables, await _schema(conn))
    return revision, [[t, n] for t, n in counts.items()]


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "database"


async def _backup_pg(db: DbUrl, dest_dir: Path, emit: Emit, step: str) -> BackupRecord:
    tools = await pgtools.for_database(db)
    pg_dump, pg_restore = tools.path("pg_dump"), tools.path("pg_restore")
    emit(StepStarted(step, f"back up {db} with pg_dump {tools.major} ({tools.folder})"))
    final = dest_dir / f"{safe_name(db.database)}.dump"
    tmp = temp_for(final)
    direct = await session_url(db, "pg_dump")  # pg_dump reaches the server itself, not a pooler
    async with connect(db) as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            # pg_dump reads the snapshot this transaction exported: the dump, the revision and
            # the row counts all describe the same moment.
            snapshot = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            tables, schema = await _app_tables(conn), await _schema(conn)
            if not tables:
                raise StepError(f"{db} has no tables in schema {schema}: nothing to back up")
            revision, counts = await _revision_and_counts(conn, tables)
            patterns = [f"--table={quote(schema)}.{quote(t)}" for t in tables]
            create_private(tmp)
            try:
                with libpq_env(direct) as env:
                    await tool_run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={tmp}", *patterns],
                                    env)
                    listing = await tool_run([pg_restore, "--list", str(tmp)], env)
                digest = await asyncio.to_thread(sha256_file, tmp)
                publish(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
    entries = [ln for ln in listing.splitlines() if ln.strip() and not ln.startswith(";")]
    data_entries = sum(" TABLE DATA " in ln for ln in entries)
    if data_entries != len(tables):
        raise StepError(f"the dump of {db} lists {data_entries} tables' data, not {len(tables)}: it cannot be trusted")
    check = f"pg_restore --list: {len(entries)} entries, {data_entries} tables"
    record = BackupRecord("pg_dump", db.masked(), str(final), final.stat().st_size, digest, check,
                          revision=revision, row_counts=counts)
    emit(StepFinished(step, f"backup {record.describe()}", record.to_dict()))
    return record


async def _restore_pg(record: BackupRecord, db: DbUrl) -> str:
    # A wrong password or a missing database is said in one line before pg_restore runs.
    tools = await pgtools.for_database(db)
    with libpq_env(await session_url(db, "pg_restore")) as env:
        await tool_run([tools.path("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                         f"--dbname={db.database}", record.path], env)
    backed_up = {t for t, _ in record.row_counts}
    async with connect(db) as conn:
        async with conn.begin():
            # Tables the run created after the backup (alembic_version, for a 1.0.0 database) go too.
            schema = quote(await _schema(conn))
            for extra in set(await _app_tables(conn)) - backed_up:
                if extra in ENGINE_TABLES or extra == VERSION_TABLE:
                    await conn.execute(text(f"DROP TABLE {schema}.{quote(extra)}"))
        tables = await _app_tables(conn)
        revision, counts = await _revision_and_counts(conn, [t for t in tables if t in backed_up])
    return checked_restore(db, record, revision, dict(counts))


def checked_restore(db: DbUrl, record: BackupRecord, revision: str | None, counts: dict[str, int]) -> str:
    """The sentence for a restored database whose revision and row counts are those the backup recorded;
    StepError naming what differs otherwise."""
    if revision != record.revision:
        raise StepError(f"restored {db}, but its revision is {revision or 'none'}, not {record.revision or 'none'}")
    expected = {t: n for t, n in record.row_counts}
    differ = [f"{t} {n} (expected {expected[t]})" for t, n in counts.items() if n != expected[t]]
    missing = sorted(set(expected) - set(counts))
    if differ or missing:
        raise StepError(f"restored {db}, but row counts differ: {', '.join(differ + [m + ' missing' for m in missing])}")
    return (f"restored {db} from {record.path}: revision {revision or 'none recorded (1.0.0)'} and the row counts "
            f"of {len(counts)} tables ({sum(counts.values())} rows) equal those recorded at backup time")


# --- the public calls ---


def _check_backup_file(record: BackupRecord) -> None:
    path = Path(record.path)
    if not path.is_file():
        raise StepError(f"the backup {path} is missing: it cannot be restored")
    digest = sha256_file(path)
    if digest != record.sha256:
        raise StepError(f"the backup {path} changed since it was taken (sha256 {digest[:12]}..., "
                        f"recorded {record.sha256[:12]}...): not restoring it")


async def backup_database(db: DbUrl, dest_dir: Path, emit: Emit, step: str = "backup",
                          defer_check: bool = False) -> BackupRecord:
    """`defer_check`: a SQLite byte copy's integrity_check is left to prove_sqlite_copy (the record's check
    then lacks "integrity_check: ok"), a MySQL dump's restore to wizard.mysql.dump.prove_dump."""
    dest_dir = dest_dir.absolute()
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if db.is_sqlite:
        return await _backup_sqlite(db, dest_dir, emit, step, defer_check)
    if db.is_mysql:
        from wizard.mysql.dump import backup_mysql  # here: wizard.mysql.dump builds on this module

        return await backup_mysql(db, dest_dir, emit, step, defer_check)
    return await _backup_pg(db, dest_dir, emit, step)


async def restore_database(record: BackupRecord, db: DbUrl, emit: Emit, step: str = "restore") -> str:
    """Put the backup back into `db`; returns the sentence that says how the result was checked."""
    emit(StepStarted(step, f"restore {db} from {record.path}"))
    await asyncio.to_thread(_check_backup_file, record)
    if record.kind == "sqlite":
        sentence = await asyncio.to_thread(_restore_sqlite, record, db.sqlite_path.resolve())
    elif record.kind == "pg_dump":
        sentence = await _restore_pg(record, db)
    elif record.kind in ("mysqldump", "mysql_stream"):
        from wizard.mysql.dump import restore_mysql  # here: wizard.mysql.dump builds on this module

        sentence = await restore_mysql(record, db)
    else:
        raise StepError(f"a {record.kind} backup cannot be restored into a database")
    emit(StepFinished(step, sentence))
    return sentence


def backup_env(env_path: Path, dest_dir: Path) -> BackupRecord:
    """A byte-for-byte copy of the engine's .env (it holds secrets: mode 0600)."""
    data = env_path.read_bytes()
    dest_dir = dest_dir.absolute()
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = dest_dir / "env.backup"
    write_atomically(final, data, mode=0o600)
    digest = hashlib.sha256(data).hexdigest()
    if sha256_file(final) != digest:
        raise StepError(f"the copy of {env_path} does not read back as written: check the disk of {dest_dir}")
    return BackupRecord("env", str(env_path.resolve()), str(final), len(data), digest, "byte-for-byte copy",
                        original_sha256=digest, mode=env_path.stat().st_mode & 0o777)


SWITCHED_ENV = "env.switched"  # beside env.backup: .env as the run's switch writes it


def keep_switched_env(data: bytes, dest_dir: Path) -> None:
    """The .env the run is about to write, kept before it is written (mode 0600): a rollback turns back only the
    lines the run changed in it when the operator has edited .env since (wizard.envfile.revert_lines)."""
    write_atomically(dest_dir.absolute() / SWITCHED_ENV, data, mode=0o600)


def switched_env(record: BackupRecord) -> bytes | None:
    """What the run's switch wrote to the .env `record` backs up; None for a journal of an earlier wizard."""
    path = Path(record.path).with_name(SWITCHED_ENV)
    return path.read_bytes() if path.is_file() else None


def reverted_env(record: BackupRecord, env_path: Path) -> tuple[bytes, list[str]] | None:
    """None when .env is as the run's switch wrote it (or gone, or the journal an earlier wizard's): it goes back
    byte for byte. Else .env with the switch's lines turned back and the operator's edits since kept, and the
    variables put back; Refused, naming them, when the operator changed a line the switch wrote."""
    written = switched_env(record)
    now = env_path.read_bytes() if env_path.is_file() else None
    if written is None or now is None or now == written:
        return None
    try:
        return revert_lines(Path(record.path).read_bytes(), written, now)
    except EditedSince as exc:
        names = ", ".join(exc.names)
        raise Refused(f"{env_path} was edited since the switch on the line(s) it wrote ({names}), and a rollback "
                      f"cannot tell which to keep: nothing was undone; put {names} back as the switch wrote it "
                      f"({Path(record.path).with_name(SWITCHED_ENV)}), or copy {record.path} (.env before the run) "
                      f"over it and make your own changes again, then roll back again") from None


def restore_env(record: BackupRecord, env_path: Path) -> str:
    _check_backup_file(record)
    reverted = reverted_env(record, env_path)
    if reverted is not None:
        data, names = reverted
        write_atomically(env_path, data)
        digest = sha256_file(env_path)
        if digest != hashlib.sha256(data).hexdigest():
            raise StepError(f"{env_path} does not read back as written: check the disk")
        return (f"put {', '.join(names) or 'nothing'} back in {env_path} as before the run, and kept every line edited "
                f"since its switch as it is (read back: sha256 {digest[:16]}...)")
    write_atomically(env_path, Path(record.path).read_bytes(), mode=record.mode)
    digest = sha256_file(env_path)
    if digest != record.original_sha256:
        raise StepError(f"{env_path} does not read back as the backup: check the disk")
    return f"restored {env_path} byte for byte: sha256 {digest[:16]}... equals the file as it was before the run"


async def run_backup(db: DbUrl, state_dir: Path, emit: Emit) -> tuple[str, BackupRecord]:
    """`wizard backup`: a run of its own whose folder keeps the backup; returns (run id, record)."""
    db = db.absolute()
    async with connect(db) as conn:  # bad input (a missing file, a wrong password) is said before a run exists
        if not db.is_sqlite and not await table_names(conn):  # as an upgrade refuses it: no run, exit 3
            raise Refused(f"{db} has no tables: nothing to back up (is it the right database?)")
    if db.kind == "postgresql":
        await pgtools.for_database(db)  # no pg_dump that can dump it: refused before a run exists, as an upgrade is
    run_id = new_run_id()
    with StateLock(state_dir).acquire(run_id, "backup"):
        run = new_run(state_dir, "backup", run_id=run_id, db=db.masked())
        run.step_started("backup", f"back up {db}")
        try:
            record = await backup_database(db, run.folder, emit)
        except BaseException as exc:
            message = exc.message if isinstance(exc, WizardError) else "stopped"
            run.step_failed("backup", message)
            run.finish(FAILED if isinstance(exc, WizardError) else INTERRUPTED, error=message)
            raise
        run.step_finished("backup", backup=record.to_dict())
        run.finish(FINISHED)
        return run.id, record

"""A MySQL or MariaDB backup: mysqldump of the app's tables, proven by restoring it into a scratch database.

mysqldump --single-transaction reads every InnoDB table in one consistent snapshot without
locking the engine out. MySQL has no exported snapshot a second session could share (as
pg_dump's has), so the revision and row counts recorded are read from the dump itself: it is
restored with the mysql client into a scratch database of its own on the same server, each
table's definition is compared with the original's and its rows counted (a table whose count
did not change while mysqldump ran must come back with that count), and the scratch database
is dropped. The password reaches the clients only through a pipe they read their options from
(`--defaults-extra-file=/dev/fd/N`): never in a file (a kill -9 would leave it behind), their command
line or environment.

Where mysqldump or mysql is not installed, the backup is the wizard's own dump instead (wizard.mysql.stream_dump,
said in one warning), proven the same way, and restored through the driver while the client is still missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.backup import (RESTORED, BackupRecord, create_private, publish, safe_name, temp_for, tool_run, checked_restore,
                           sha256_file)
from wizard.db import connect, quote, row_counts
from wizard.errors import StepError
from wizard.events import Emit, StepFinished, StepStarted, Warn
from wizard.mysql import stream_dump
from wizard.mysql.info import app_tables
from wizard.mysql.scratch import run_of, scratch_database, sweep
from wizard.schema import ENGINE_TABLES, VERSION_TABLE
from wizard.urls import DbUrl

BIN_ENV = "WIZARD_MYSQL_BIN"  # a folder holding mysqldump and mysql, when PATH's are not the right ones
KIND = "mysqldump"  # BackupRecord.kind
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")  # the next id: it moves with every insert, not a definition


def client(*names: str) -> str:
    """The path of a MySQL client program (the first of `names` found: MariaDB's own name, then MySQL's), from
    WIZARD_MYSQL_BIN, else PATH."""
    folder = os.environ.get(BIN_ENV)
    for name in names:
        found = shutil.which(name, path=folder) if folder else shutil.which(name)
        if found:
            return found
    where = f"in {folder} ({BIN_ENV})" if folder else "on PATH"
    raise StepError(f"{names[-1]} is not installed {where}: install the MySQL or MariaDB client "
                    f"(apt-get install mariadb-client), or set {BIN_ENV} to its bin folder")


def _option_value(value: str) -> str:
    """A value for an option file: quoted (a '#' would start a comment), backslashes and line ends escaped."""
    return '"' + value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") + '"'


@contextlib.contextmanager
def option_file(db: DbUrl) -> Iterator[tuple[str, int]]:
    """`--defaults-extra-file=/dev/fd/N` and N, for one client (it inherits N: tool_run's `pass_fds`): a pipe holding
    the connection's settings, password included, so no file ever holds it and a kill -9 leaves none behind. Over
    TCP to the URL's host, as the driver connects, unless the URL names a socket."""
    url = db.url
    socket = url.query.get("unix_socket")
    settings = {"user": url.username, "password": url.password,
                "socket": socket if isinstance(socket, str) else None,
                "protocol": "socket" if isinstance(socket, str) else "tcp",
                "host": url.host or "localhost", "port": str(url.port or 3306),
                "default-character-set": "utf8mb4"}
    lines = ["[client]", *(f"{k}={_option_value(v)}" for k, v in settings.items() if v)]
    read, write = os.pipe()
    try:
        with os.fdopen(write, "wb") as pipe:  # a few hundred bytes: the pipe holds them all before the client reads
            pipe.write(("\n".join(lines) + "\n").encode())
        yield f"--defaults-extra-file=/dev/fd/{read}", read  # must be the first argument
    finally:
        os.close(read)


async def definitions(conn: AsyncConnection, tables: list[str]) -> dict[str, str]:
    """SHOW CREATE TABLE of each table, less its AUTO_INCREMENT counter."""
    out = {}
    for t in tables:
        row = (await conn.execute(text(f"SHOW CREATE TABLE {quote(t)}"))).one()
        out[t] = _AUTO_INCREMENT.sub("", row[1])
    return out


# The rows come back as they were, even those a CHECK refuses now (MariaDB's JSON column holding text that is
# not JSON, written with its checks off): MariaDB runs the /*M! ... */ part, MySQL (no such variable) only the SET.
_AS_THEY_ARE = "SET @wizard_restore = 1 /*M!, SESSION check_constraint_checks = 0 */"


def missing_clients() -> str | None:
    """What the lookup of mysqldump and mysql says is missing (client()'s line), None when both are there."""
    try:
        client("mariadb-dump", "mysqldump")
        client("mariadb", "mysql")
    except StepError as exc:
        return exc.message.split(": install ")[0]
    return None


async def load(dump: Path, db: DbUrl, kind: str = KIND) -> None:
    """Run the dump's statements in `db` with the mysql client (its CREATE TABLEs drop each table first); the
    wizard's own dump (`kind` stream_dump.KIND) through the driver when the client is not installed."""
    if kind == stream_dump.KIND and missing_clients():
        await stream_dump.load(dump, db)
        return
    with option_file(db) as (options, fd), open(dump, "rb") as statements:
        await tool_run([client("mariadb", "mysql"), options, "--batch", f"--init-command={_AS_THEY_ARE}",
                         db.database], dict(os.environ), stdin=statements, pass_fds=(fd,))


async def _revision(conn: AsyncConnection, tables: list[str]) -> str | None:
    if VERSION_TABLE not in tables:
        return None
    return (await conn.execute(text(f"SELECT version_num FROM {quote(VERSION_TABLE)}"))).scalar()


async def _dump(db: DbUrl, tables: list[str], tmp: Path) -> None:
    args = ["--single-transaction", "--quick", "--hex-blob", "--no-tablespaces", "--skip-dump-date", db.database,
            *tables]
    with option_file(db) as (options, fd), open(tmp, "wb") as out:
        await tool_run([client("mariadb-dump", "mysqldump"), options, *args], dict(os.environ), stdout=out,
                        pass_fds=(fd,))
        out.flush()
    with open(tmp, "rb") as f:
        f.seek(max(0, os.path.getsize(tmp) - 200))
        if stream_dump.COMPLETED not in f.read():
            raise StepError(f"mysqldump of {db} stopped before its end (no '-- Dump completed' line): "
                            "nothing was changed")


async def _restored(db: DbUrl, conn: AsyncConnection, dump: Path, kind: str, tables: list[str],
                    run_folder: Path | None, emit: Emit, step: str) -> tuple[dict[str, int], str | None]:
    """Restore `dump` into a scratch database and compare each table's definition with the original's (`conn`,
    autocommit, on `db`); the row counts and the revision it restores. StepError when it cannot be trusted."""
    original = await definitions(conn, tables)
    swept = await sweep(conn, run_folder) if run_folder else None
    if swept:
        emit(Warn(step, swept))
    async with scratch_database(db, conn, run_folder=run_folder) as scratch:
        await load(dump, scratch, kind)
        async with connect(scratch) as restored:
            got = await app_tables(restored)
            missing = sorted(set(tables) - set(got))
            if missing:
                raise StepError(f"the dump of {db} lacks table(s) {', '.join(missing)}: it cannot be trusted")
            differ = [t for t, ddl in (await definitions(restored, tables)).items() if ddl != original[t]]
            if differ:
                raise StepError(f"the dump of {db} restores table(s) {', '.join(differ)} with another "
                                "definition: it cannot be trusted")
            return await row_counts(restored, tables), await _revision(restored, tables)


def _lost(db: DbUrl, expected: dict[str, int], counts: dict[str, int]) -> None:
    """StepError when the restore does not bring back each of `expected`'s tables with its rows."""
    lost = [f"{t} {counts[t]} (the table has {n})" for t, n in expected.items() if counts[t] != n]
    if lost:
        raise StepError(f"the dump of {db} restores other row counts: {', '.join(lost)}: it cannot be trusted")


def _proven(tables: list[str], counts: dict[str, int]) -> str:
    return f"{RESTORED}: {len(tables)} tables, their definitions equal, {sum(counts.values()):,} rows"


async def backup_mysql(db: DbUrl, dest_dir: Path, emit: Emit, step: str, defer_check: bool = False) -> BackupRecord:
    """mysqldump of `db`'s tables into `dest_dir`, proven by a restore into a scratch database; the wizard's own
    dump (wizard.mysql.stream_dump), proven the same way, when the clients are not installed. `defer_check`:
    the restore is left to prove_dump when no table changed while the dump ran (its counts and revision are
    then the source's, which the proof must find in the dump)."""
    no_clients = missing_clients()
    kind = stream_dump.KIND if no_clients else KIND
    emit(StepStarted(step, f"back up {db} with {'its own streamed dump' if no_clients else 'mysqldump'}"))
    if no_clients:
        emit(Warn(step, f"{no_clients}: the backup is the wizard's own dump, streamed over its connection in one "
                        f"snapshot and proven the same way; install mariadb-client (or set {BIN_ENV}) for "
                        "mysqldump's"))
    final = dest_dir / f"{safe_name(db.database)}.sql"
    tmp = temp_for(final)
    async with connect(db) as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")  # CREATE DATABASE commits anyway
        tables = await app_tables(conn)
        if not tables:
            raise StepError(f"{db} has no tables: nothing to back up")
        create_private(tmp)
        try:
            before = await row_counts(conn, tables)
            await (stream_dump.write(db, tables, tmp) if no_clients else _dump(db, tables, tmp))
            after = await row_counts(conn, tables)
            if defer_check and before == after:
                counts, revision = after, await _revision(conn, tables)
                check = f"dumped {len(tables)} tables, {sum(counts.values()):,} rows; its restore runs beside the move"
            else:
                counts, revision = await _restored(db, conn, tmp, kind, tables, run_of(dest_dir), emit, step)
                # A table nothing wrote to while mysqldump ran must come back with exactly its rows.
                _lost(db, {t: n for t, n in before.items() if n == after[t]}, counts)
                check = _proven(tables, counts)
            digest = await asyncio.to_thread(sha256_file, tmp)
            publish(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
    record = BackupRecord(kind, db.masked(), str(final), final.stat().st_size, digest, check,
                          revision=revision, row_counts=[[t, n] for t, n in counts.items()])
    emit(StepFinished(step, f"backup {record.describe()}", record.to_dict()))
    return record


async def prove_dump(record: BackupRecord, db: DbUrl, emit: Emit, step: str) -> str:
    """The restore backup_mysql deferred: the dump still has its recorded sha256, and restores every table with
    `db`'s definition, the recorded rows and revision. Returns what it proved; StepError when it does not hold."""
    path = Path(record.path)
    digest = await asyncio.to_thread(sha256_file, path)
    if digest != record.sha256:
        raise StepError(f"the backup {path} changed after it was taken (sha256 {digest[:12]}..., recorded "
                        f"{record.sha256[:12]}...)")
    expected = {t: n for t, n in record.row_counts}
    tables = list(expected)
    async with connect(db) as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        counts, revision = await _restored(db, conn, path, record.kind, tables, run_of(path.parent), emit, step)
    _lost(db, expected, counts)
    if revision != record.revision:
        raise StepError(f"the dump of {db} restores revision {revision}, not the source's {record.revision}: "
                        "it cannot be trusted")
    return f"sha256 unchanged, {_proven(tables, counts)}"


async def restore_mysql(record: BackupRecord, db: DbUrl) -> str:
    """Put a mysqldump backup (or the wizard's own dump) back into `db`; the sentence that says how the result
    was checked."""
    backed_up = [t for t, _ in record.row_counts]
    async with connect(db) as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # Tables the run created after the backup (alembic_version, for a 1.0.0 database) go; the dump drops
        # and recreates each of its own.
        extra = [t for t in await app_tables(conn) if t not in backed_up and (t in ENGINE_TABLES or t == VERSION_TABLE)]
        if extra:
            await conn.execute(text("SET SESSION foreign_key_checks = 0"))
            await conn.execute(text(f"DROP TABLE {', '.join(quote(t) for t in extra)}"))
        await load(Path(record.path), db, record.kind)
        tables = await app_tables(conn)
        counts = await row_counts(conn, [t for t in backed_up if t in tables])
        revision = await _revision(conn, tables)
    return checked_restore(db, record, revision, counts)

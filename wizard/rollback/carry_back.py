"""Carrying the rows the engine wrote to the move's target (PostgreSQL or MySQL) back into the SQLite file,
before .env points at it. (Into a MySQL source, a move off MySQL's: wizard.rollback.carry_mysql, which shares
the checks and the proof below.)

In order, nothing changed until every check passed:
1. the file is as the move left it (its sha256 is the move's backup's); if not, a rollback that stopped
   after its carry-back committed is recognised by the file already equalling the target; when the engine wrote
   to the target after that, by the file's sha256 being the one that carry-back left (INTO_FILE): the file is put
   back from step 3's backup, and the next rollback measures again; else refused;
2. no key the target added is in the file already (an id a sequence handed out twice), and every table
   with rows written since has a primary key: else refused, naming them;
3. a fresh backup of the file, proven like every backup;
4. a target at a later revision than the file (move --to) is downgraded to the file's revision in one
   transaction, the values its downgrade drops saved to the run folder first;
5. the rows added and changed since, read from the target, and the removed keys, written to the file in
   one SQLite transaction (values in the engine's SQLite spelling: timestamps as SQLAlchemy writes them,
   booleans 0/1, JSON as its text);
6. the proof: the row-level verification of the file against the target (wizard.verify.run, the copy's
   quarantine and the run's own settings change set aside), judged on its rows (the target's schema is
   about to be dropped). A difference restores the file from step 3.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from wizard import schema
from wizard.backup import BackupRecord, backup_database, restore_database, sha256_file
from wizard.db import connect, quote, sqlite_uri, write_transaction
from wizard.errors import Refused, StepError
from wizard.events import Emit, StepFinished, StepStarted
from wizard.move.pgnames import pg_name
from wizard.move.tables import key_columns
from wizard.rollback.run import dropped_columns
from wizard.rollback.saved_rows import save_columns, write_lines
from wizard.secrets import mask
from wizard.rollback.since import CARRIED, Since, TableSince, record_end_state
from wizard.rollback.written import Written, read_written
from wizard.urls import DbUrl
from wizard.verify.run import VerifyReport, load_changed, verify_run

BEFORE = "before-carry-back"  # the run folder's subfolder for the file's fresh backup
INTO_FILE = "into-file.json"  # in CARRIED: the file's sha256 as the carry-back's commit left it, and its backup
EXAMPLES = 5


async def carry_back(source: DbUrl, target: DbUrl, since: Since, moved: BackupRecord, revision: str,
                     run_folder: Path, emit: Emit, step: str) -> str:
    """Steps 1-6 of the module's docstring; returns the sentence that says how the result was checked."""
    path = source.sqlite_path
    emit(StepStarted(step, f"carry the rows written since the move back into {path}"))
    if sha256_file(path) not in (moved.original_sha256, moved.sha256):
        ours = _as_carried(path, run_folder)
        try:
            return await carried_already(source, target, run_folder, emit, step, str(path),
                                         "its sha256 is not the move's backup's")
        except Refused:
            if ours is None:
                raise
            # The file is as a rollback that stopped left it, and the engine wrote to the target after that: the file
            # goes back to what the move left, which the next rollback carries everything into, measured again.
            await restore_database(ours, source, emit, step=step)
            raise StepError(f"{path} held the rows a rollback that stopped had carried into it, and the target was "
                            f"written after that: the file was put back as the move left it (from {ours.path}); "
                            f"nothing else was undone: roll back again, it measures the target again",
                            unchanged=True) from None
    await asyncio.to_thread(_refuse_collisions, path, since)
    # Read before anything changes, so that rows the file cannot take are refused first (written.read_written,
    # _refuse_unholdable); the file's columns are all in the target at a later revision, whose downgrades only
    # rewrite JSON.
    try:
        rows = await _read_target(target, path, since)
    except StepError as exc:  # the target changed while read: nothing changed, the next rollback measures again
        raise StepError(exc.message, unchanged=True) from None
    fresh = await backup_database(source, run_folder / BEFORE, emit, step=step)
    downgraded = await downgrade_target(target, revision, run_folder, emit, step)
    if downgraded:
        rows = await _read_target(target, path, since)
    try:
        written = await asyncio.to_thread(_write, path, since, rows)
    except StepError as exc:  # its transaction rolled back: the file as it was
        raise StepError(exc.message, unchanged=not downgraded) from None
    write_lines(run_folder / CARRIED / INTO_FILE, [{"sha256": sha256_file(path), "backup": fresh.to_dict()}])
    report = await check(source, target, run_folder, emit)
    if not rows_equal(report):
        await restore_database(fresh, source, emit, step=step)
        # With the target as it was too, nothing is changed: the engine, still on the target, may write again,
        # and the next rollback measures again (going on with this one's measure, it could never match).
        raise StepError(f"after carrying {written:,} rows into {path} it differs from the target "
                        f"({differences(report)}): the file was restored from {fresh.path}; nothing else was undone",
                        unchanged=not downgraded)
    sentence = (f"carried {written:,} row(s) written since the move back into {path} ({since.describe()}; a backup "
                f"of the file before it: {fresh.path}); checked row by row against the target: {rows_said(report)}")
    emit(StepFinished(step, sentence))
    return sentence


def as_the_source_holds(since: Since, run_folder: Path) -> Since:
    """`since` against the source rather than the move's end state: a row the run itself created in the target
    after the copy (the settings row the .env key moved into, wizard.move.settings) is not in the source, so
    the engine's change to it is a row to add there, and its removal nothing to undo. (Carried as changed,
    its delete found no row and the rollback stopped: "touched 0 rows".)"""
    created = {table: [pk for pk, record in records.items() if record.get("created")]
               for table, records in load_changed(run_folder).items()}
    if not any(created.values()):
        return since

    def ours(table: str, key: str) -> bool:
        value = json.loads(key)
        return any(value == (list(pk) if isinstance(pk, tuple) else [pk]) for pk in created.get(table, []))

    tables = [TableSince(t.table, added=sorted(t.added + [k for k in t.changed if ours(t.table, k)]),
                         changed=[k for k in t.changed if not ours(t.table, k)],
                         removed=[k for k in t.removed if not ours(t.table, k)], keyed=t.keyed)
              if t.keyed else t for t in since.tables]
    return Since(since.where, since.finished, tables, since.journey)


async def refusal_of_the_rows(source: DbUrl, target: DbUrl, since: Since) -> str | None:
    """What reading the rows written since would refuse (the confirmation says it before the operator agrees);
    None when they can be read. Reads only."""
    try:
        await _read_target(target, source.sqlite_path, since)
    except Refused as exc:
        return exc.message
    return None


async def carried_already(source: DbUrl, target: DbUrl, run_folder: Path, emit: Emit, step: str, where: str,
                          why: str) -> str:
    """Step 1 when the source is not as the move left it (`why`): the sentence when a rollback that stopped
    carried the rows already (the source equals the target row by row); else Refused, naming keys that differ."""
    report = await check(source, target, run_folder, emit)
    if rows_equal(report):
        sentence = (f"{where} already holds the rows written since (a rollback stopped after carrying them): "
                    f"checked row by row against the target: {rows_said(report)}")
        emit(StepFinished(step, sentence))
        return sentence
    raise Refused(f"{where} was written since the move too ({why}): carrying the target's rows into it could "
                  f"overwrite the engine's; nothing was changed: {differences(report)}; stop whatever writes to it "
                  f"and compare the two by hand")


async def check(source: DbUrl, target: DbUrl, run_folder: Path, emit: Emit) -> VerifyReport:
    """The row-level proof. The target's rows are recorded first (CARRIED): a write after this recording that the
    proof did not see is found by the drop that follows (wizard.rollback.undo_move), instead of dropped with it."""
    await record_end_state(target, run_folder / CARRIED)
    return await verify_run(source, target, run_folder, emit)


def _as_carried(path: Path, run_folder: Path) -> BackupRecord | None:
    """The file's backup from before a carry-back of this rollback (BEFORE) when the file is exactly as that
    carry-back's commit left it (its sha256, INTO_FILE): nothing but the carry-back wrote it since the move."""
    into = run_folder / CARRIED / INTO_FILE
    if not into.is_file():
        return None
    record = json.loads(into.read_text(encoding="utf-8"))
    return BackupRecord.from_dict(record["backup"]) if sha256_file(path) == record["sha256"] else None


def rows_equal(report: VerifyReport) -> bool:
    return all(t.status == "ok" for t in report.tables)


def rows_said(report: VerifyReport) -> str:
    equal = sum(t.equal for t in report.tables)
    held = sum(t.quarantined for t in report.tables)
    return f"{len(report.tables)} tables, {equal:,} rows equal" + (f", {held:,} in quarantine" if held else "")


def differences(report: VerifyReport) -> str:
    keys = [f"{t.table} {d.pk}" for t in report.tables for d in t.diffs][:EXAMPLES]
    return mask(report.summary() + (f" (e.g. {', '.join(map(str, keys))})" if keys else ""))


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({quote(table)})")]


def _in_file(conn: sqlite3.Connection) -> Callable[[str], str]:
    """The file's name for a table of the target, as `since` names it: the move gave a name over 63 bytes
    another (wizard.move.pgnames)."""
    names = {pg_name(r[0]): r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return lambda table: names.get(table, table)


def _where(key: list[str]) -> str:
    return " AND ".join(f"{quote(k)} IS ?" for k in key)


def _refuse_collisions(path: Path, since: Since) -> None:
    """Step 2: what cannot be carried back is said before anything changes."""
    refuse_unkeyed(since)
    conn = sqlite3.connect(sqlite_uri(path, "ro"), uri=True)
    try:
        taken = []
        in_file = _in_file(conn)
        for t in since.tables:
            if not t.added:
                continue
            name = in_file(t.table)
            key = key_columns(conn, name)
            for k in t.added:
                if conn.execute(f"SELECT 1 FROM {quote(name)} WHERE {_where(key)}", json.loads(k)).fetchone():
                    taken.append(f"{t.table} {k}")
    finally:
        conn.close()
    refuse_taken(taken, "the SQLite file")


def refuse_unkeyed(since: Since) -> None:
    """Refused when a table written since has no primary key: its rows cannot be found again one by one."""
    unkeyed = [t.table for t in since.tables if t.any and not t.keyed]
    if unkeyed:
        raise Refused(f"{', '.join(unkeyed)} in the target have no primary key and were written since the move: their "
                      f"rows cannot be carried back one by one; nothing was changed: roll back with --restore-backup "
                      f"(it saves the rows written since) or carry them by hand")


def refuse_taken(taken: list[str], where: str) -> None:
    """Refused when keys the target added since (`taken`, "table [key]") are in the source already."""
    if taken:
        raise Refused(f"the target handed out keys {where} holds already ({mask(', '.join(taken[:EXAMPLES]))}"
                      f"{f' and {len(taken) - EXAMPLES} more' if len(taken) > EXAMPLES else ''}; rows the move put in "
                      f"quarantine): carrying them back would overwrite those; nothing was changed")


async def downgrade_target(target: DbUrl, revision: str, run_folder: Path, emit: Emit, step: str) -> bool:
    """Step 4: the target at the file's revision, in one transaction, what it drops saved first; False when it
    was there already."""
    async with connect(target) as conn:
        async with write_transaction(conn):
            now = (await schema.inspect_schema(conn)).revision
            if not revision or now in (None, revision):
                return False
            for table, columns in dropped_columns(now, revision).items():
                await save_columns(conn, table, columns, run_folder)
            await schema.downgrade(conn, revision, emit, step=step)
            return True


async def _read_target(target: DbUrl, path: Path, since: Since) -> Written:
    """Step 5's rows: per table, (key, the file's columns' values in SQLite's spelling) of those added
    or changed since."""
    conn = sqlite3.connect(sqlite_uri(path, "ro"), uri=True)
    try:
        in_file = _in_file(conn)
        # The file's columns, read from the target under the names the move gave them there.
        shapes = {t.table: ([pg_name(c) for c in key_columns(conn, in_file(t.table))],
                            [pg_name(c) for c in _columns(conn, in_file(t.table))]) for t in since.tables if t.any}
        declared = {t.table: [r[2] for r in conn.execute(f"PRAGMA table_info({quote(in_file(t.table))})")]
                    for t in since.tables if t.any}
    finally:
        conn.close()
    rows = await read_written(target, since, shapes)
    _refuse_unholdable(rows, shapes, declared)
    return {table: [(k, tuple(sqlite_value(v) for v in values)) for k, values in found]
            for table, found in rows.items()}


def _refuse_unholdable(rows: Written, shapes: dict[str, tuple[list[str], list[str]]],
                       declared: dict[str, list[str]]) -> None:
    """A number written since that the file's column cannot hold as the target does: a NaN (SQLite stores NULL)
    or a numeric whose digits the column's affinity cuts (more than a REAL keeps, an integer past 64 bits). Carried
    back, the proof found the difference and the file was restored (exit 1, naming only the key); refused before
    anything changes, naming the table, column and key, as the dates no file spells are."""
    mem = sqlite3.connect(":memory:")
    odd = []
    try:
        for table, found in rows.items():
            for i, column in enumerate(shapes[table][1]):
                mem.execute("DROP TABLE IF EXISTS held")
                mem.execute(f"CREATE TABLE held (v {declared[table][i]})")
                for key, values in found:
                    value = values[i]
                    if isinstance(value, float) and math.isnan(value):
                        odd.append(f"{table}.{column} {key}: NaN")
                    elif isinstance(value, Decimal) and value.is_finite():
                        mem.execute("DELETE FROM held")
                        mem.execute("INSERT INTO held VALUES (?)", (str(value),))
                        back = mem.execute("SELECT v FROM held").fetchone()[0]
                        if Decimal(str(back)) != value:
                            odd.append(f"{table}.{column} {key}: {value} (the file's column keeps {back})")
                    elif isinstance(value, Decimal):
                        odd.append(f"{table}.{column} {key}: {value}")
    finally:
        mem.close()
    if odd:
        more = f" and {len(odd) - EXAMPLES} more" if len(odd) > EXAMPLES else ""
        raise Refused(mask(f"{', '.join(odd[:EXAMPLES])}{more}: a number written since that the SQLite file cannot "
                           f"hold as the target does; nothing was changed: set it to one it can in the target, or "
                           f"pass --restore-backup (the rows written since are saved first)"))


def sqlite_value(value: Any) -> Any:
    """A PostgreSQL or MySQL value as the engine keeps it in SQLite (see schema_1_0_0.sql's header); MySQL's
    booleans (TINYINT(1)) and JSON (text) come as SQLite keeps them already."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # isoformat pads the year to 4 digits; strftime's %Y does not on Linux
            return value.isoformat(" ", "microseconds")
        return value.isoformat(" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID, dt.timedelta)):
        return str(value)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _write(path: Path, since: Since, rows: dict[str, list[tuple[str, tuple]]]) -> int:
    """Step 5: deletes (the removed rows and the changed ones), then inserts (the added and changed rows), in one
    transaction; each must touch exactly its one row."""
    conn = sqlite3.connect(sqlite_uri(path, "rw"), uri=True, isolation_level=None, timeout=10)
    written = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            in_file = _in_file(conn)
            kept = _triggers_set_aside(conn, [in_file(t.table) for t in since.tables if t.any])
            for t in since.tables:
                if not t.any:
                    continue
                table = in_file(t.table)
                key, columns = key_columns(conn, table), _columns(conn, table)
                name = quote(table)
                # A changed row is deleted and inserted again, not updated: SQLite checks a unique index at each
                # row, and rows the engine wrote one at a time (two usernames swapped) meet it in any one order.
                for k in t.removed:
                    written += _one(conn, f"DELETE FROM {name} WHERE {_where(key)}", json.loads(k), t.table, k)
                for k in t.changed:
                    _one(conn, f"DELETE FROM {name} WHERE {_where(key)}", json.loads(k), t.table, k)
                marks = ", ".join("?" for _ in columns)
                for k, values in rows.get(t.table, []):
                    written += _one(conn, f"INSERT INTO {name} ({', '.join(map(quote, columns))}) VALUES ({marks})",
                                    list(values), t.table, k)
            for sql in kept:
                conn.execute(sql)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return written


def _triggers_set_aside(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """Drop the file's triggers on `tables` inside the carry-back's transaction; their CREATE statements, to run
    again before it commits. The engine's rows were written to the target, where no trigger ran (the move does
    not carry them): firing them now (another program's audit trigger) would write what the target never held."""
    marks = ", ".join("?" for _ in tables)
    found = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})",
                         tables).fetchall() if tables else []
    for name, _ in found:
        conn.execute(f"DROP TRIGGER {quote(name)}")
    return [sql for _, sql in found]


def _one(conn: sqlite3.Connection, sql: str, params: list[Any], table: str, key: str) -> int:
    n = conn.execute(sql, params).rowcount
    if n != 1:
        raise StepError(f"carrying {table} {mask(key)} back touched {n} rows of the SQLite file, not one: "
                        f"nothing was written to it")
    return 1

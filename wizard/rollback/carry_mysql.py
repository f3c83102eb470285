"""Carrying the rows the engine wrote to a move's PostgreSQL target back into its MySQL/MariaDB source (the move
off MySQL), before .env points at it again: wizard.rollback.carry_back's steps, with a database for a file.

In order, nothing changed until every check passed:
1. the source is as the move left it: its CHECKSUM TABLE of every engine table equals the fingerprint the
   move journaled (and checked again after its copy); if not, a rollback that stopped after its carry-back
   committed is recognised by the source already equalling the target row by row, else refused, naming keys;
2. no key the target added is in the source already, every table written since has a primary key;
3. the way back is the move's own proven mysqldump: taken while the source stood as it stands now (step 1),
   it must be there with its sha256; and every row written since within the server's max_allowed_packet, and
   every text value in it one its source column can hold (no longer than its VARCHAR(n); in a latin1 or
   utf8mb3 column, where MySQL would store '?' for the rest); and no text written since equal, in the
   source's collation, to a unique or key value the source keeps ('USER0' and 'user0' are two usernames to
   PostgreSQL, one to utf8mb4_general_ci);
4. a target at a later revision than the source (move --to) downgraded to the source's, as for a file;
5. the rows added and changed since, read from the target, and the removed keys, written to the source in
   one InnoDB transaction (a changed row deleted and inserted again; foreign key checks off for it: the
   target enforced them, and step 6 checks the result), in statements no longer than the server's
   max_allowed_packet; each statement must touch exactly its rows. An id inserted past AUTO_INCREMENT's
   counter moves the counter past it (InnoDB's rule), so the engine's next insert does not collide;
6. the proof: the row-level verification of the source against the target (wizard.verify.run), as for a
   file. A difference restores the source from the move's dump.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from pymysql.converters import escape_item
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.backup import BackupRecord, restore_database, sha256_file
from wizard.db import connect, quote
from wizard.errors import Refused, StepError
from wizard.events import Emit, StepFinished, StepStarted
from wizard.mysql import source as mysql_source
from wizard.mysql.kinds import json_columns
from wizard.mysql.rows import key_text, rows_by_key, shape, value_tuples
from wizard.rollback.carry_back import (carried_already, check, differences, downgrade_target, refuse_taken,
                                        refuse_unkeyed, rows_equal, rows_said)
from wizard.rollback.since import Since
from wizard.rollback.written import Shapes, Written, read_written
from wizard.secrets import mask
from wizard.urls import DbUrl

BATCH = 500  # rows a DELETE or INSERT
HEAD = 64 * 1024  # what an INSERT's packet holds besides its rows' values: its header, names, punctuation


async def carry_back_mysql(source: DbUrl, target: DbUrl, since: Since, moved: BackupRecord, fingerprint: dict[str, Any],
                           revision: str, run_folder: Path, emit: Emit, step: str) -> str:
    """Steps 1-6 of the module's docstring; `fingerprint`: the move's journaled one of the source. Returns the
    sentence that says how the result was checked."""
    where = f"database {source.database}"
    emit(StepStarted(step, f"carry the rows written since the move back into {where}"))
    tables, _, _ = await mysql_source.read_source(source)
    now = await mysql_source.fingerprint(source, tables)
    if {k: fingerprint.get(k) for k in now} != now:
        changed = sorted(t for t, n in now["checksums"].items() if fingerprint.get("checksums", {}).get(t) != n)
        return await carried_already(source, target, run_folder, emit, step, where,
                                     f"CHECKSUM TABLE of {', '.join(changed)} is not the move's")
    refuse_unkeyed(since)
    async with connect(source) as conn:
        shapes = {t.table: await shape(conn, t.table) for t in since.tables if t.any}
        refuse_taken(await _taken(conn, since, shapes), where)
        await conn.rollback()
    if not Path(moved.path).is_file() or sha256_file(Path(moved.path)) != moved.sha256:
        raise Refused(f"the move's backup {moved.path} is missing or not as written: the carry-back would have no "
                      f"way back; nothing was changed: pass --restore-backup, or keep the move")
    # Read before the downgrade too, so a value the source cannot hold is refused with nothing changed: the
    # source's columns are all there at a later revision, whose downgrades only rewrite JSON (utf8mb4 always).
    try:
        rows = await read_written(target, since, shapes)
    except StepError as exc:  # the target changed while read: nothing changed, the next rollback measures again
        raise StepError(exc.message, unchanged=True) from None
    await _refuse_unwritable(source, since, shapes, rows)
    downgraded = await downgrade_target(target, revision, run_folder, emit, step)
    if downgraded:
        rows = await read_written(target, since, shapes)
    try:
        written = await _write(source, since, shapes, rows)
    except StepError as exc:  # its transaction rolled back: the source as it was
        raise StepError(exc.message, unchanged=not downgraded) from None
    report = await check(source, target, run_folder, emit)
    if not rows_equal(report):
        await restore_database(moved, source, emit, step=step)
        # The source as the move left it again (its dump was taken as the source stands: step 1), and with the
        # target as it was too, nothing is changed: the engine, still on the target, may write more, and the
        # next rollback measures again (going on with this one's measure, it could never match).
        raise StepError(f"after carrying {written:,} rows into {where} it differs from the target "
                        f"({differences(report)}): it was restored from the move's backup {moved.path}; nothing "
                        f"else was undone", unchanged=not downgraded)
    sentence = (f"carried {written:,} row(s) written since the move back into {where} ({since.describe()}; in one "
                f"transaction, the source unchanged since the move by CHECKSUM TABLE before it, the move's backup "
                f"{moved.path} the way back); checked row by row against the target: {rows_said(report)}")
    emit(StepFinished(step, sentence))
    return sentence


async def refusal_of_the_rows(source: DbUrl, target: DbUrl, since: Since) -> str | None:
    """What step 3's checks of the rows written since would refuse (the confirmation says it before the
    operator agrees); None when they pass. Reads only: the written rows, and the source's answers."""
    async with connect(source) as conn:
        shapes = {t.table: await shape(conn, t.table) for t in since.tables if t.any}
        await conn.rollback()
    try:
        await _refuse_unwritable(source, since, shapes, await read_written(target, since, shapes))
    except Refused as exc:
        return exc.message
    return None


async def _refuse_unwritable(source: DbUrl, since: Since, shapes: Shapes, rows: Written) -> None:
    """Step 3's checks of the rows written since: each value one its source column can hold, each unique value
    one the source's collation holds apart."""
    await _refuse_unstorable(source, shapes, rows)
    await _refuse_colliding(source, since, shapes, rows)


async def _refuse_unstorable(source: DbUrl, shapes: Shapes, rows: Written) -> None:
    """Step 3's last check: refused when a row written since is longer, as its INSERT sends it, than the source
    server's max_allowed_packet (it could not go in at all), or a value in it is longer than its source column's
    CHAR(n) or VARCHAR(n) (PostgreSQL's varchar has no limit: the engine may write a 300-character name; MySQL
    counts characters, as Python does), or would lose a character in a source column of a narrower character set
    than utf8mb4 (latin1, utf8mb3: a move reads such a source whole), or is JSON the source's JSON column does
    not take. MySQL stores '?' for what a column cannot hold (or fails mid-write in strict mode), so the server
    itself is asked: the value converted to the column's character set and back must come back byte for byte;
    and JSON_VALID, MariaDB's CHECK on its JSON columns, asked of each JSON value."""
    async with connect(source) as conn:
        packet = (await conn.execute(text("SELECT @@max_allowed_packet"))).scalar()
        for table, written in rows.items():
            for k, v in written:
                if _sent(v) > packet - HEAD:
                    raise Refused(f"{table} {mask(k)} written since the move is longer, as the carry-back sends it, "
                                  f"than the source's max_allowed_packet ({packet:,} bytes): nothing was changed: "
                                  f"raise it on the server (SET GLOBAL max_allowed_packet = 1073741824) and roll "
                                  f"back again, or roll back with --restore-backup (it saves the rows written since)")
        widths = (await conn.execute(text(
            "SELECT table_name, column_name, data_type, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND data_type IN ('char', 'varchar')"))).all()
        for table, column, type_, width in widths:
            for k, v in _column_values(rows, shapes, table, column):
                if isinstance(v, str) and len(v) > width:
                    raise Refused(f"{table}.{column} is {type_}({width}) in the source, which cannot hold the "
                                  f"{len(v):,}-character value of {table} {mask(k)} written since the move; "
                                  f"nothing was changed: roll back with --restore-backup (it saves the rows written "
                                  f"since, to carry by hand into the column widened), or shorten it in the target")
        narrow = (await conn.execute(text(
            "SELECT table_name, column_name, character_set_name FROM information_schema.columns WHERE table_schema "
            "= DATABASE() AND character_set_name IS NOT NULL AND character_set_name NOT IN ('utf8mb4', 'binary')"
        ))).all()
        for table, column, charset in narrow:
            if not re.fullmatch(r"\w+", charset):
                continue
            texts = [(k, v) for k, v in _column_values(rows, shapes, table, column) if isinstance(v, str)]
            lost = await _first_not(conn, texts, f"HEX(CONVERT(CONVERT(v USING {charset}) USING utf8mb4)) = HEX(v)", packet)
            if lost is not None:
                raise Refused(f"{table}.{column} is in character set {charset} in the source, which cannot hold "
                              f"the value of {table} {mask(lost)} written since the move (MySQL would store '?' for "
                              f"what it cannot); nothing was changed: roll back with --restore-backup (it saves the "
                              f"rows written since, to carry by hand into the column widened to utf8mb4)")
        # PostgreSQL's json takes what MariaDB's CHECK (json_valid) and MySQL's JSON refuse: nesting deeper than
        # 31 levels (MariaDB), a lone surrogate escape ("\ud800").
        checked = await conn.run_sync(json_columns) | set((await conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND data_type = 'json'"))).all())
        for table, column in sorted(checked):
            texts = [(k, v) for k, v in _column_values(rows, shapes, table, column) if isinstance(v, str)]
            bad = await _first_not(conn, texts, "JSON_VALID(v)", packet)
            if bad is not None:
                raise Refused(f"{table}.{column} in the source takes only JSON its server accepts, and the value of "
                              f"{table} {mask(bad)} written since the move is not (PostgreSQL's json takes deeper "
                              f"nesting, and lone surrogate escapes); nothing was changed: change it in the target "
                              f"and roll back again, or roll back with --restore-backup (it saves the rows written "
                              f"since)")
        await conn.rollback()


def _column_values(rows: Written, shapes: Shapes, table: str, column: str) -> list[tuple[str, Any]]:
    """(key, value of `column`) of each row of `table` written since; none when no row was, or the carry-back does
    not write that column."""
    if table not in rows or column not in shapes[table][1]:
        return []
    i = shapes[table][1].index(column)
    return [(k, v[i]) for k, v in rows[table]]


async def _first_not(conn: AsyncConnection, values: list[tuple[str, Any]], holds: str, packet: int) -> str | None:
    """The key of the first of `values` (key, value) for which the server finds `holds` (SQL of v) false; None when
    it holds for all. Asked a batch at a time, each within max_allowed_packet."""
    for batch in _batches([(k, (v,)) for k, v in values], packet - HEAD):
        union = " UNION ALL ".join(f"SELECT {n} AS n, :v{n} AS v" for n in range(len(batch)))
        failed = (await conn.execute(text(f"SELECT n FROM ({union}) x WHERE NOT ({holds}) LIMIT 1"),
                                     {f"v{n}": v for n, (_, (v,)) in enumerate(batch)})).scalar()
        if failed is not None:
            return batch[failed][0]
    return None


async def _refuse_colliding(source: DbUrl, since: Since, shapes: Shapes, rows: Written) -> None:
    """Step 3's collation check: refused when a row written since would meet, in a unique index of text
    columns (the primary key too), a value the source holds equal in its collation, or another written row's.
    PostgreSQL compares text byte by byte; a case- or accent-blind collation (or one that pads) does not, and
    the source's index would refuse the row mid-write. The server itself compares, in the column's collation."""
    async with connect(source) as conn:
        found = (await conn.execute(text(
            "SELECT s.table_name, s.index_name, s.column_name, c.collation_name FROM information_schema.statistics s "
            "JOIN information_schema.columns c ON c.table_schema = s.table_schema AND c.table_name = s.table_name "
            "AND c.column_name = s.column_name WHERE s.table_schema = DATABASE() AND s.non_unique = 0 "
            "ORDER BY s.table_name, s.index_name, s.seq_in_index"))).all()
        indexes: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        for table, index, column, collation in found:
            indexes.setdefault((table, index), []).append((column, collation))
        for t in since.tables:
            written = rows.get(t.table, [])
            if not written:
                continue
            key, columns = shapes[t.table]
            going = {*t.removed, *t.changed}  # their values leave the source before the written rows go in
            for (table, index), cols in indexes.items():
                if table != t.table or not all(c and re.fullmatch(r"\w+", c) for _, c in cols):
                    continue  # a number or a date compares as PostgreSQL compares it
                at = [columns.index(c) for c, _ in cols]
                values = [(k, tuple(v[i] for i in at)) for k, v in written]
                values = [(k, v) for k, v in values if None not in v]  # NULLs never collide
                for start in range(0, len(values), BATCH):
                    batch = values[start:start + BATCH]
                    union = " UNION ALL ".join(
                        f"SELECT {n} AS n, " + ", ".join(f":v{n}_{j} AS c{j}" for j in range(len(cols)))
                        for n in range(len(batch)))
                    params = {f"v{n}_{j}": x for n, (_, v) in enumerate(batch) for j, x in enumerate(v)}
                    equal = " AND ".join(f"t.{quote(c)} = CONVERT(x.c{j} USING utf8mb4) COLLATE {coll}"
                                         for j, (c, coll) in enumerate(cols))
                    key_sql = ", ".join(f"t.{quote(k)}" for k in key)
                    met = await conn.execute(text(
                        f"SELECT x.n, {key_sql}, {', '.join(f't.{quote(c)}' for c, _ in cols)} FROM ({union}) x "
                        f"JOIN {quote(t.table)} t ON {equal}"), params)
                    for n, *rest in met:
                        other = key_text(rest[:len(key)])
                        if other not in going:
                            _collides(t.table, cols, batch[n], (other, tuple(rest[len(key):])))
                    same = " AND ".join(f"a.c{j} = CONVERT(b.c{j} USING utf8mb4) COLLATE {coll}"
                                        for j, (_, coll) in enumerate(cols))
                    pair = (await conn.execute(text(
                        f"SELECT a.n, b.n FROM ({union}) a JOIN ({union}) b ON a.n < b.n AND {same} LIMIT 1"),
                        params)).first()
                    if pair is not None:
                        _collides(t.table, cols, batch[pair[0]], batch[pair[1]])
                # Written rows of two batches are not compared with each other (more than BATCH rows written
                # since to one table is rare): the write then meets the index, and changes nothing (_write).
        await conn.rollback()


def _collides(table: str, cols: list[tuple[str, str]], written: tuple[str, tuple], other: tuple[str, tuple]) -> None:
    names = ", ".join(c for c, _ in cols)

    def shown(values: tuple) -> str:
        return mask(json.dumps(values[0] if len(values) == 1 else list(values), ensure_ascii=False, default=str))

    raise Refused(f"{table}.{names}: {shown(written[1])} of {table} {mask(written[0])} written since the move "
                  f"equals {shown(other[1])} of {table} {mask(other[0])} in the source's collation "
                  f"{cols[0][1]}, whose unique index would refuse it; nothing was changed: make them differ in the "
                  f"target (they differ only in case, accents or trailing spaces) and roll back again, or roll back "
                  f"with --restore-backup (it saves the rows written since)")


async def _taken(conn: AsyncConnection, since: Since, shapes: Shapes) -> list[str]:
    """Step 2: the keys added to the target since that the source holds already, as "table [key]"."""
    taken = []
    for t in since.tables:
        if t.added:
            key, _ = shapes[t.table]
            taken += [f"{t.table} {k}" for k, _ in await rows_by_key(conn, t.table, key, [], t.added)]
    return taken


async def _write(source: DbUrl, since: Since, shapes: Shapes, rows: Written) -> int:
    """Step 5: deletes (the removed rows and the changed ones), then inserts (the added and changed rows), in one
    transaction, a batch of rows a statement (a round trip a row is most of the time taken); each statement must
    touch exactly its rows."""
    written = 0
    async with connect(source) as conn:
        try:
            async with conn.begin():
                written = await _write_rows(conn, since, shapes, rows)
        except IntegrityError as exc:  # an index of the source refused a row: the transaction is rolled back
            raise StepError(f"the source refused a row carried back ({mask(str(exc.orig.args[-1]))}): nothing "
                            f"was written to it; roll back with --restore-backup (it saves the rows written since)"
                            ) from None
    return written


async def _write_rows(conn: AsyncConnection, since: Since, shapes: Shapes, rows: Written) -> int:
    written = 0
    await conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    packet = (await conn.execute(text("SELECT @@max_allowed_packet"))).scalar()
    for t in since.tables:
        if not t.any:
            continue
        key, columns = shapes[t.table]
        name = quote(t.table)
        key_sql = ", ".join(quote(k) for k in key)
        # A changed row is deleted and inserted again, not updated: InnoDB checks a unique index at each row,
        # and rows the engine wrote one at a time (two usernames swapped) meet it in any one order.
        going = t.removed + t.changed
        for start in range(0, len(going), BATCH):
            keys = going[start:start + BATCH]
            tuples, params = value_tuples([json.loads(k) for k in keys], "k")
            await _exactly(conn, f"DELETE FROM {name} WHERE ({key_sql}) IN ({tuples})", params, t.table, keys)
        written += len(t.removed)
        # As asyncpg gives them: JSON as its text, naive timestamps, booleans (True is 1 to MySQL).
        for batch in _batches(rows.get(t.table, []), packet - HEAD):
            tuples, params = value_tuples([v for _, v in batch], "c")
            written += await _exactly(conn, f"INSERT INTO {name} ({', '.join(map(quote, columns))}) "
                                            f"VALUES {tuples}", params, t.table, [k for k, _ in batch])
    return written


def _sent(values: tuple) -> int:
    """The bytes a row's values take in the INSERT the driver sends: pymysql's literals (text escaped, quotes
    and backslashes doubled), a comma each and the parentheses."""
    return sum(len(escape_item(v, "utf8mb4").encode("utf-8", "surrogatepass")) + 1 for v in values) + 2


def _batches(rows: list[tuple[str, tuple]], room: int) -> Iterator[list[tuple[str, tuple]]]:
    """`rows` in INSERTs of BATCH rows at most whose values take no more than `room` bytes (max_allowed_packet
    less the statement's own text): twenty 1 MB documents in one were past MariaDB's 16 MiB, and the server
    dropped the connection. A row alone past it is refused before anything is written (_refuse_unstorable)."""
    batch: list[tuple[str, tuple]] = []
    size = 0
    for row in rows:
        n = _sent(row[1])
        if batch and (len(batch) == BATCH or size + n > room):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += n
    if batch:
        yield batch


async def _exactly(conn: AsyncConnection, sql: str, params: dict[str, Any], table: str, keys: list[str]) -> int:
    """Run `sql`; StepError (the transaction rolled back) unless it touched exactly the rows of `keys`."""
    n = (await conn.execute(text(sql), params)).rowcount
    if n != len(keys):
        raise StepError(f"carrying {table} {mask(', '.join(keys[:3]))}{' ...' if len(keys) > 3 else ''} back touched "
                        f"{n} rows of the source, not {len(keys)}: nothing was written to it")
    return n

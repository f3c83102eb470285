"""The wizard's own dump of a MySQL or MariaDB database, for when mysqldump and mysql are not installed.

Written through the wizard's driver connection in one READ ONLY transaction WITH CONSISTENT SNAPSHOT (InnoDB:
every table as of one moment, as mysqldump --single-transaction reads them): each table's SHOW CREATE TABLE (its
AUTO_INCREMENT counter kept, as mysqldump keeps it: an id the engine used and deleted is not given out again after a
restore), then its rows as multi-row INSERTs, a fetch at a time (an unbuffered cursor: constant
memory). The file opens and closes with mysqldump's session settings (utf8mb4, UTC, FOREIGN_KEY_CHECKS=0, its
sql_mode) and ends with mysqldump's "-- Dump completed", so the mysql client restores it as it restores a dump.

Every value is written as a literal that gives its stored bytes back: text of a utf8 column escaped by PyMySQL's
escape_string (backslash escapes, which the file's sql_mode keeps on), binary strings and any text that is not
UTF-8 as hex literals X'..' (a hex literal is a binary string: a text column takes its bytes as they are), dates
and times as the server prints them (microseconds, zero dates), numbers as they are, NULL as NULL.

One statement a line (escape_string escapes line ends; a definition's lines are joined), after a first line
that names the format: with no mysql client, load() runs the file line by line through the driver, and refuses
any file that does not open with that line and end with the last one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import pymysql
from pymysql.converters import escape_string
import aiomysql

from wizard.db import connect
from wizard.errors import StepError
from wizard.urls import DbUrl

KIND = "mysql_stream"  # BackupRecord.kind
FORMAT = b"-- wizard stream dump 1: one statement a line, restorable by the mysql client"
COMPLETED = b"-- Dump completed"  # mysqldump's last line when it got to the end, and this dump's
LINE_BYTES = 1 << 20  # an INSERT's size before the next line begins (the server takes 16 MB a statement)
FETCH = 1000  # rows a fetch
_NUMBERS = {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "year"}
_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit", "geometry", "point", "linestring",
           "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"}
_UTF8 = ("utf8", "utf8mb3", "utf8mb4")

# mysqldump's opening and closing lines, less LOCK TABLES; MariaDB's CHECKs off as the dump's restore runs
# them (a JSON column holding text that is not JSON, written with its checks off, comes back as it was).
_OPEN = b"""/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
/*M!100201 SET @OLD_CHECK_CONSTRAINT_CHECKS=@@CHECK_CONSTRAINT_CHECKS, CHECK_CONSTRAINT_CHECKS=0 */;
"""
_CLOSE = b"""/*M!100201 SET CHECK_CONSTRAINT_CHECKS=@OLD_CHECK_CONSTRAINT_CHECKS */;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;
"""


def _name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _hex(value: bytes) -> bytes:
    return b"X'" + value.hex().upper().encode() + b"'"


def _literal(kind: str, charset: str | None):
    """value -> its literal, for a column of this data type and character set (as read by _select)."""
    if kind in _NUMBERS:
        return lambda v: b"NULL" if v is None else (repr(v) if isinstance(v, float) else str(v)).encode()
    if kind in _BINARY or (charset is not None and charset not in _UTF8):
        return lambda v: b"NULL" if v is None else _hex(v)

    def text(v: Any) -> bytes:
        if v is None:
            return b"NULL"
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                return _hex(v)
        return b"'" + escape_string(v).encode("utf-8") + b"'"

    return text


def _select(name: str, kind: str, charset: str | None) -> str:
    """The column as _literal takes it: a text column's stored bytes, a date or time as the server prints it."""
    column = _name(name)
    if kind in _NUMBERS or kind in _BINARY:
        return column
    return f"CAST({column} AS BINARY)" if charset is not None else f"CAST({column} AS CHAR)"


async def _table(cur: aiomysql.Cursor, table: str, out: BinaryIO) -> None:
    await cur.execute(f"SHOW CREATE TABLE {_name(table)}")
    (_, ddl), = await cur.fetchall()
    out.write(b"DROP TABLE IF EXISTS " + _name(table).encode() + b";\n")
    # SHOW CREATE TABLE escapes line ends inside its literals: its own line ends only separate clauses.
    out.write(ddl.replace("\n", " ").encode("utf-8") + b";\n")
    await cur.execute("SELECT column_name, data_type, character_set_name FROM information_schema.columns "
                      "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position", (table,))
    columns = list(await cur.fetchall())
    literals = [_literal(kind.lower(), charset) for _, kind, charset in columns]
    await cur.execute(f"SELECT {', '.join(_select(n, k.lower(), c) for n, k, c in columns)} FROM {_name(table)}")
    head = b"INSERT INTO " + _name(table).encode() + b" VALUES "
    line: list[bytes] = []
    size = 0
    while rows := await cur.fetchmany(FETCH):
        for row in rows:
            values = b"(" + b",".join(f(v) for f, v in zip(literals, row)) + b")"
            line.append(values)
            size += len(values) + 1
            if size >= LINE_BYTES:
                _insert(out, head, line)
                line, size = [], 0
    if line:
        _insert(out, head, line)


def _insert(out: BinaryIO, head: bytes, rows: list[bytes]) -> None:
    out.write(head + b",".join(rows) + b";\n")


async def write(db: DbUrl, tables: list[str], path: Path) -> None:
    """`tables` of `db` into the file at `path` (made already, mode 0600), in one consistent snapshot."""
    async with connect(db) as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        cur = await raw.cursor(aiomysql.SSCursor)  # unbuffered: rows stream from the server
        try:
            # No ANSI_QUOTES: SHOW CREATE TABLE quotes names with backticks, as the file's sql_mode reads them;
            # a TIMESTAMP in UTC, as the file's TIME_ZONE reads it.
            await cur.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
            await cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            with open(path, "wb") as out:
                out.write(FORMAT + b"\n" + _OPEN)
                for table in tables:
                    await _table(cur, table, out)
                out.write(_CLOSE + COMPLETED + b"\n")
        except BaseException as exc:
            # Closing the cursor would read the rest of a table's rows first (a stop would wait for them all).
            await conn.invalidate()
            if isinstance(exc, pymysql.err.MySQLError):
                raise StepError(f"the wizard's own dump of {db} failed: {_error_line(exc)}: nothing was changed") \
                    from None
            raise
        await cur.close()
        await raw.rollback()


def _error_line(exc: pymysql.err.MySQLError) -> str:
    """The server's error as the mysql client's ERROR line says it."""
    return f"ERROR {exc.args[0]}: {str(exc.args[-1]).splitlines()[0][:300]}"


def _one_line(line: bytes) -> bool:
    """A line of the format: empty, a comment, or one statement, in UTF-8."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not line or line.startswith(b"-- ") or line.endswith(b";")


def _check_format(path: Path) -> None:
    """StepError unless the file opens with FORMAT, ends with COMPLETED, and each line between is a comment or one
    statement: read through before anything runs, so a file not in the format changes nothing."""
    with open(path, "rb") as f:
        first = last = f.readline().rstrip(b"\n")
        for number, line in enumerate(f, 2):
            last = line.rstrip(b"\n")
            if not _one_line(last):
                raise StepError(f"{path}, line {number}: not one UTF-8 statement ending the line: not restoring it "
                                "without the mysql client")
    if first != FORMAT or last != COMPLETED:
        raise StepError(f"{path} is not a complete dump in the wizard's own format (its first line "
                        f"'{FORMAT.decode()}', its last '{COMPLETED.decode()}'): not restoring it without the mysql "
                        "client")


async def load(path: Path, db: DbUrl) -> None:
    """Run the file's statements in `db` through the driver, one a line (its CREATE TABLEs drop each table first)."""
    _check_format(path)
    async with connect(db) as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        async with raw.cursor() as cur:
            with open(path, "rb") as f:
                for number, line in enumerate(f, 1):
                    line = line.rstrip(b"\n")
                    if line and not line.startswith(b"-- "):
                        try:
                            await cur.execute(line[:-1].decode("utf-8"))
                        except pymysql.err.MySQLError as exc:
                            raise StepError(f"restoring {path} through the driver failed at line {number}: "
                                            f"{_error_line(exc)}") from None
        await raw.commit()

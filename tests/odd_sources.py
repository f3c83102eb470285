"""A generator of odd source databases: each oddity is one line, a name, the SQL that builds the file with
python's sqlite3, and what a move of it must end in (tests/faults/test_odd_sources.py runs each).

`Moved`: the move finishes and verifies, nothing held, with exactly these conversions counted (and, if
given, a line the move printed). `Held`: without a policy the pre-flight refuses (exit 3), naming the table,
the column and an example key, and writes nothing; with `--on-orphans quarantine` those rows go to
quarantine by that rule and the rest is moved and verified. An oddity with `engine=True` is built on a
small engine database (wizard.sample) and moved as one, not `--reflected`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard import normalize as n
from wizard import sample
from wizard.scan import NULL_KEY, SAME_KEY, SAME_UNIQUE


@dataclass(frozen=True)
class Moved:
    conversions: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # table -> column -> name -> n
    says: str = ""  # a line the move printed (a warning about what it did not carry)


@dataclass(frozen=True)
class Held:
    table: str
    column: str
    key: Any  # the example key the refusal names, as the quarantine's `pk` shows it
    rule: str
    rows: int = 1  # rows that go to quarantine


@dataclass(frozen=True)
class Oddity:
    name: str
    statements: tuple[str, ...]
    expect: Moved | Held
    engine: bool = False


def odd(name: str, *statements: str, expect: Moved | Held, engine: bool = False) -> Oddity:
    return Oddity(name, statements, expect, engine)


T = "CREATE TABLE t (id INTEGER PRIMARY KEY, {})"

ODDITIES = [
    # 4. NULL in a primary key that is not the rowid
    odd("NULL in a TEXT PRIMARY KEY", "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)",
        "INSERT INTO t VALUES (NULL, 'a'), (NULL, 'b'), ('x', 'c')", expect=Held("t", "k", None, NULL_KEY, rows=2)),
    odd("NULL in an `integer auto_increment primary key` (pgloader's sqlite.db)",
        "CREATE TABLE t (id integer auto_increment primary key, v TEXT)",
        "INSERT INTO t VALUES (NULL, 'a'), (1, 'b')", expect=Held("t", "id", None, NULL_KEY)),
    odd("NULL in an INTEGER PRIMARY KEY DESC (not a rowid alias)", "CREATE TABLE t (id INTEGER PRIMARY KEY DESC, v)",
        "INSERT INTO t VALUES (NULL, 'a'), (2, 'b')", expect=Held("t", "id", None, NULL_KEY)),
    # 5. keys and unique values distinct in SQLite, equal after conversion
    odd("keys 1, '1' and x'31' in an untyped key", "CREATE TABLE t (k PRIMARY KEY, v)",
        "INSERT INTO t VALUES ('1', 'text'), (1, 'integer'), (x'31', 'blob')", expect=Held("t", "k", 1, SAME_KEY, 2)),
    odd("keys 'a' and x'61' in a TEXT key", "CREATE TABLE t (k TEXT PRIMARY KEY, v)",
        "INSERT INTO t VALUES ('a', 1), (x'61', 2)", expect=Held("t", "k", "\\x61", SAME_KEY)),
    odd("a BLOB x'31' in an integer key", "CREATE TABLE t (id integer auto_increment primary key, v)",
        "INSERT INTO t VALUES (1, 'a'), (x'31', 'b')",
        expect=Held("t", "id", "\\x31", "a value that is not a whole number in an bigint column")),
    odd("one instant spelled with T...Z and with a space, as keys", "CREATE TABLE t (at DATETIME PRIMARY KEY, v)",
        "INSERT INTO t VALUES ('2024-01-01 10:00:00.000000', 1), ('2024-01-01T10:00:00Z', 2)",
        expect=Held("t", "at", "2024-01-01T10:00:00Z", SAME_KEY)),
    odd("UNIQUE values 'a' and x'61'", T.format("code TEXT UNIQUE"), "INSERT INTO t VALUES (1, 'a'), (2, x'61')",
        expect=Held("t", "code", 2, SAME_UNIQUE)),
    odd("a partial UNIQUE index (WHERE deleted = 0)", T.format("email TEXT, deleted INTEGER"),
        "CREATE UNIQUE INDEX live_email ON t (email) WHERE deleted = 0",
        "INSERT INTO t VALUES (1, 'a@b.c', 0), (2, 'a@b.c', 1)",
        expect=Moved(says="unique index live_email (email) is partial (WHERE deleted = 0): not carried")),
    # 6. text that is not UTF-8
    odd("invalid UTF-8 in TEXT", T.format("name TEXT"), "INSERT INTO t VALUES (1, 'ok'), (2, CAST(x'ff' AS TEXT))",
        expect=Held("t", "name", 2, n.NOT_UTF8_TEXT)),
    odd("a lone surrogate in TEXT", T.format("name TEXT"),
        "INSERT INTO t VALUES (1, 'ok'), (2, CAST(x'61eda080' AS TEXT))", expect=Held("t", "name", 2, n.NOT_UTF8_TEXT)),
    # 7. REAL Infinity in JSON
    odd("REAL Infinity (9e999) in a JSON column", T.format("doc JSON"),
        "INSERT INTO t VALUES (1, '{\"a\": 1}'), (2, 9e999)", expect=Held("t", "doc", 2, n.NOT_FINITE_JSON)),
    odd("REAL Infinity (9e999) in executions.state of an engine database", "UPDATE executions SET state = 9e999 "
        "WHERE id = 7", expect=Held("executions", "state", 7, n.NOT_FINITE_JSON), engine=True),
    # 9. the ends of the timestamp range
    odd("timestamps and dates at the range's ends", T.format("at DATETIME, day DATE"),
        "INSERT INTO t VALUES (1, '0001-01-01 00:00:00', '0001-01-01'), "
        "(2, '9999-12-31 23:59:59.999999', '9999-12-31'), (3, '0001-01-01 00:00:00.000000', '2024-01-01')",
        expect=Moved()),
    odd("the range's ends as a primary key, and in a table without one",
        "CREATE TABLE t (at DATETIME PRIMARY KEY)", "CREATE TABLE u (at DATETIME, day DATE)",
        "INSERT INTO t VALUES ('9999-12-31 23:59:59.999999'), ('0001-01-01 00:00:00.000000')",
        "INSERT INTO u VALUES ('9999-12-31 23:59:59.999999', '9999-12-31'), ('0001-01-01 00:00:00', '0001-01-01')",
        expect=Moved()),
    # 11. an integer in a DATE or DATETIME column is not epoch seconds
    odd("an integer (20200101) in a DATE column", T.format("day DATE"), "INSERT INTO t VALUES (1, 20200101)",
        expect=Held("t", "day", 1, n.NUMBER_IN_DATE)),
    odd("an integer (1735689600) in a DATETIME column", T.format("at DATETIME"),
        "INSERT INTO t VALUES (1, '2024-01-01 10:00:00'), (2, 1735689600)",
        expect=Held("t", "at", 2, n.NUMBER_IN_TIMESTAMP)),
    # 12. Python's number parsing
    odd("text '1_000' in a BIGINT column", T.format("n BIGINT"), "INSERT INTO t VALUES (1, '1_000')",
        expect=Held("t", "n", 1, "text that is not a whole number in an bigint column")),
    odd("Arabic-Indic digits in a BIGINT column", T.format("n BIGINT"), "INSERT INTO t VALUES (1, '١٢٣')",
        expect=Held("t", "n", 1, "text that is not a whole number in an bigint column")),
    odd("text 'nan' in a REAL column", T.format("x REAL"), "INSERT INTO t VALUES (1, 'nan')",
        expect=Held("t", "x", 1, "a value that is not a number in a float column")),
    odd("text 'nan' in a NUMERIC column", T.format("x NUMERIC"), "INSERT INTO t VALUES (1, 'nan')",
        expect=Held("t", "x", 1, "a value that is not a number in a numeric column")),
    # 13. strict, counted rules
    odd("a UTF-8 BLOB in a TEXT column", T.format("name TEXT"), "INSERT INTO t VALUES (1, x'6869'), (2, 'plain')",
        expect=Moved({"t": {"name": {n.TEXT_FROM_BLOB: 1}}})),
    odd("sub-microsecond digits", T.format("at DATETIME"), "INSERT INTO t VALUES (1, '2024-01-01 00:00:00.9999999')",
        expect=Held("t", "at", 1, n.SUB_MICROSECOND)),
    odd("zero digits past the microsecond", T.format("at DATETIME"),
        "INSERT INTO t VALUES (1, '2024-01-01 00:00:00.1234560'), (2, '2024-01-01T10:00:00+02:00')",
        expect=Moved({"t": {"at": {n.TS_ZEROS: 1, n.TS_OFFSET: 1}}})),
    odd("'yes' in a BOOLEAN column", T.format("ok BOOLEAN"), "INSERT INTO t VALUES (1, 'true'), (2, 'yes')",
        expect=Held("t", "ok", 2, "a value that is not a boolean in a boolean column")),
    odd("a timestamp with a time of day in a DATE column", T.format("day DATE"),
        "INSERT INTO t VALUES (1, '2024-01-01 00:00:00'), (2, '2024-01-01 10:30:00')",
        expect=Held("t", "day", 2, "a timestamp with a time of day in a date column: the date alone would lose it")),
]


def build(path: Path, oddity: Oddity) -> Path:
    """The oddity's SQLite file at `path` (on a small engine database when it says so)."""
    if oddity.engine:
        sample.build(path, executions=20, workflows=3, users=2)
    conn = sqlite3.connect(path)
    try:
        for statement in oddity.statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return path

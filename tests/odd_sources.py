"""A generator of odd source databases: each oddity is one line, a name, the SQL that builds the file with
python's sqlite3, and what a move of it must end in. tests/faults/test_odd_sources.py runs the values'
oddities (ODDITIES), tests/faults/test_odd_names.py the names' and the schema's (NAME_ODDITIES).

`Moved`: the move finishes and verifies, nothing held, with exactly these conversions counted (and, if
given, a line the move printed). `Held`: without a policy the pre-flight refuses (exit 3), naming the table,
the column and an example key, and writes nothing; with `--on-orphans quarantine` those rows go to
quarantine by that rule and the rest is moved and verified. `Named`: the move finishes and verifies, and
`wizard plan` and the report say these words (what was not carried, a name PostgreSQL gets another for);
or, `refused`, the pre-flight refuses whatever the policy, saying them. An oddity with `engine=True` is
built on a small engine database (wizard.sample) and moved as one, not `--reflected`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.move import normalize as n
from wizard import sample
from wizard.move.scan import NULL_KEY, NULL_VALUE, SAME_KEY, SAME_UNIQUE, TOO_BIG_FOR_INDEX


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
class Named:
    named: tuple[str, ...] = ()
    refused: bool = False


@dataclass(frozen=True)
class Oddity:
    name: str
    statements: tuple[str, ...]
    expect: Moved | Held | Named
    engine: bool = False


def odd(name: str, *statements: str, expect: Moved | Held | Named, engine: bool = False) -> Oddity:
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
    # values too big for PostgreSQL's btree entry: the index build failed after the copy
    odd("10,000 random hex characters in executions.status (indexed) of an engine database",
        "UPDATE executions SET status = hex(randomblob(5000)) WHERE id = 7",
        expect=Held("executions", "status", 7, TOO_BIG_FOR_INDEX), engine=True),
    odd("8,000 random hex characters in a UNIQUE column", "CREATE TABLE t (k TEXT PRIMARY KEY, code TEXT UNIQUE)",
        "INSERT INTO t VALUES ('a', 'b'), ('d', hex(randomblob(2000)) || hex(randomblob(2000)))",
        expect=Held("t", "code", "d", TOO_BIG_FOR_INDEX)),
    odd("a foreign key to columns unique only by a partial index", T.format("code TEXT, live INT"),
        "CREATE UNIQUE INDEX t_code ON t (code) WHERE live = 1",
        "CREATE TABLE c (id INTEGER PRIMARY KEY, code TEXT REFERENCES t (code))",
        "INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 1)", "INSERT INTO c VALUES (1, 'a'), (2, 'b')",
        expect=Moved(says="c.code: its foreign key to t is not carried (t(code) is not unique); the values are "
                          "copied as they are, unchecked")),
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
    # a NULL the engine's schema forbids, in a file whose table lacks the NOT NULL (another program made it)
    odd("NULL in executions.status, which the engine's schema makes NOT NULL (the file's table does not)",
        "ALTER TABLE executions RENAME TO executions_made_here",
        "CREATE TABLE executions (id INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, status VARCHAR, state JSON, "
        "error TEXT, started_at DATETIME, completed_at DATETIME, PRIMARY KEY (id))",
        "INSERT INTO executions SELECT * FROM executions_made_here", "DROP TABLE executions_made_here",
        "UPDATE executions SET status = NULL WHERE id = 7", expect=Held("executions", "status", 7, NULL_VALUE),
        engine=True),
    # the engine's tables remade by another program: its values are judged by the history's types, not the file's
    odd("users remade with types spelled varchar(36), bool and timestamp with time zone",
        "ALTER TABLE users RENAME TO users_made_here",
        "CREATE TABLE users (id varchar(36) NOT NULL, username varchar(255) NOT NULL, email varchar(255), "
        "hashed_password varchar(255), is_active bool, is_admin bool, created_at timestamp with time zone, "
        "PRIMARY KEY (id), UNIQUE (username))",
        "INSERT INTO users SELECT * FROM users_made_here", "DROP TABLE users_made_here", expect=Moved(), engine=True),
    odd("executions remade as a STRICT table (INT, TEXT, ANY)", "ALTER TABLE executions RENAME TO executions_made_here",
        "CREATE TABLE executions (id INT NOT NULL, workflow_id TEXT NOT NULL, status TEXT NOT NULL, state ANY, "
        "error TEXT, started_at TEXT, completed_at TEXT, PRIMARY KEY (id)) STRICT",
        "INSERT INTO executions SELECT * FROM executions_made_here", "DROP TABLE executions_made_here",
        expect=Moved(), engine=True),
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


_LONG = "a_column_name_that_goes_on_and_on_past_what_postgresql_keeps_in_one_identifier"  # 79 bytes


def _wide(columns: int) -> list[str]:
    cols = ", ".join(f"c{i} INTEGER" for i in range(columns))
    values = ", ".join(str(i) for i in range(columns))
    return [f"CREATE TABLE wide(id INTEGER PRIMARY KEY, {cols})",
            f"INSERT INTO wide VALUES (1, {values})", f"INSERT INTO wide VALUES (2, {values})"]


NAME_ODDITIES = [
    # 1. defaults PostgreSQL cannot take as they are
    odd("DATETIME DEFAULT 0", *["CREATE TABLE stamps(id INTEGER PRIMARY KEY, StartTime DATETIME DEFAULT 0)",
                                  "INSERT INTO stamps VALUES (1, NULL)",
                                  "INSERT INTO stamps VALUES (2, '2024-01-02 03:04:05')"],
        expect=Named(("default stamps.StartTime", "DEFAULT 0"))),
    odd("integer default '\"0\"'", *["CREATE TABLE pub(id INTEGER PRIMARY KEY, is_public integer default '\"0\"')",
                                      "INSERT INTO pub VALUES (1, 0), (2, 1)"],
        expect=Named(("default pub.is_public",))),
    odd('text default ""', *['CREATE TABLE notes(id INTEGER PRIMARY KEY, body text default "", n INT DEFAULT 7)',
                               "INSERT INTO notes(id) VALUES (1)"], expect=Named()),
    odd("DEFAULT (strftime(...))", *["CREATE TABLE logs(id INTEGER PRIMARY KEY, "
                                       "at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))",
                                       "INSERT INTO logs(id) VALUES (1)"],
        expect=Named(("default logs.at", "strftime"))),
    # 2. names over 63 bytes, and names that share their first 63 bytes (pgloader's collision.db)
    odd("column name over 63 bytes", *[f"CREATE TABLE longcol(id INTEGER PRIMARY KEY, {_LONG} TEXT)",
                                         "INSERT INTO longcol VALUES (1, 'x'), (2, NULL)"],
        expect=Named((f"longcol.{_LONG}",))),
    odd("a table name over 63 bytes beside the engine's tables", *[
        f"CREATE TABLE {_LONG}(id INTEGER PRIMARY KEY, {_LONG} TEXT)", f"INSERT INTO {_LONG} VALUES (1, 'x')"],
        expect=Named((_LONG,)), engine=True),
    odd("tables and columns sharing their first 63 bytes", *[
        f"CREATE TABLE {_LONG}_one(id INTEGER PRIMARY KEY, {_LONG}_a TEXT, {_LONG}_b TEXT UNIQUE)",
        f"CREATE TABLE {_LONG}_two(id INTEGER PRIMARY KEY, up INTEGER REFERENCES {_LONG}_one(id), "
        f"{_LONG}_a INT)",
        f"CREATE INDEX {_LONG}_one_index_on_a ON {_LONG}_one({_LONG}_a)",
        f"INSERT INTO {_LONG}_one VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2')",
        f"INSERT INTO {_LONG}_two VALUES (1, 1, 10), (2, 2, 20), (3, NULL, 30)"], expect=Named((f"{_LONG}_one",))),
    # 3. a table named like a sequence (or an index) the move's own tables get
    odd("t and t_id_seq", *["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
                              "CREATE TABLE t_id_seq(id INTEGER PRIMARY KEY, v TEXT)",
                              "CREATE TABLE t_pkey(k TEXT PRIMARY KEY)",
                              "INSERT INTO t VALUES (1, 'a')", "INSERT INTO t_id_seq VALUES (5, 'b')",
                              "INSERT INTO t_pkey VALUES ('k')"], expect=Named()),
    odd("executions_id_seq beside the engine's tables", *[
        "CREATE TABLE executions_id_seq(id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO executions_id_seq VALUES (1, 'x')"], expect=Named(), engine=True),
    odd("a table named like an index of the engine's schema", *[
        "DROP INDEX ix_executions_status", "CREATE TABLE ix_executions_status(id INTEGER PRIMARY KEY)"],
        expect=Named(("ix_executions_status",), refused=True), engine=True),
    # 8. 995 columns and more
    odd("1000 columns", *_wide(1000), expect=Named()),
    # PostgreSQL's system columns: CREATE TABLE refuses them, so the schema step failed after a passing pre-flight
    odd("columns named xmin and ctid (PostgreSQL's system columns) beside the engine's tables", *[
        "CREATE TABLE audit(id INTEGER PRIMARY KEY, xmin INTEGER, ctid TEXT, Cmax INT, oid INT)",
        "INSERT INTO audit VALUES (1, 5, 'a', 6, 7)"],
        expect=Named(("column(s) audit.xmin, audit.ctid of the source have the name of a system column",),
                     refused=True),
        engine=True),
    odd("a column and a table with an empty name", *[
        'CREATE TABLE e(id INTEGER PRIMARY KEY, "" TEXT, " " TEXT)', "INSERT INTO e VALUES (1, 'empty', 'space')",
        'CREATE TABLE ""(id INTEGER PRIMARY KEY)', 'INSERT INTO "" VALUES (1)'],
        expect=Named(("column e.'' of the source has an empty name", "table '' of the source has an empty name"),
                     refused=True)),
    # 10. the wizard's bookkeeping beside the source's tables
    odd("alembic_version of another app", *[
        "CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO customers VALUES (1, 'a')"],
        expect=Named()),
    odd("a table named wizard_copy_checkpoint", *[
        "CREATE TABLE wizard_copy_checkpoint(id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO wizard_copy_checkpoint VALUES (1, 'x')"], expect=Named(("wizard_copy_checkpoint",), refused=True)),
    odd("a table named wizard_move beside the engine's tables", *[
        "CREATE TABLE wizard_move(run_id TEXT PRIMARY KEY)", "INSERT INTO wizard_move VALUES ('x')"],
        expect=Named(("wizard_move",), refused=True), engine=True),
    # 14. AUTOINCREMENT's high-water mark
    odd("AUTOINCREMENT past the highest id", *[
        "CREATE TABLE tickets(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
        "INSERT INTO tickets(id, v) VALUES (1000, 'gone')", "DELETE FROM tickets",
        "INSERT INTO tickets(id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')"], expect=Named()),
    # collations: SQLite's NOCASE/RTRIM unique indexes refused what the target's byte-for-byte index takes
    odd("NOCASE and RTRIM in unique indexes and a primary key", *[
        "CREATE TABLE people(id INTEGER PRIMARY KEY, email TEXT, code TEXT COLLATE RTRIM UNIQUE)",
        "CREATE UNIQUE INDEX people_email ON people(email COLLATE NOCASE)",
        "CREATE TABLE tags(name TEXT COLLATE NOCASE PRIMARY KEY) WITHOUT ROWID",
        "INSERT INTO people VALUES (1, 'A@x.org', 'x'), (2, 'b@x.org', 'y ')", "INSERT INTO tags VALUES ('Red')"],
        expect=Named(("collation NOCASE of people.email in index people_email",
                      "collation RTRIM of people.code in a UNIQUE constraint",
                      "collation NOCASE of tags.name in its primary key"))),
    odd("CHECK constraints, and the word in a literal and a quoted name", *[
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, n INT CHECK (n > 0), note TEXT DEFAULT 'CHECK (x)', "
        "\"check (\" TEXT, CONSTRAINT small CHECK(n < 100))", "INSERT INTO orders(id, n) VALUES (1, 5)",
        "CREATE TABLE plain(id INTEGER PRIMARY KEY, \"check\" TEXT DEFAULT 'check(')"],
        expect=Named(("CHECK constraint on orders (2 of them) is not carried",))),
    odd("ids of 0 and below only", *[
        "CREATE TABLE credits(id INTEGER PRIMARY KEY, v TEXT)", "INSERT INTO credits VALUES (-5, 'a'), (0, 'b')"],
        expect=Named()),
    # 15. what is not carried: views, triggers, generated columns, virtual tables
    odd("views, triggers, generated columns, a virtual table", *[
        "CREATE TABLE items(id INTEGER PRIMARY KEY, a INT, twice INT GENERATED ALWAYS AS (a * 2) VIRTUAL, "
        "plus INT AS (a + 1) STORED)",
        "INSERT INTO items(id, a) VALUES (1, 5), (2, 6)",
        "CREATE VIEW big_items AS SELECT * FROM items WHERE a > 5",
        "CREATE TRIGGER items_touch AFTER UPDATE ON items BEGIN SELECT 1; END",
        "CREATE VIRTUAL TABLE search USING fts5(body)", "INSERT INTO search VALUES ('hello')"],
        expect=Named(("view big_items", "trigger items_touch", "generated column items.twice",
              "generated column items.plus",
         "virtual table search"))),
]

BY_NAME = {o.name: o for o in ODDITIES + NAME_ODDITIES}

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

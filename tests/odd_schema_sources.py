"""Odd source databases for the schema side (names, defaults, what is not carried), one line each: a name, the SQL statements that build it, and what a move must end in.

`build(path, oddity)` runs the statements with python's sqlite3 into `path` (a new file, or an engine
database the caller made, to put the oddity beside the engine's tables). tests/faults/test_odd_schema_sources.py
moves each one with the real `wizard migrate` and checks the expectation: MOVED (finished, `wizard verify`
passes, no row lost) or REFUSED (pre-flight refusal, exit 3, naming every word in `named`, nothing written).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

MOVED, REFUSED = "moved", "refused"
ALONE, IN_ENGINE = "alone", "in an engine database"

_LONG = "a_column_name_that_goes_on_and_on_past_what_postgresql_keeps_in_one_identifier"  # 79 bytes


def _wide(columns: int) -> list[str]:
    cols = ", ".join(f"c{i} INTEGER" for i in range(columns))
    values = ", ".join(str(i) for i in range(columns))
    return [f"CREATE TABLE wide(id INTEGER PRIMARY KEY, {cols})",
            f"INSERT INTO wide VALUES (1, {values})", f"INSERT INTO wide VALUES (2, {values})"]


@dataclass(frozen=True)
class Oddity:
    name: str
    sql: tuple[str, ...] | list[str]
    expect: str  # MOVED | REFUSED
    named: tuple[str, ...] = ()  # words the refusal must say (the table, the column), or `wizard plan` and the
    # report's notes of a move (what was not carried, a name PostgreSQL gets another for)
    where: str = ALONE  # ALONE: the file holds only this; IN_ENGINE: beside the engine's tables (--reflected off)


ODDITIES: list[Oddity] = [
    # 1. defaults PostgreSQL cannot take as they are
    Oddity("DATETIME DEFAULT 0", ["CREATE TABLE stamps(id INTEGER PRIMARY KEY, StartTime DATETIME DEFAULT 0)",
                                  "INSERT INTO stamps VALUES (1, NULL)",
                                  "INSERT INTO stamps VALUES (2, '2024-01-02 03:04:05')"], MOVED,
           ("default stamps.StartTime", "DEFAULT 0")),
    Oddity("integer default '\"0\"'", ["CREATE TABLE pub(id INTEGER PRIMARY KEY, is_public integer default '\"0\"')",
                                      "INSERT INTO pub VALUES (1, 0), (2, 1)"], MOVED,
           ("default pub.is_public",)),
    Oddity('text default ""', ['CREATE TABLE notes(id INTEGER PRIMARY KEY, body text default "", n INT DEFAULT 7)',
                               "INSERT INTO notes(id) VALUES (1)"], MOVED),
    Oddity("DEFAULT (strftime(...))", ["CREATE TABLE logs(id INTEGER PRIMARY KEY, "
                                       "at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))",
                                       "INSERT INTO logs(id) VALUES (1)"], MOVED, ("default logs.at", "strftime")),
    # 2. names over 63 bytes, and names that share their first 63 bytes (pgloader's collision.db)
    Oddity("column name over 63 bytes", [f"CREATE TABLE longcol(id INTEGER PRIMARY KEY, {_LONG} TEXT)",
                                         "INSERT INTO longcol VALUES (1, 'x'), (2, NULL)"], MOVED,
           (f"longcol.{_LONG}",)),
    Oddity("a table name over 63 bytes beside the engine's tables", [
        f"CREATE TABLE {_LONG}(id INTEGER PRIMARY KEY, {_LONG} TEXT)", f"INSERT INTO {_LONG} VALUES (1, 'x')"],
        MOVED, (_LONG,), where=IN_ENGINE),
    Oddity("tables and columns sharing their first 63 bytes", [
        f"CREATE TABLE {_LONG}_one(id INTEGER PRIMARY KEY, {_LONG}_a TEXT, {_LONG}_b TEXT UNIQUE)",
        f"CREATE TABLE {_LONG}_two(id INTEGER PRIMARY KEY, up INTEGER REFERENCES {_LONG}_one(id), "
        f"{_LONG}_a INT)",
        f"CREATE INDEX {_LONG}_one_index_on_a ON {_LONG}_one({_LONG}_a)",
        f"INSERT INTO {_LONG}_one VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2')",
        f"INSERT INTO {_LONG}_two VALUES (1, 1, 10), (2, 2, 20), (3, NULL, 30)"], MOVED, (f"{_LONG}_one",)),
    # 3. a table named like a sequence (or an index) the move's own tables get
    Oddity("t and t_id_seq", ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
                              "CREATE TABLE t_id_seq(id INTEGER PRIMARY KEY, v TEXT)",
                              "CREATE TABLE t_pkey(k TEXT PRIMARY KEY)",
                              "INSERT INTO t VALUES (1, 'a')", "INSERT INTO t_id_seq VALUES (5, 'b')",
                              "INSERT INTO t_pkey VALUES ('k')"], MOVED),
    Oddity("executions_id_seq beside the engine's tables", [
        "CREATE TABLE executions_id_seq(id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO executions_id_seq VALUES (1, 'x')"], MOVED, where=IN_ENGINE),
    Oddity("a table named like an index of the engine's schema", [
        "DROP INDEX ix_executions_status", "CREATE TABLE ix_executions_status(id INTEGER PRIMARY KEY)"],
        REFUSED, ("ix_executions_status",),
        where=IN_ENGINE),
    # 8. 995 columns and more
    Oddity("1000 columns", _wide(1000), MOVED),
    # 10. the wizard's bookkeeping beside the source's tables
    Oddity("alembic_version of another app", [
        "CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO customers VALUES (1, 'a')"], MOVED),
    Oddity("a table named wizard_copy_checkpoint", [
        "CREATE TABLE wizard_copy_checkpoint(id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO wizard_copy_checkpoint VALUES (1, 'x')"], REFUSED, ("wizard_copy_checkpoint",)),
    Oddity("a table named wizard_move beside the engine's tables", [
        "CREATE TABLE wizard_move(run_id TEXT PRIMARY KEY)", "INSERT INTO wizard_move VALUES ('x')"],
        REFUSED, ("wizard_move",), where=IN_ENGINE),
    # 14. AUTOINCREMENT's high-water mark
    Oddity("AUTOINCREMENT past the highest id", [
        "CREATE TABLE tickets(id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
        "INSERT INTO tickets(id, v) VALUES (1000, 'gone')", "DELETE FROM tickets",
        "INSERT INTO tickets(id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')"], MOVED),
    # 15. what is not carried: views, triggers, generated columns, virtual tables
    Oddity("views, triggers, generated columns, a virtual table", [
        "CREATE TABLE items(id INTEGER PRIMARY KEY, a INT, twice INT GENERATED ALWAYS AS (a * 2) VIRTUAL, "
        "plus INT AS (a + 1) STORED)",
        "INSERT INTO items(id, a) VALUES (1, 5), (2, 6)",
        "CREATE VIEW big_items AS SELECT * FROM items WHERE a > 5",
        "CREATE TRIGGER items_touch AFTER UPDATE ON items BEGIN SELECT 1; END",
        "CREATE VIRTUAL TABLE search USING fts5(body)", "INSERT INTO search VALUES ('hello')"], MOVED,
        ("view big_items", "trigger items_touch", "generated column items.twice", "generated column items.plus",
         "virtual table search")),
]

BY_NAME = {o.name: o for o in ODDITIES}


def build(path: Path, oddity: Oddity) -> Path:
    """Run the oddity's statements into the SQLite file at `path` (made if missing); returns `path`."""
    conn = sqlite3.connect(path)
    try:
        for statement in oddity.sql:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return path

"""The source's tables as the move sees them: columns with their value kinds, keys, foreign keys, copy order.

Read straight from SQLite's catalog (PRAGMA table_info / foreign_key_list / index_list)
on a read-only stdlib connection, so the scan, the copy and `wizard plan` agree on
one description. Kinds come from the type map (wizard.move.typemap); an engine table's
columns take the history's types instead, which the type map gives too for the tables the
engine made (tested), but not for ones another program remade.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from wizard.move import normalize, typemap
from wizard.db import all_of, quote, sqlite_uri
from wizard.move.pgnames import pg_name
from wizard.schema import ENGINE_TABLES, VERSION_TABLE, foreign_keys as history_foreign_keys, head, not_null, types, \
    unique_keys

ROWID = "rowid"


def rowid_name(columns: Iterable[str]) -> str:
    """The name that reads a table's rowid: rowid, or _rowid_ or oid when a column took it (SQLite's names are
    case-insensitive; a column named so reads the column instead)."""
    taken = {c.lower() for c in columns}
    return next((name for name in (ROWID, "_rowid_", "oid") if name not in taken), ROWID)


@dataclass(frozen=True)
class Column:
    name: str
    declared: str  # the SQLite declared type, as written
    kind: str  # normalize's kind for the target column
    nullable: bool
    pg_type: str  # from the type map (used for tables the history does not know)
    default: str | None = None  # SQLite's default expression, as written

    @property
    def target(self) -> str:
        """Its name in PostgreSQL (wizard.move.pgnames)."""
        return pg_name(self.name)


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    nullable: bool  # every column may be NULL: the `null` policy may clear it
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"

    @property
    def label(self) -> str:
        return ", ".join(self.columns)


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool
    where: str | None = None  # a partial index's predicate, in SQLite's SQL


@dataclass
class SourceTable:
    name: str
    columns: list[Column]
    key: tuple[str, ...]  # the primary key's columns, or the name that reads the rowid for a table without one
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)  # explicit and UNIQUE ones, not the primary key's
    without_rowid: bool = False
    sequence: int | None = None  # AUTOINCREMENT's high-water mark (sqlite_sequence), when it has one
    # An engine table's primary key or UNIQUE columns that the file does not hold unique (another program made
    # the table): SQLite may hold repeats the target's key refuses.
    unenforced: tuple[tuple[str, ...], ...] = ()
    # The file's text is UTF-8 (PRAGMA encoding). In a UTF-16 file CAST(x AS BLOB) gives UTF-16 bytes, which
    # clean_sql's test of text would judge and measure in place of the UTF-8 the target gets: no row is clean.
    utf8: bool = True

    @property
    def target(self) -> str:
        """Its name in PostgreSQL (wizard.move.pgnames)."""
        return pg_name(self.name)

    @property
    def engine(self) -> bool:
        return self.name in ENGINE_TABLES

    @property
    def key_is_rowid(self) -> bool:
        return len(self.key) == 1 and self.key[0] not in self.column_names  # a key's are columns, the rowid's not

    @property
    def rowid(self) -> str:
        return rowid_name(self.column_names)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def clean_sql(self) -> str:
        """1 when every value of the row may take the fast path (see normalize.clean_sql), else 0."""
        if not self.utf8:
            return "0"
        parts = [normalize.clean_sql(c.kind, quote(c.name)) for c in self.columns]
        parts += [f"{quote(c.name)} IS NOT NULL" for c in self.columns if not c.nullable and c.name not in self.key]
        return f"CASE WHEN {all_of(parts) or '1'} THEN 1 ELSE 0 END"

    def key_sql(self) -> str:
        return ", ".join(self.rowid if self.key_is_rowid else quote(k) for k in self.key)

    def null_key_sql(self) -> str | None:
        """True for a row whose key holds NULL, which SQLite allows in a key that is not the rowid (a WITHOUT
        ROWID table's key is NOT NULL); None when no row's can."""
        if self.key_is_rowid or self.without_rowid:
            return None
        return " OR ".join(f"{quote(k)} IS NULL" for k in self.key)


def open_readonly(path: Path) -> sqlite3.Connection:
    """A stdlib connection that cannot write the file (URI mode=ro), autocommit so BEGIN is ours, able to
    evaluate normalize.clean_sql."""
    conn = sqlite3.connect(sqlite_uri(path), uri=True, isolation_level=None, check_same_thread=False)
    normalize.add_sql_functions(conn)
    return conn


def plain_tables(table_list: Iterable[tuple]) -> list[str]:
    """From the rows of PRAGMA table_list: the tables a move copies, by name.

    Not views, virtual tables and their shadow tables (see `not_carried`), nor SQLite's own; the
    engine's alembic_version only beside the engine's tables (another app's is one of its tables).
    """
    names = sorted(r[1] for r in table_list if r[0] == "main" and r[2] == "table" and not r[1].startswith("sqlite_"))
    engine = any(n in ENGINE_TABLES for n in names)
    return [n for n in names if not (engine and n == VERSION_TABLE)]


def read_tables(conn: sqlite3.Connection) -> list[SourceTable]:
    """Every table to copy (`plain_tables`), parents before children."""
    listed = conn.execute("PRAGMA main.table_list").fetchall()
    tables = {name: _read_table(conn, name) for name in plain_tables(listed)}
    utf8 = conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
    for _schema, name, _type, _ncol, without_rowid, *_ in listed:
        if name in tables:
            tables[name].without_rowid = bool(without_rowid)
            tables[name].utf8 = utf8
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'").fetchone():
        for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence"):
            if name in tables and isinstance(seq, int):
                tables[name].sequence = seq
    for table in tables.values():
        _past_every_id(conn, table)
    return copy_order(tables)


def _past_every_id(conn: sqlite3.Connection, table: SourceTable) -> None:
    """The sequence goes past every id the file holds, the rows a move puts in quarantine too: set past the
    copied rows alone, the engine's first insert took a quarantined row's id, and a rollback had to refuse to
    carry it back into the file. Only for an INTEGER key that is the rowid (its max is one index step)."""
    if table.without_rowid or len(table.key) != 1 or table.key_is_rowid:
        return
    column = next(c for c in table.columns if c.name == table.key[0])
    if column.declared.strip().upper() != "INTEGER":
        return
    top = conn.execute(f"SELECT max({quote(column.name)}) FROM {quote(table.name)}").fetchone()[0]
    if isinstance(top, int) and (table.sequence is None or top > table.sequence):
        table.sequence = top


@dataclass(frozen=True)
class NotCarried:
    """Something of the source a move does not make in the target, and what the operator can do about it."""

    what: str  # view, trigger, virtual table, generated column, expression index, default
    name: str
    todo: str

    def line(self) -> str:
        return f"{self.what} {self.name} is not carried: {self.todo}"


def not_carried(conn: sqlite3.Connection) -> list[NotCarried]:
    """The source's views, triggers, virtual tables, generated columns and expression indexes."""
    out = []
    for kind, name, table in conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY type, name"):
        where = f" on {table}" if kind == "trigger" else ""
        out.append(NotCarried(kind, f"{name}{where}", f"write it again in PostgreSQL's SQL if the app needs it "
                                                      f"(its SQLite text: SELECT sql FROM sqlite_master WHERE "
                                                      f"name = '{name}')"))
    listed = conn.execute("PRAGMA main.table_list").fetchall()
    for _schema, name, kind, *_ in sorted(listed, key=lambda r: r[1]):
        if kind == "virtual":
            out.append(NotCarried("virtual table", name, "its rows are not copied: make its PostgreSQL equivalent "
                                                         "(full-text search: a tsvector column and a GIN index) and "
                                                         "fill it from the source"))
    for name in plain_tables(listed):
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        checks = len(_CHECK.findall(_QUOTED.sub(" ", sql[0] or ""))) if sql else 0
        if checks:
            out.append(NotCarried("CHECK constraint", f"on {name}" + (f" ({checks} of them)" if checks > 1 else ""),
                                  "the target will take values SQLite would refuse; if the app relies on it, add it in "
                                  "PostgreSQL (ALTER TABLE ... ADD CHECK (...), its SQLite text: SELECT sql FROM "
                                  f"sqlite_master WHERE name = '{name}')"))
        for _cid, col, _type, _notnull, _default, _pk, hidden in conn.execute(f"PRAGMA table_xinfo({quote(name)})"):
            if hidden in (2, 3):
                out.append(NotCarried("generated column", f"{name}.{col}",
                                      "its values are derived: add it in PostgreSQL with ALTER TABLE ... ADD COLUMN "
                                      "... GENERATED ALWAYS AS (...) STORED if the app reads it"))
        for _seq, index, unique, origin, _partial in conn.execute(f"PRAGMA index_list({quote(name)})"):
            if any(r[2] is None for r in conn.execute(f"PRAGMA index_info({quote(index)})")):
                out.append(NotCarried("expression index", f"{index} on {name}",
                                      "create it again in PostgreSQL if queries need it"))
                continue
            out += _collations(conn, name, index, bool(unique), origin)
    return out


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]")  # literals and quoted names
_CHECK = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)


def _collations(conn: sqlite3.Connection, table: str, index: str, unique: bool, origin: str) -> list[NotCarried]:
    """An index's columns that compare by a collation other than BINARY (NOCASE, RTRIM): the target's index is
    made on the plain column, which compares byte for byte, so a unique one takes values SQLite refused."""
    out = []
    where = {"pk": "its primary key", "u": "a UNIQUE constraint"}.get(origin, f"index {index}")
    # seqno, cid, name, desc, coll, key
    for _seqno, _cid, col, _desc, coll, key in conn.execute(f"PRAGMA index_xinfo({quote(index)})"):
        if not key or col is None or (coll or "BINARY").upper() == "BINARY":
            continue
        todo = ("the target's index compares the values byte for byte, so it takes rows that differ only in case "
                "(NOCASE) or trailing spaces (RTRIM), which SQLite refused as equal; if the app relies on that, "
                "make the rule in PostgreSQL (a unique index on lower(...), or a citext column)" if unique else
                "the target's index and comparisons are byte for byte; if queries rely on the collation, make "
                "it in PostgreSQL (an index on lower(...), or a citext column)")
        out.append(NotCarried("collation", f"{coll} of {table}.{col} in {where}", todo))
    return out


def _read_table(conn: sqlite3.Connection, name: str) -> SourceTable:
    info = conn.execute(f"PRAGMA table_info({quote(name)})").fetchall()  # cid, name, type, notnull, dflt, pk
    pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    rowid_alias = len(pk) == 1 and next(r[2] for r in info if r[1] == pk[0]).strip().upper() == "INTEGER"
    # An engine table's column is NOT NULL where the history makes it so, whatever the file says: the target's is.
    required = not_null(head()).get(name, frozenset()) if name in ENGINE_TABLES else frozenset()
    # And its values are judged by the type the history gives the column, whatever the file declares: another
    # program (sqlite3's .import, a STRICT rewrite) may have declared TEXT, INT or `timestamp with time zone`.
    declared_by_history = types(head()).get(name, {}) if name in ENGINE_TABLES else {}
    columns = []
    for _cid, col, declared, notnull, default, in_pk in info:
        mapping = typemap.mapping_for(declared or "", rowid_alias and col == pk[0])
        kind = normalize.kind_of(declared_by_history[col]) if col in declared_by_history else mapping.kind
        columns.append(Column(col, declared or "", kind, not (notnull or in_pk or col in required),
                              mapping.postgres, default))
    nullable = {c.name: c.nullable for c in columns}
    fks: dict[int, list] = {}
    # id, seq, parent, from, to, on_update, on_delete, match
    for fk_id, _seq, parent, child_col, parent_col, on_update, on_delete, _ in conn.execute(
            f"PRAGMA foreign_key_list({quote(name)})"):
        fks.setdefault(fk_id, []).append((child_col, parent_col, parent, on_update, on_delete))
    foreign_keys = []
    for parts in fks.values():
        parent, on_update, on_delete = parts[0][2:5]
        parent_cols = tuple(p[1] for p in parts)
        if any(p is None for p in parent_cols):  # REFERENCES parent: its primary key
            parent_cols = tuple(_primary_key(conn, parent))
        cols = tuple(p[0] for p in parts)
        foreign_keys.append(ForeignKey(cols, parent, parent_cols, all(nullable.get(c, True) for c in cols),
                                       on_delete, on_update))
    # The target gets the history's foreign keys whatever the file declares (sqlite3's .import declares none):
    # the scan must hold their orphans back, or building the key fails after the copy.
    declared = {fk.columns for fk in foreign_keys}
    for col, parent, parent_col in (history_foreign_keys(head()).get(name, ()) if name in ENGINE_TABLES else ()):
        if (col,) not in declared:
            foreign_keys.append(ForeignKey((col,), parent, (parent_col,), nullable.get(col, True)))
    indexes = []
    for _seq, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({quote(name)})"):
        if origin == "pk":
            continue
        cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({quote(index)})"))
        if cols and all(c is not None for c in cols):  # expression indexes are not carried
            indexes.append(Index(index, cols, bool(unique), _predicate(conn, index) if partial else None))
    held_unique = {tuple(pk)} | {i.columns for i in indexes if i.unique and i.where is None}
    unenforced = tuple(k for k in unique_keys(head()).get(name, ()) if k not in held_unique)
    if not pk and name in ENGINE_TABLES:  # the target's rows are keyed by the history's primary key: so are the copy's
        pk = list(unique_keys(head())[name][0])
    key = tuple(pk) or (rowid_name(c.name for c in columns),)
    return SourceTable(name, columns, key, foreign_keys, sorted(indexes, key=lambda i: i.name), unenforced=unenforced)


def _predicate(conn: sqlite3.Connection, index: str) -> str:
    """The WHERE of a partial index, as its CREATE INDEX wrote it."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)).fetchone()[0]
    return re.split(r"\bWHERE\b", sql, maxsplit=1, flags=re.IGNORECASE)[-1].strip()


def key_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The declared primary key's columns, in key order; [] for a table with none."""
    info = conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    return [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]


def _primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    return key_columns(conn, table) or [ROWID]


def copy_order(tables: dict[str, SourceTable]) -> list[SourceTable]:
    """Parents before children; among equals the engine's order, then by name.

    A foreign key to a table that does not exist, or to the table itself, does not order anything.
    """
    def rank(name: str) -> tuple[int, str]:
        return (ENGINE_TABLES.index(name) if name in ENGINE_TABLES else len(ENGINE_TABLES), name)

    waiting = {
        name: {fk.parent for fk in t.foreign_keys if fk.parent in tables and fk.parent != name}
        for name, t in tables.items()
    }
    order: list[SourceTable] = []
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if not deps), key=rank)
        if not ready:  # a cycle of foreign keys: break it at the first table by rank
            ready = sorted(waiting, key=rank)[:1]
        name = ready[0]
        order.append(tables[name])
        del waiting[name]
        for deps in waiting.values():
            deps.discard(name)
    return order

"""The data scan: every source row the target will not take as it is, and what each policy does with it.

SQLite does the sifting (normalize.clean_sql per row, foreign keys with NOT IN), so
only the rows that need a look come into Python, where normalize.convert judges
them; onto MySQL also the rows that may hold a value too big for its columns
(wizard.mysql.limits). The result is both what the pre-flight screen shows
(findings, rows affected per policy) and the plan the copy follows: per table, which
primary keys go to quarantine and which get a dangling foreign key set to NULL.
"""

from __future__ import annotations

import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from wizard.db import quote
from wizard.move.normalize import BYTES, JSON, NUMERIC, TEXT, BadValue, convert
from wizard.move.tables import Index, SourceTable, open_readonly
from wizard.schema import head, indexed_columns

if TYPE_CHECKING:
    from wizard.mysql.limits import TargetLimits

ABORT, NULL, QUARANTINE = "abort", "null", "quarantine"
POLICIES = (ABORT, NULL, QUARANTINE)
# What each policy does with a row the target will not take as it is: the one wording of them (the TUI's
# choice, the CLI's --on-orphans help).
POLICY_MEANINGS = {
    ABORT: "stop before anything is written",
    NULL: "dangling references set to NULL, the rest quarantined",
    QUARANTINE: "set those rows aside, listed with reasons",
}
DANGLING = "dangling foreign key"
ORPHANED = "parent row in quarantine"
NULL_KEY = "NULL in a primary key column"  # SQLite lets a key that is not the rowid hold NULL, PostgreSQL does not
NULL_VALUE = "NULL in a column the engine's schema makes NOT NULL"  # a file the engine did not make may hold one
SAME_KEY = "primary key equal to another row's after conversion"
SAME_UNIQUE = "unique value equal to another row's after conversion"
# PostgreSQL's btree takes an entry of 2,704 bytes at most (8 kB pages), after compressing it, which the scan cannot
# foresee: values whose bytes in one index's columns add up to more than this may not fit, and go to the policy.
INDEX_BYTES = 2600
TOO_BIG_FOR_INDEX = (f"values over {INDEX_BYTES:,} bytes in an indexed column: PostgreSQL's btree index holds about "
                     f"2,700 once compressed, which cannot be told beforehand")
SET_NULL = "dangling foreign key set to NULL"  # the conversion the `null` policy makes, counted per column
EXAMPLES = 5
SPLIT_ROWS = 100_000  # a table this big is sifted by several connections at once, by rowid range
UNCLEAN_KEYS = 200_000  # up to this many keys of rows that are not clean are kept for the copy

Key = tuple  # a row's primary key values (or its rowid), as SQLite returns them


@dataclass
class Finding:
    """One kind of problem (or conversion) in one column of one table."""

    table: str
    column: str
    problem: str  # the rule broken, or the conversion the copy will make
    count: int = 0
    examples: list[Any] = field(default_factory=list)  # up to five primary keys
    converted: bool = False  # True: copied after a counted conversion; False: the policy decides

    def add(self, key: Key, rows: int = 1) -> None:
        self.count += rows
        if len(self.examples) < EXAMPLES:
            self.examples.append(shown_key(key))

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "problem": self.problem, "count": self.count,
                "examples": self.examples, "converted": self.converted}


@dataclass(frozen=True)
class Quarantine:
    rule: str  # the rule, as named in the report: a normalize rule, DANGLING or ORPHANED
    reason: str  # what exactly: the column and the value's problem


@dataclass
class RowActions:
    """What the copy does with the rows of one table that cannot go as they are."""

    quarantine: dict[Key, Quarantine] = field(default_factory=dict)
    null: dict[Key, tuple[str, ...]] = field(default_factory=dict)  # key -> foreign key columns set to NULL

    def __bool__(self) -> bool:
        return bool(self.quarantine or self.null)


@dataclass
class _Problem:
    column: str
    rule: str
    reason: str
    fk: Any = None  # the ForeignKey, for a dangling one


@dataclass
class ScanResult:
    findings: list[Finding]
    actions: dict[str, dict[str, RowActions]]  # policy -> table -> actions
    affected: dict[str, int]  # policy -> rows it quarantines, nulls or (abort) stops on (a NULL key's rows all count)
    rows: dict[str, int]  # source rows per table
    # Per table, the keys of the rows that are not clean (normalize.clean_sql) and of those sifted as near a
    # MySQL limit, or None when there were too many to keep: the copy then asks SQLite again, row by row.
    unclean: dict[str, frozenset[Key] | None] = field(default_factory=dict)


def shown_key(key: Key) -> Any:
    """A key as JSON shows it: the value for a one-column key, else a list."""
    values = [jsonable(v) for v in key]
    return values[0] if len(values) == 1 else values


def jsonable(value: Any) -> Any:
    """A SQLite value as JSON can carry it (a blob as '\\x' and hex)."""
    return "\\x" + value.hex() if isinstance(value, bytes) else value


def tolerant_text(data: bytes) -> Any:
    # Text that is not UTF-8 comes back as bytes, so convert() can name it instead of sqlite3 failing.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def scan(path: Path, tables: list[SourceTable], progress: Callable[[str, int, int], None],
         limits: TargetLimits | None = None) -> ScanResult:
    """Scan every table (in copy order) of the SQLite file, read-only; blocking, run it in a thread. `limits`: a
    MySQL target's (None for PostgreSQL, whose columns take any length and depth)."""
    conn = _open(path)
    try:
        return _scan(conn, path, tables, progress, limits)
    finally:
        conn.close()


def _open(path: Path) -> sqlite3.Connection:
    conn = open_readonly(path)
    conn.text_factory = tolerant_text
    return conn


def _scan(conn: sqlite3.Connection, path: Path, tables: list[SourceTable],
          progress: Callable[[str, int, int], None], limits: TargetLimits | None) -> ScanResult:
    names = {t.name for t in tables}
    findings: dict[tuple[str, str, str], Finding] = {}
    problems: dict[str, dict[Key, list[_Problem]]] = {}
    rows: dict[str, int] = {}
    unclean: dict[str, frozenset[Key] | None] = {}
    shared: dict[str, int] = {}  # per table, rows beyond the first whose problem key another row has too (NULL)

    def finding(table: str, column: str, problem: str, converted: bool) -> Finding:
        k = (table, column, problem)
        if k not in findings:
            findings[k] = Finding(table, column, problem, converted=converted)
        return findings[k]

    server = limits.server if limits else "PostgreSQL"
    conn.execute("BEGIN")  # one snapshot for every query of the scan
    try:
        for done, t in enumerate(tables):
            progress(t.name, done, len(tables))
            rows[t.name] = conn.execute(f"SELECT count(*) FROM {quote(t.name)}").fetchone()[0]
            found = problems[t.name] = {}
            sifted = _sifted_rows(conn, path, t, rows[t.name], limits)
            unclean[t.name] = frozenset(r[:len(t.key)] for r in sifted) if len(sifted) <= UNCLEAN_KEYS else None
            for key, column, problem in _bad_values(t, sifted, limits):
                if isinstance(problem, BadValue):
                    finding(t.name, column, problem.rule, False).add(key)
                    found.setdefault(key, []).append(_Problem(column, problem.rule, f"{column}: {problem.rule}"))
                else:
                    finding(t.name, column, problem, True).add(key)
            for key, column, rule, reason, n in (*_null_keys(conn, t), *_collisions(conn, t, sifted, server)):
                finding(t.name, column, rule, False).add(key, n)
                found.setdefault(key, []).append(_Problem(column, rule, reason))
            shared[t.name] = _rows_sharing_a_key(conn, t, found)
            for fk in t.foreign_keys:
                if fk.parent not in names:
                    continue  # SQLite let it name a table that does not exist; nothing to check against
                what = f"points to no {fk.parent} row"
                for key, values in _dangling(conn, t, fk):
                    finding(t.name, fk.label, what, False).add(key)
                    reason = f"{fk.label} = {shown_key(values)} {what}"
                    found.setdefault(key, []).append(_Problem(fk.label, DANGLING, reason, fk))
        progress("", len(tables), len(tables))
        actions = {policy: _resolve(conn, tables, problems, policy) for policy in (NULL, QUARANTINE)}
    finally:
        conn.execute("COMMIT")
    actions[ABORT] = actions[QUARANTINE]  # what abort would have to do; it stops instead
    for t in tables:
        for key, q in actions[QUARANTINE][t.name].quarantine.items():
            if q.rule == ORPHANED:
                finding(t.name, q.reason.split(":")[0], "child of a row in quarantine", False).add(key)
    more = sum(shared.values())  # a NULL key's rows are always quarantined together
    affected = {
        ABORT: sum(len(p) for p in problems.values()) + more,
        QUARANTINE: sum(len(a.quarantine) for a in actions[QUARANTINE].values()) + more,
        NULL: sum(len(a.quarantine) + len(a.null) for a in actions[NULL].values()) + more,
    }
    return ScanResult(list(findings.values()), actions, affected, rows, unclean)


def _sifted_rows(conn: sqlite3.Connection, path: Path, t: SourceTable, rows: int,
                 limits: TargetLimits | None) -> list[tuple]:
    """(key..., values...) of every row that is not clean, and of every row that may hold a value too big for
    the target's column."""
    cols = ", ".join(quote(c.name) for c in t.columns)
    near = limits.sift_sql(t.name, [c.name for c in t.columns]) if limits else _index_sql(t)
    where = f"NOT ({t.clean_sql()})" + (f" OR {near}" if near else "")
    sql = f"SELECT {t.key_sql()}, {cols} FROM {quote(t.name)} WHERE ({where})"
    return _sift(conn, path, t, sql, rows)


def index_sets(t: SourceTable) -> list[tuple[str, ...]]:
    """The column sets of the btree indexes PostgreSQL builds on the table: an engine table's from the history
    (whatever the file has), another's its primary key (not the rowid) and the indexes the move carries."""
    if t.engine:
        return [s for s in indexed_columns(head()).get(t.name, ()) if all(c in t.column_names for c in s)]
    sets = [] if t.key_is_rowid else [t.key]
    return list(dict.fromkeys(sets + [ix.columns for ix in t.indexes if not ix.where]))


def _index_sql(t: SourceTable) -> str | None:
    """True for a row whose values in one index's columns may be too big for PostgreSQL's index entry."""
    kinds = {c.name: c.kind for c in t.columns}
    # Whole numbers, booleans, instants take a few bytes whatever SQLite holds there (or are refused): not measured.
    sized = [[c for c in cols if kinds[c] in (TEXT, JSON, BYTES, NUMERIC)] for cols in index_sets(t)]
    terms = [" + ".join(f"coalesce(length(CAST({quote(c)} AS BLOB)), 0)" for c in cols) + f" > {INDEX_BYTES - 64}"
             for cols in sized if cols]
    return " OR ".join(f"({term})" for term in terms) or None


def _entry_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(value) if isinstance(value, bytes) else 8


def _bad_values(t: SourceTable, sifted: list[tuple], limits: TargetLimits | None) -> Iterable[tuple[Key, str, Any]]:
    """(key, column, BadValue or conversion name) for every value of the sifted rows that is not clean or, as
    converted, breaks a limit of the target's."""
    nk = len(t.key)
    at = {c.name: i for i, c in enumerate(t.columns)}
    sets = index_sets(t) if limits is None else []
    for row in sifted:
        key, converted_row = row[:nk], []
        for c, value in zip(t.columns, row[nk:]):
            if value is None and not c.nullable and c.name not in t.key:  # a NULL key is _null_keys' to find
                yield key, c.name, BadValue(NULL_VALUE)
                converted_row = None
                continue
            try:
                converted, made = convert(c.kind, value)
            except BadValue as exc:
                yield key, c.name, exc
                converted_row = None
                continue
            if made:
                yield key, c.name, made
            broken = limits.broken(t.name, c.name, converted) if limits else None
            if broken:
                yield key, c.name, BadValue(broken)
            if converted_row is not None:
                converted_row.append(converted)
        for cols in sets if converted_row is not None else ():
            if sum(_entry_bytes(converted_row[at[c]]) for c in cols if converted_row[at[c]] is not None) > INDEX_BYTES:
                yield key, ", ".join(cols), BadValue(TOO_BIG_FOR_INDEX)
                break
        too_long = limits.row_too_long(t.name, tuple(converted_row)) if limits and converted_row is not None else None
        if too_long:  # named by its longest value
            longest = max(zip(t.columns, converted_row), key=lambda cv: len(str(cv[1] or "")))[0]
            yield key, longest.name, BadValue(too_long)


def _null_keys(conn: sqlite3.Connection, t: SourceTable) -> Iterable[tuple[Key, str, str, str, int]]:
    """(key, column, rule, reason, rows) for the rows whose primary key holds NULL, once per distinct key."""
    nulls = t.null_key_sql()
    if nulls is None:
        return
    for (*key, n) in conn.execute(f"SELECT {t.key_sql()}, count(*) FROM {quote(t.name)} WHERE {nulls} "
                                  f"GROUP BY {t.key_sql()}"):
        column = ", ".join(k for k, v in zip(t.key, key) if v is None)
        yield tuple(key), column, NULL_KEY, f"{column}: NULL in the primary key ({n} row(s))", n


def _rows_sharing_a_key(conn: sqlite3.Connection, t: SourceTable, found: dict[Key, list[_Problem]]) -> int:
    """Rows beyond one per key among the problem keys: only a NULL in the key lets SQLite repeat one."""
    repeated = [k for k, probs in found.items() if any(p.rule == NULL_KEY for p in probs)]
    if not repeated:
        return 0
    total = conn.execute(f"SELECT count(*) FROM {quote(t.name)} WHERE {t.null_key_sql()}").fetchone()[0]
    return total - len(repeated)


def _collisions(conn: sqlite3.Connection, t: SourceTable, sifted: list[tuple],
                server: str) -> Iterable[tuple[Key, str, str, str, int]]:
    """(key, column, rule, reason, 1) for each row whose primary key, or a UNIQUE index's values, SQLite holds
    apart but the target `server` would hold equal once converted (1 and '1'; 'a' and x'61'; one instant spelled
    twice).

    Two clean values never collide (they go as they are), so only the sifted rows are converted: against each
    other, and against the clean rows SQLite finds with the converted value in its clean spelling. The row
    whose value was converted goes to the policy; the other keeps its place."""
    uniques = [] if t.key_is_rowid else [Index("", t.key, True)]
    uniques += [ix for ix in t.indexes if ix.unique and not ix.where]
    if not sifted or not uniques:
        return
    nk = len(t.key)
    at = {c.name: i for i, c in enumerate(t.columns)}
    kinds = {c.name: c.kind for c in t.columns}
    sifted_keys = {row[:nk] for row in sifted}
    for ix in uniques:
        rule, what = (SAME_KEY, "primary key") if ix.name == "" else (SAME_UNIQUE, f"unique index {ix.name}")
        column = ", ".join(ix.columns)
        seen: dict[tuple, Key] = {}
        where = " AND ".join(f"{quote(c)} = ?" for c in ix.columns)
        cols = ", ".join(quote(c) for c in ix.columns)
        lookup = f"SELECT {t.key_sql()}, {cols} FROM {quote(t.name)} WHERE {where}"
        changed = []
        for row in sifted:
            key, raw = row[:nk], tuple(row[nk + at[c]] for c in ix.columns)
            made = _converted(kinds, ix.columns, raw)
            if made is None or any(v is None for v in made):
                continue  # refused already, for its own rule; or NULL, which PostgreSQL never finds equal
            if made == raw:
                seen.setdefault(made, key)  # nothing converted: it keeps its place
            else:
                changed.append((key, raw, made))
        for key, raw, made in changed:
            other = seen.setdefault(made, key)
            if other == key:
                other = next((r[:nk] for r in conn.execute(lookup, [_clean_spelling(v) for v in made])
                              if r[:nk] not in sifted_keys and _converted(kinds, ix.columns, r[nk:]) == made), None)
            if other is not None:
                yield key, column, rule, (f"{column}: {shown_key(raw)} becomes {shown_key(made)} in {server}, "
                                          f"as the {what} of row {shown_key(other)} is"), 1


def _converted(kinds: dict[str, str], columns: tuple[str, ...], values: tuple) -> tuple | None:
    try:
        return tuple(convert(kinds[c], v)[0] for c, v in zip(columns, values))
    except BadValue:
        return None


def _clean_spelling(value: Any) -> Any:
    """A converted value as a clean SQLite value spells it (normalize.clean_sql), to look it up."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _sift(conn: sqlite3.Connection, path: Path, t: SourceTable, sql: str, rows: int) -> list[tuple]:
    """Run the sifting query; on a big table in rowid ranges, one connection (and core) each.

    SQLite evaluates the clean test without holding the GIL, so the threads really run at once.
    """
    parts = min(os.cpu_count() or 1, 4)
    if rows < SPLIT_ROWS or parts < 2 or t.without_rowid:
        return conn.execute(sql).fetchall()
    rowid = t.rowid
    low, high = conn.execute(f"SELECT min({rowid}), max({rowid}) FROM {quote(t.name)}").fetchone()
    step = (high - low) // parts + 1
    ranges = [(low + i * step, min(high, low + (i + 1) * step - 1)) for i in range(parts)]

    def part(bounds: tuple[int, int]) -> list[tuple]:
        own = _open(path)
        try:
            return own.execute(f"{sql} AND {rowid} BETWEEN ? AND ?", bounds).fetchall()
        finally:
            own.close()

    with ThreadPoolExecutor(parts) as pool:
        return [row for found in pool.map(part, ranges) for row in found]


def _dangling(conn: sqlite3.Connection, t: SourceTable, fk: Any) -> Iterable[tuple[Key, Key]]:
    nk = len(t.key)
    child = ", ".join(quote(c) for c in fk.columns)
    parent = ", ".join(quote(c) for c in fk.parent_columns)
    present = " AND ".join(f"{quote(c)} IS NOT NULL" for c in fk.columns)
    present_parent = " AND ".join(f"{quote(c)} IS NOT NULL" for c in fk.parent_columns)
    sql = (
        f"SELECT {t.key_sql()}, {child} FROM {quote(t.name)} WHERE {present} AND ({child}) NOT IN "
        f"(SELECT {parent} FROM {quote(fk.parent)} WHERE {present_parent})"
    )
    for row in conn.execute(sql):
        yield row[:nk], row[nk:]


def _resolve(conn: sqlite3.Connection, tables: list[SourceTable], problems: dict[str, dict[Key, list[_Problem]]],
             policy: str) -> dict[str, RowActions]:
    """Per table, what `policy` does with each problem row, cascading to children of quarantined rows."""
    out: dict[str, RowActions] = {}
    by_name = {t.name: t for t in tables}
    for t in tables:
        acts = out[t.name] = RowActions()
        for key, probs in problems[t.name].items():
            dangling = [p for p in probs if p.fk is not None]
            if policy == NULL and len(dangling) == len(probs) and all(p.fk.nullable for p in dangling):
                acts.null[key] = tuple(c for p in dangling for c in p.fk.columns)
            else:
                acts.quarantine[key] = Quarantine(probs[0].rule, "; ".join(p.reason for p in probs))
        # Children of rows in quarantine; a table that refers to itself repeats until nothing new.
        new = {t.name: set(acts.quarantine)}
        while True:
            added: set[Key] = set()
            for fk in t.foreign_keys:
                parent_acts = out.get(fk.parent)
                if parent_acts is None:
                    continue
                gone = new[t.name] if fk.parent == t.name else set(parent_acts.quarantine)
                if not gone:
                    continue
                for key, values in _children(conn, t, fk, by_name[fk.parent], gone):
                    if key in acts.quarantine:
                        continue
                    if policy == NULL and fk.nullable:
                        acts.null[key] = tuple(dict.fromkeys(acts.null.get(key, ()) + fk.columns))
                        continue
                    acts.null.pop(key, None)
                    reason = f"{fk.label}: its {fk.parent} row ({shown_key(values)}) is in quarantine"
                    acts.quarantine[key] = Quarantine(ORPHANED, reason)
                    added.add(key)
            if not added or not any(fk.parent == t.name for fk in t.foreign_keys):
                break
            new[t.name] = added
    return out


def _children(conn: sqlite3.Connection, t: SourceTable, fk: Any, parent: SourceTable,
              parent_keys: set[Key]) -> Iterable[tuple[Key, Key]]:
    """Rows of `t` whose foreign key `fk` refers to one of the parent rows `parent_keys`."""
    if tuple(fk.parent_columns) == parent.key:
        refs = parent_keys
    else:
        refs = set(_referenced(conn, parent, fk.parent_columns, parent_keys))
    nk = len(t.key)
    child = ", ".join(quote(c) for c in fk.columns)
    if all(not isinstance(v, bytes) for ref in refs for v in ref):
        if len(fk.columns) == 1:
            match = f"{child} IN (SELECT value FROM json_each(?))"
            param = json.dumps([r[0] for r in refs])
        else:
            picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(fk.columns)))
            match = f"({child}) IN (SELECT {picks} FROM json_each(?))"
            param = json.dumps([list(r) for r in refs])
        sql = f"SELECT {t.key_sql()}, {child} FROM {quote(t.name)} WHERE {match}"
        rows = conn.execute(sql, (param,))
    else:  # keys JSON cannot carry (blobs): compare in Python
        rows = (r for r in conn.execute(f"SELECT {t.key_sql()}, {child} FROM {quote(t.name)}") if r[nk:] in refs)
    for row in rows:
        yield row[:nk], row[nk:]


def _referenced(conn: sqlite3.Connection, parent: SourceTable, columns: tuple[str, ...],
                keys: set[Key]) -> Iterable[Key]:
    nk = len(parent.key)
    cols = ", ".join(quote(c) for c in columns)
    for row in conn.execute(f"SELECT {parent.key_sql()}, {cols} FROM {quote(parent.name)}"):
        if row[:nk] in keys:
            yield row[nk:]

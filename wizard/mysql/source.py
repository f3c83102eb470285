"""A MySQL or MariaDB database as the source of a move: its tables, what PostgreSQL will not take, its state.

Only read: the catalogue (SQLAlchemy's inspector), row counts, and per table one query that finds the
values PostgreSQL has no meaning for, by the server's own tests: a DATETIME or DATE that is no real day
(MySQL keeps 0000-00-00 and 2024-02-00; `c + INTERVAL 0 DAY` is NULL for them), MariaDB JSON (LONGTEXT)
that JSON_VALID refuses (its CHECK can be switched off, or the column altered), a TINYINT(1) boolean that
is not 0 or 1, a NULL where the engine's schema (so the target) is NOT NULL; and per foreign key one query
for the rows whose reference names no parent row, byte for byte (MySQL takes them while FOREIGN_KEY_CHECKS is
off, as a dump's restore runs). Each such row is held under the quarantine and null policies (with the rows
that refer to it: quarantined, or under null their foreign key set to NULL where it may be; a dangling
reference that may be NULL is set to NULL under null), and stops the abort policy before anything is written.
The copy (wizard.mysql.reader) checks every value again on its way.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import sqlalchemy as sa

from wizard import schema
from wizard.db import connect, quote
from wizard.events import Emit, Progress, ignore
from wizard.move.normalize import BOOLEAN, DATE, JSON, TIMESTAMP
from wizard.move.scan import (ABORT, DANGLING, NULL, NULL_VALUE, ORPHANED, POLICIES, QUARANTINE, Finding, Key,
                              Quarantine, RowActions, ScanResult, shown_key)
from wizard.move.tables import Column, ForeignKey, SourceTable, copy_order
from wizard.mysql.info import app_tables
from wizard.mysql.kinds import column_kind, json_columns
from wizard.urls import DbUrl

NO_SUCH_DATE = "a zero or impossible date (MySQL's 0000-00-00 or a day 0): PostgreSQL has no such date"
BAD_JSON = "text that is not valid JSON in a JSON column"
BAD_BOOLEAN = "a value that is not a boolean in a boolean column"
BATCH = 1_000  # parent keys per query when finding the rows that refer to held ones

# Per kind, the SQL that is true of a value PostgreSQL has no meaning for ({c}: the quoted column).
_BAD = {
    TIMESTAMP: ("{c} IS NOT NULL AND {c} + INTERVAL 0 DAY IS NULL", NO_SUCH_DATE),
    DATE: ("{c} IS NOT NULL AND {c} + INTERVAL 0 DAY IS NULL", NO_SUCH_DATE),
    JSON: ("{c} IS NOT NULL AND NOT JSON_VALID({c})", BAD_JSON),
    BOOLEAN: ("{c} NOT IN (0, 1)", BAD_BOOLEAN),
}


def _read_tables(sync_conn: Any) -> list[SourceTable]:
    insp = sa.inspect(sync_conn)
    json = json_columns(sync_conn)
    tables = {}
    for name in insp.get_table_names():
        if name not in schema.ENGINE_TABLES:
            continue
        required = schema.not_null(schema.head())[name]  # NOT NULL where the history makes it so: the target's is
        columns = [Column(c["name"], str(c["type"]), column_kind(c["type"], name, c["name"], json),
                          c["nullable"] and c["name"] not in required, "") for c in insp.get_columns(name)]
        nullable = {c.name: c.nullable for c in columns}
        fks = [ForeignKey(tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                          all(nullable[c] for c in f["constrained_columns"]),
                          (f.get("options") or {}).get("ondelete", "NO ACTION").upper(),
                          (f.get("options") or {}).get("onupdate", "NO ACTION").upper())
               for f in insp.get_foreign_keys(name)]
        tables[name] = SourceTable(name, columns, tuple(insp.get_pk_constraint(name)["constrained_columns"]), fks)
    # AUTO_INCREMENT's next value: the sequences go past its high-water mark, as MySQL would hand out.
    for name, next_id in sync_conn.execute(sa.text(
            "SELECT table_name, auto_increment FROM information_schema.tables WHERE table_schema = DATABASE()")):
        if name in tables and next_id:
            tables[name].sequence = int(next_id) - 1
    return copy_order(tables)


async def read_source(db: DbUrl) -> tuple[list[SourceTable], schema.SchemaState, list[str]]:
    """The engine's tables (parents first), the schema's state, and the tables the history does not know."""
    async with connect(db) as conn:
        state = await schema.inspect_schema(conn)
        tables = await conn.run_sync(_read_tables)
        others = [t for t in await app_tables(conn) if t not in schema.ENGINE_TABLES and t != schema.VERSION_TABLE]
    return tables, state, others


async def fingerprint(db: DbUrl, tables: list[SourceTable]) -> dict[str, Any]:
    """What the source's tables hold now (their row counts and CHECKSUM TABLE): any write changes it."""
    async with connect(db) as conn:
        sums = await conn.execute(sa.text(f"CHECKSUM TABLE {', '.join(quote(t.name) for t in tables)} EXTENDED"))
        return {"checksums": {r[0].split(".")[-1]: r[1] for r in sums}}


async def scan(db: DbUrl, tables: list[SourceTable], emit: Emit = ignore) -> ScanResult:
    """Row counts, the values PostgreSQL will not take, and what each policy does with their rows."""
    found: dict[str, dict[Key, list[tuple[str, str, str]]]] = {}  # (column, rule, why) per problem
    findings: dict[tuple[str, str, str], Finding] = {}
    rows: dict[str, int] = {}
    names = {t.name for t in tables}
    async with connect(db) as conn:
        for done, t in enumerate(tables):
            emit(Progress("preflight", "scan the source's values", done, len(tables)))
            rows[t.name] = (await conn.execute(sa.text(f"SELECT COUNT(*) FROM {quote(t.name)}"))).scalar_one()
            tests = [(c.name, _BAD[c.kind][0].format(c=quote(c.name)), _BAD[c.kind][1])
                     for c in t.columns if c.kind in _BAD]
            tests += [(c.name, f"{quote(c.name)} IS NULL", NULL_VALUE) for c in t.columns
                      if not c.nullable and c.name not in t.key]
            found[t.name] = {}
            for fk in t.foreign_keys:
                if fk.parent in names:
                    async for key, ref in _dangling(conn, t, fk):
                        what = f"points to no {fk.parent} row"
                        found[t.name].setdefault(key, []).append((fk.label, DANGLING, f"= {shown_key(ref)} {what}"))
                        findings.setdefault((t.name, fk.label, what), Finding(t.name, fk.label, what)).add(key)
            if not tests:
                continue
            nk = len(t.key)
            sql = (f"SELECT {', '.join(quote(k) for k in t.key)}, {', '.join(f'({sql})' for _, sql, _ in tests)} "
                   f"FROM {quote(t.name)} WHERE {' OR '.join(f'({sql})' for _, sql, _ in tests)}")
            for row in await conn.execute(sa.text(sql)):
                key = tuple(row[:nk])
                for (column, _, rule), bad in zip(tests, row[nk:]):
                    if bad:
                        found[t.name].setdefault(key, []).append((column, rule, rule))
                        findings.setdefault((t.name, column, rule), Finding(t.name, column, rule)).add(key)
        emit(Progress("preflight", "scan the source's values", len(tables), len(tables)))
        actions = {policy: await _resolve(conn, tables, found, policy) for policy in POLICIES}
    stops = sum(len(v) for v in found.values())
    affected = {ABORT: stops, **{p: sum(len(a.quarantine) + len(a.null) for a in actions[p].values())
                                 for p in (NULL, QUARANTINE)}}
    return ScanResult(list(findings.values()), actions, affected, rows, {t.name: frozenset() for t in tables})


async def _resolve(conn: Any, tables: list[SourceTable], found: dict[str, dict[Key, list[tuple[str, str, str]]]],
                   policy: str) -> dict[str, RowActions]:
    """Per table, the rows `policy` holds, and the rows that refer to held ones (parents come first)."""
    out: dict[str, RowActions] = {}
    if policy == ABORT:
        return {t.name: RowActions() for t in tables}
    for t in tables:
        acts = out[t.name] = RowActions()
        nullable = {fk.label: fk for fk in t.foreign_keys if fk.nullable}
        for key, problems in found[t.name].items():
            if policy == NULL and all(rule == DANGLING and c in nullable for c, rule, _ in problems):
                acts.null[key] = tuple(dict.fromkeys(col for c, _, _ in problems for col in nullable[c].columns))
                continue
            said = "; ".join(f"{c} {why}" if rule == DANGLING else f"{c}: {why}" for c, rule, why in problems)
            acts.quarantine[key] = Quarantine(problems[0][1], said)
        for fk in t.foreign_keys:
            held = out.get(fk.parent)
            parent_key = next((p.key for p in tables if p.name == fk.parent), None)
            # The held keys are primary keys: an engine table's foreign keys refer to their parent's.
            if fk.parent == t.name or held is None or not held.quarantine or tuple(fk.parent_columns) != parent_key:
                continue
            async for key, ref in _children(conn, t, fk, list(held.quarantine)):
                if key in acts.quarantine:
                    continue
                if policy == NULL and fk.nullable:
                    acts.null[key] = tuple(dict.fromkeys(acts.null.get(key, ()) + fk.columns))
                else:
                    acts.quarantine[key] = Quarantine(
                        ORPHANED, f"{fk.label}: its {fk.parent} row ({shown_key(ref)}) is in quarantine")
    return out


async def _dangling(conn: Any, t: SourceTable, fk: ForeignKey) -> AsyncIterator[tuple[Key, Key]]:
    """(key, the value it refers by) of the rows of `t` whose `fk` names no parent row, as PostgreSQL compares:
    byte for byte (a case-blind collation finds 'WF-1' for 'wf-1'; its index finds it, the bytes then decide).
    MySQL lets such rows in while FOREIGN_KEY_CHECKS is off, as a dump's restore runs."""
    nk = len(t.key)
    cols = ", ".join(f"c.{quote(c)}" for c in fk.columns)
    same = " AND ".join(f"p.{quote(pc)} = c.{quote(cc)} AND BINARY p.{quote(pc)} = BINARY c.{quote(cc)}"
                        for cc, pc in zip(fk.columns, fk.parent_columns))
    sql = (f"SELECT {', '.join(f'c.{quote(k)}' for k in t.key)}, {cols} FROM {quote(t.name)} c "
           f"WHERE {' AND '.join(f'c.{quote(cc)} IS NOT NULL' for cc in fk.columns)} "
           f"AND NOT EXISTS (SELECT 1 FROM {quote(fk.parent)} p WHERE {same})")
    for row in await conn.execute(sa.text(sql)):
        yield tuple(row[:nk]), tuple(row[nk:])


async def _children(conn: Any, t: SourceTable, fk: ForeignKey, parents: list[Key]) -> AsyncIterator[tuple[Key, Key]]:
    """(key, the parent key it refers to) of the rows of `t` whose `fk` names one of `parents`."""
    nk, cols = len(t.key), ", ".join(quote(c) for c in fk.columns)
    for start in range(0, len(parents), BATCH):
        batch = parents[start:start + BATCH]
        params = {f"p{i}_{j}": v for i, key in enumerate(batch) for j, v in enumerate(key)}
        values = ", ".join("(" + ", ".join(f":p{i}_{j}" for j in range(len(key))) + ")" for i, key in enumerate(batch))
        sql = f"SELECT {', '.join(quote(k) for k in t.key)}, {cols} FROM {quote(t.name)} WHERE ({cols}) IN ({values})"
        for row in await conn.execute(sa.text(sql), params):
            yield tuple(row[:nk]), tuple(row[nk:])

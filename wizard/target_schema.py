"""The target's side of a move: its schema, the indexes built after the load, sequences, and undoing it all.

The schema is made in ONE transaction: the Alembic revisions up to the source's
revision (not further), the tables the history does not know (from the type map),
the move's bookkeeping tables, and the removal of the secondary indexes and foreign
keys, whose DDL is recorded in `wizard_move` so that a resumed run rebuilds them too.
Either all of it is there, tagged with the run's id, or none of it.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import text

from wizard import schema
from wizard.copy import CHECKPOINT_DDL, CHECKPOINTS
from wizard.db import connect, quote
from wizard.errors import StepError
from wizard.events import Emit, Progress, StepFinished, StepStarted, Warn
from wizard.normalize import BOOLEAN
from wizard.tables import ROWID, SourceTable
from wizard.typemap import kind_of_pg
from wizard.urls import DbUrl

MOVES = "wizard_move"
OWN_TABLES = (MOVES, CHECKPOINTS)
INDEX, FOREIGN_KEY = "index", "foreign key"

MOVE_DDL = f"""
CREATE TABLE {MOVES} (
    run_id text PRIMARY KEY,
    fingerprint text NOT NULL,   -- JSON: what the source file looked like when the run began
    revision text NOT NULL,
    tables text NOT NULL,        -- JSON list: every table this run created
    deferred text NOT NULL,      -- JSON list of {{table, name, kind, ddl}}: built after the load
    created_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass
class TargetSchema:
    run_id: str
    revision: str
    fingerprint: dict[str, Any]
    tables: list[str]  # every table the run created (engine's, unknown, alembic_version, its own)
    deferred: list[dict[str, str]] = field(default_factory=list)


def create_table_sql(t: SourceTable) -> str:
    """CREATE TABLE for a table the engine's history does not know (type map; no indexes or foreign keys yet)."""
    lines = []
    for c in t.columns:
        line = f"    {quote(c.name)} {c.pg_type}"
        if not c.nullable:
            line += " NOT NULL"
        default = _default_sql(c.default, c.kind)
        if default is not None and "IDENTITY" not in c.pg_type:
            line += f" DEFAULT {default}"
        lines.append(line)
    if not t.key_is_rowid:
        lines.append(f"    PRIMARY KEY ({', '.join(quote(k) for k in t.key)})")
    return f"CREATE TABLE {quote(t.name)} (\n" + ",\n".join(lines) + "\n)"


_LITERAL = re.compile(r"^(-?\d+(\.\d+)?|'([^']|'')*'|NULL)$", re.I)


def _default_sql(default: str | None, kind: str) -> str | None:
    """SQLite's default, when it means the same in PostgreSQL (literals, CURRENT_TIMESTAMP); else none."""
    if default is None:
        return None
    d = default.strip()
    while d.startswith("(") and d.endswith(")"):
        d = d[1:-1].strip()
    if d.upper() in ("CURRENT_TIMESTAMP", "CURRENT_DATE"):
        return "(now() AT TIME ZONE 'utc')" if d.upper() == "CURRENT_TIMESTAMP" else "CURRENT_DATE"
    if kind == BOOLEAN and d in ("0", "1"):
        return "false" if d == "0" else "true"
    if kind == BOOLEAN and d.upper() in ("TRUE", "FALSE"):
        return d.lower()
    return d if _LITERAL.match(d) else None


def deferred_sql(t: SourceTable, tables: dict[str, SourceTable], warn: Any) -> list[dict[str, str]]:
    """Indexes and foreign keys of a table the history does not know, as DDL to run after the load."""
    out = []
    for ix in t.indexes:
        if ix.where:  # SQLite's predicate need not mean the same in PostgreSQL (0/1 against a boolean, say)
            warn(f"{t.name}: {'unique ' if ix.unique else ''}index {ix.name} ({', '.join(ix.columns)}) is partial "
                 f"(WHERE {ix.where}): not carried; create it in PostgreSQL with the predicate in its SQL")
            continue
        unique = "UNIQUE " if ix.unique else ""
        name = ix.name if not ix.name.startswith("sqlite_autoindex") else f"{t.name}_{'_'.join(ix.columns)}_key"
        cols = ", ".join(quote(c) for c in ix.columns)
        out.append({"table": t.name, "name": name, "kind": INDEX,
                    "ddl": f"CREATE {unique}INDEX {quote(name)} ON {quote(t.name)} ({cols})"})
    for i, fk in enumerate(t.foreign_keys):
        parent = tables.get(fk.parent)
        why = _unusable(t, fk, parent)
        if why:
            warn(f"{t.name}.{fk.label}: its foreign key to {fk.parent} is not carried ({why}); the values are")
            continue
        name = f"{t.name}_{'_'.join(fk.columns)}_fkey"
        actions = "".join(f" ON {verb} {what}" for verb, what in (("DELETE", fk.on_delete), ("UPDATE", fk.on_update))
                          if what and what.upper() != "NO ACTION")
        out.append({"table": t.name, "name": name, "kind": FOREIGN_KEY, "ddl": (
            f"ALTER TABLE {quote(t.name)} ADD CONSTRAINT {quote(name)} FOREIGN KEY "
            f"({', '.join(quote(c) for c in fk.columns)}) REFERENCES {quote(fk.parent)} "
            f"({', '.join(quote(c) for c in fk.parent_columns)}){actions}")})
    return out


def _unusable(t: SourceTable, fk: Any, parent: SourceTable | None) -> str:
    if parent is None:
        return f"there is no table {fk.parent}"
    if ROWID in fk.parent_columns:
        return f"{fk.parent} has no primary key"
    unique = {parent.key} | {ix.columns for ix in parent.indexes if ix.unique}
    if tuple(fk.parent_columns) not in unique:
        return f"{fk.parent}({', '.join(fk.parent_columns)}) is not unique"
    for child, ref in zip(fk.columns, fk.parent_columns):
        if t.column(child).pg_type.split()[0] != parent.column(ref).pg_type.split()[0]:
            return f"{child} is {t.column(child).pg_type}, {fk.parent}.{ref} is {parent.column(ref).pg_type}"
    return ""


async def create(target: DbUrl, revision: str, tables: list[SourceTable], run_id: str,
                 fingerprint: dict[str, Any], emit: Emit, step: str = "schema") -> TargetSchema:
    """Make the target's schema in one transaction (see the module's docstring)."""
    unknown = [t for t in tables if not t.engine]
    by_name = {t.name: t for t in tables}
    deferred: list[dict[str, str]] = []

    def warn(message: str) -> None:
        emit(Warn(step, message))

    async with connect(target) as conn:
        async with conn.begin():
            if revision:  # else a --reflected copy: no engine schema, every table from the type map
                await schema.upgrade(conn, revision, emit, step=step)
            for t in unknown:
                await conn.exec_driver_sql(create_table_sql(t))
                deferred += deferred_sql(t, by_name, warn)
            engine = [t.name for t in tables if t.engine]
            deferred = await _defer_engine_ddl(conn, engine) + deferred
            await conn.exec_driver_sql(MOVE_DDL)
            await conn.exec_driver_sql(CHECKPOINT_DDL)
            versions = [schema.VERSION_TABLE] if revision else []
            created = [*engine, *versions, *(t.name for t in unknown), *OWN_TABLES]
            await conn.execute(
                text(f"INSERT INTO {MOVES} (run_id, fingerprint, revision, tables, deferred) "
                     "VALUES (:run, :fp, :rev, :tables, :deferred)"),
                {"run": run_id, "fp": json.dumps(fingerprint), "rev": revision, "tables": json.dumps(created),
                 "deferred": json.dumps(deferred)},
            )
    at = f"at revision {revision}" if revision else "as the source has them (--reflected)"
    emit(StepFinished(step, f"created {len(created)} tables {at}; {len(deferred)} indexes and foreign keys wait "
                            "for the load",
                      {"revision": revision, "tables": created}))
    return TargetSchema(run_id, revision, fingerprint, created, deferred)


async def _defer_engine_ddl(conn: Any, tables: list[str]) -> list[dict[str, str]]:
    """Record, then drop, the non-unique indexes and the foreign keys Alembic made on `tables`."""
    found = []
    rows = (await conn.execute(text(
        "SELECT c.relname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(:t) "
        "AND NOT x.indisprimary AND NOT x.indisunique ORDER BY 1, 2"), {"t": tables})).all()
    for table, name, ddl in rows:
        found.append({"table": table, "name": name, "kind": INDEX, "ddl": ddl})
        await conn.exec_driver_sql(f"DROP INDEX {quote(name)}")
    rows = (await conn.execute(text(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype = 'f' "
        "AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(:t) ORDER BY 1, 2"),
        {"t": tables})).all()
    for table, name, definition in rows:
        found.append({"table": table, "name": name, "kind": FOREIGN_KEY,
                      "ddl": f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}"})
        await conn.exec_driver_sql(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
    return found


async def load(conn: asyncpg.Connection, run_id: str) -> TargetSchema | None:
    """The schema record of `run_id` in the target, or None when the target holds none (or another run's)."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MOVES):
        return None
    row = await conn.fetchrow(f"SELECT * FROM {MOVES} WHERE run_id = $1", run_id)
    if row is None:
        return None
    return TargetSchema(run_id, row["revision"], json.loads(row["fingerprint"]), json.loads(row["tables"]),
                        json.loads(row["deferred"]))


async def target_kinds(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped", quote(table))
    return {r[0]: kind_of_pg(r[1]) for r in rows}


async def rebuild(conns: list[asyncpg.Connection], deferred: list[dict[str, str]], emit: Emit,
                  step: str = "indexes") -> int:
    """Build what the load went without: indexes (one per connection at a time), then foreign keys.

    Each item is skipped when it already exists, so a resumed run finishes what a stopped one began.
    """
    emit(StepStarted(step, f"build {len(deferred)} indexes and foreign keys"))
    done = 0
    todo = [d for d in deferred if d["kind"] == INDEX]
    queue: asyncio.Queue = asyncio.Queue()
    for d in todo:
        queue.put_nowait(d)

    async def worker(conn: asyncpg.Connection) -> None:
        nonlocal done
        await conn.execute("SET maintenance_work_mem = '256MB'")
        while not queue.empty():
            d = queue.get_nowait()
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(d["name"])):
                await _run_ddl(conn, d)
            done += 1
            emit(Progress(step, "indexes and foreign keys", done, len(deferred)))

    await asyncio.gather(*(worker(c) for c in conns))
    for d in (d for d in deferred if d["kind"] == FOREIGN_KEY):
        exists = await conns[0].fetchval(
            "SELECT 1 FROM pg_constraint WHERE conname = $1 AND conrelid = $2::regclass", d["name"], quote(d["table"]))
        if not exists:
            await _run_ddl(conns[0], d)
        done += 1
        emit(Progress(step, "indexes and foreign keys", done, len(deferred)))
    emit(StepFinished(step, f"built {len(deferred)} indexes and foreign keys"))
    return done


async def _run_ddl(conn: asyncpg.Connection, d: dict[str, str]) -> None:
    try:
        await conn.execute(d["ddl"])
    except asyncpg.PostgresError as exc:
        raise StepError(f"cannot build {d['kind']} {d['name']} on {d['table']}: {exc}: the copied rows are kept; "
                        f"fix the cause and run the move again with --resume") from None


async def set_sequences(conn: asyncpg.Connection, tables: list[str]) -> dict[str, int]:
    """Every serial or identity column's sequence past its highest value: the next insert gets max + 1."""
    out = {}
    for table in tables:
        rows = await conn.fetch(
            "SELECT attname, pg_get_serial_sequence($1, attname) AS seq FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped", quote(table))
        for column, seq in ((r["attname"], r["seq"]) for r in rows if r["seq"]):
            top = await conn.fetchval(f"SELECT max({quote(column)}) FROM {quote(table)}")
            if top is None:
                await conn.execute("SELECT setval($1, 1, false)", seq)
            else:
                await conn.execute("SELECT setval($1, $2, true)", seq, top)
            out[f"{table}.{column}"] = (top or 0) + 1
    return out


async def forget(conn: asyncpg.Connection) -> None:
    """Drop the move's bookkeeping once the run has finished: the target holds the engine's tables only."""
    await conn.execute(f"DROP TABLE IF EXISTS {CHECKPOINTS}, {MOVES}")


def drop_tables_undo(target: DbUrl, tables: list[str]) -> dict[str, Any]:
    """The journal's undo for the tables a move created (wizard.move_rollback performs it)."""
    return {"action": "drop_tables", "db": target.masked(), "database": target.database, "tables": tables}


async def drop_tables(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    """Drop the tables a move created (the ones that still exist), in one statement; returns them."""
    present = [t for t in tables if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(t))]
    if present:
        await conn.execute(f"DROP TABLE {', '.join(quote(t) for t in present)}")
    return present

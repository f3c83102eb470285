"""`wizard plan`: what the wizard finds in a database and what a run would do; changes nothing.

A report is built from small describe-functions, one per part, so a journey can
add its own part (a field on PlanReport and one call in plan()).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import schema
from wizard.move import typemap
from wizard.db import connect, file_size, row_counts, table_names
from wizard.mysql import info as mysql_info
from wizard.move.preflight import check_target_kind
from wizard.move.target_schema import create_table_sql, key_sql, read_source, renames
from wizard.urls import DbUrl


@dataclass
class PendingRevision:
    id: str
    description: str
    record_only: bool = False  # a 1.0.0 database's baseline: recorded, no SQL run


@dataclass
class DatabaseInfo:
    url: str  # masked
    engine: str  # "SQLite 3.40.1", "PostgreSQL 15.4"
    size: int | None  # bytes
    tables: dict[str, int]  # every table, with its row count
    schema: str  # SchemaState.describe()
    revision: str | None  # recorded, or recognised
    other_tables: list[str]  # tables the engine's history does not know


@dataclass
class CarriedColumn:
    name: str
    sqlite: str  # the declared type, as SQLite has it
    postgres: str  # from the type map
    target: str  # its name in PostgreSQL (wizard.move.pgnames: a name over 63 bytes gets another)


@dataclass
class CarriedTable:
    """A table the engine's history does not know: a move reflects it and creates it with the type map."""

    name: str
    columns: list[CarriedColumn]
    ddl: str  # its CREATE TABLE, then its primary key and identity
    target: str  # its name in PostgreSQL


@dataclass
class PlanReport:
    source: DatabaseInfo
    pending: list[PendingRevision]  # up to head, from where the source is
    head: str
    target: DatabaseInfo | None = None
    notes: list[str] = field(default_factory=list)  # what stands in the way, in words
    carried: list[CarriedTable] = field(default_factory=list)  # a SQLite source's tables the history does not know
    type_map: list[dict[str, str]] = field(default_factory=list)  # the map they are created with (typemap.table())
    not_carried: list[str] = field(default_factory=list)  # views, triggers, defaults, ...: what a move leaves out
    renamed: dict[str, str] = field(default_factory=dict)  # table or table.column -> PostgreSQL's name, when another

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def _engine_and_size(conn: AsyncConnection, db: DbUrl) -> tuple[str, int | None]:
    if db.is_sqlite:
        return f"SQLite {sqlite3.sqlite_version}", file_size(db)
    if db.is_mysql:
        return await mysql_info.engine_and_size(conn)
    version = (await conn.execute(text("SHOW server_version"))).scalar_one()
    size = (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
    return f"PostgreSQL {version.split()[0]}", int(size)


async def describe_database(db: DbUrl) -> tuple[DatabaseInfo, schema.SchemaState]:
    # Read-only: the last read-write connection to close checkpoints a WAL file's -wal into it.
    async with connect(db, readonly=True) as conn:
        engine, size = await _engine_and_size(conn, db)
        state = await schema.inspect_schema(conn)
        names = await table_names(conn)
        counts = await row_counts(conn, names)
    info = DatabaseInfo(db.masked(), engine, size, counts, state.describe(), state.effective, state.other_tables)
    return info, state


def pending_revisions(state: schema.SchemaState) -> tuple[list[PendingRevision], list[str]]:
    """The revisions up to head, and notes when the way there is not clear."""
    if state.empty:
        return [], ["none of the engine's tables: nothing to upgrade"]
    if state.recorded:
        known = [r.id for r in schema.history()]
        if state.revision not in known:
            return [], [f"revision {state.revision} is not in this wizard's history"]
        return [PendingRevision(r.id, r.description) for r in schema.between(state.revision, schema.head())], []
    if state.matches[:1] == [schema.history()[0].id] and len(state.matches) == 1:
        baseline, *rest = schema.between(None, schema.head())
        pending = [PendingRevision(baseline.id, baseline.description, record_only=True)]
        return pending + [PendingRevision(r.id, r.description) for r in rest], [
            f"a 1.0.0 database: the upgrade records its baseline {baseline.id} first, once you agree"]
    if state.matches:
        return [], [f"its tables match {', '.join(state.matches)} (they differ only in data): "
                    "record the right revision with `alembic stamp` first"]
    return [], ["its tables match no known revision: " + "; ".join(state.differences)]


def carried_tables(db: DbUrl) -> tuple[list[CarriedTable], list[str], dict[str, str]]:
    """The SQLite source's tables the engine's history does not know, as a move would create them; what a
    move does not carry (wizard.move.tables.not_carried, the defaults it drops), each with what to do; and the
    names PostgreSQL gets others for."""
    tables, left = read_source(db.sqlite_path)
    carried = [CarriedTable(t.name, [CarriedColumn(c.name, c.declared or "(none)", c.pg_type, c.target)
                                     for c in t.columns], ";\n".join([create_table_sql(t), *key_sql(t)]), t.target)
               for t in tables if not t.engine]
    return carried, [n.line() for n in left], renames(tables)


async def plan(source: DbUrl, target: DbUrl | None = None) -> PlanReport:
    info, state = await describe_database(source)
    pending, notes = pending_revisions(state)
    report = PlanReport(info, pending, schema.head(), notes=notes)
    if source.is_mysql:
        report.notes.append("MySQL or MariaDB: an upgrade commits each revision on its own (MySQL commits DDL "
                            "itself) and a rollback undoes it; a move goes off it, to PostgreSQL")
    if source.is_sqlite and state.other_tables:
        report.carried, report.not_carried, report.renamed = carried_tables(source)
        report.type_map = [dataclasses.asdict(m) for m in typemap.table()]
    if target is not None:
        check_target_kind(target)  # else planned as a target that "already holds the engine's tables"
        report.target, target_state = await describe_database(target)
        if not target_state.empty:
            report.notes.append(f"the target already holds the engine's tables ({target_state.describe()}): "
                                "a move needs an empty target")
    return report

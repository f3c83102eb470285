"""The schema half of verification: a database's tables against what its Alembic revision creates.

The expected schema is not written down twice: it is what the engine's own
migrations make. On PostgreSQL they are applied, inside a transaction that is
rolled back, to the session's temporary schema (`SET LOCAL search_path TO
pg_temp`) of the very server being checked, and that is reflected -- so types
compile exactly as that server spells them, nothing is left behind, and no
scratch database (nor the right to create one) is needed. On SQLite they are
applied to an in-memory database. MySQL has neither transactional DDL nor a
temporary schema: there they are applied to a scratch database on the same
server, dropped after. Each is cached per revision for the process.

Tables the engine's history does not know are compared with the source's
reflected columns (names, nullability, primary key) when a source is given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import CompileError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import schema
from wizard.db import connect, quote, string_literal, write_transaction
from wizard.errors import StepError
from wizard.move.normalize import kind_of
from wizard.move.tables import plain_tables
from wizard.move.target_schema import OWN_TABLES
from wizard.mysql import kinds as mysql_kinds
from wizard.mysql.scratch import scratch_database
from wizard.urls import DbUrl

OK, FAIL, WARN, INFO = "ok", "fail", "warn", "info"
# Tables a comparison never looks at: SQLite's own, the move's in the target; and the engine's alembic_version
# beside the engine's tables (another app's is one of its tables).
INTERNAL_TABLES = ("sqlite_sequence", "sqlite_stat1", "sqlite_stat4", *OWN_TABLES)


@dataclass(frozen=True)
class SchemaFinding:
    table: str
    what: str  # revision, table, column, type, nullable, primary key, index, unique, foreign key, sequence, schema
    status: str  # ok | fail | warn | info
    detail: str


@dataclass(frozen=True)
class ColumnShape:
    name: str
    type: str  # as the database's dialect spells it
    nullable: bool
    kind: str  # normalize's kind, for the value rules
    collatable: bool  # a string type that takes COLLATE
    serial: bool  # filled by a sequence or an identity
    stored_as: str = ""  # its name in the database, when shown under the source's (wizard.move.pgnames)

    @property
    def sql_name(self) -> str:
        return self.stored_as or self.name


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[ColumnShape, ...]
    pk: tuple[str, ...]
    indexes: dict[tuple[tuple[str, ...], bool], str]  # (columns, unique) -> name
    uniques: frozenset[tuple[str, ...]]
    fks: frozenset[tuple[tuple[str, ...], str, tuple[str, ...]]]
    stored_as: str = ""  # its name in the database, when shown under the source's (wizard.move.pgnames)

    @property
    def sql_name(self) -> str:
        return self.stored_as or self.name

    def under(self, name: str, columns: dict[str, str]) -> "TableShape":
        """This table shown as `name`, its columns as `columns` says (its name -> the shown one): a
        target table the move named otherwise, compared with its source table. Its columns, key and
        sequences are compared; indexes and foreign keys are the source's own business here."""
        cols = tuple(dataclasses.replace(c, name=columns.get(c.name, c.name), stored_as=c.name) for c in self.columns)
        return TableShape(name, cols, tuple(columns.get(c, c) for c in self.pk), self.indexes, self.uniques, self.fks,
                          stored_as=self.name)

    def column(self, name: str) -> ColumnShape | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


# --- reflecting ---


def _type_name(col_type: Any, dialect: Any) -> str:
    try:
        return col_type.compile(dialect=dialect)
    except CompileError:
        return str(col_type)


def _collatable(col_type: Any) -> bool:
    return isinstance(col_type, sa.String) and not isinstance(col_type, sa.Enum)


def reflect_shapes(sync_conn: Any, names: list[str] | None = None, schema_name: str | None = None,
                   temp: bool = False) -> dict[str, TableShape]:
    insp = inspect(sync_conn)
    dialect = sync_conn.dialect
    sqlite = dialect.name == "sqlite"
    if names is None:
        names = insp.get_temp_table_names() if temp else insp.get_table_names(schema=schema_name)
        if sqlite:  # the tables a move carries: not virtual tables nor their shadow tables
            names = plain_tables(sync_conn.exec_driver_sql("PRAGMA main.table_list").fetchall())
    engine = any(t in schema.ENGINE_TABLES for t in names)
    mysql_json = mysql_kinds.json_columns(sync_conn) if dialect.name == "mysql" else None

    def kind(t: str, c: dict) -> str:
        return kind_of(c["type"]) if mysql_json is None else mysql_kinds.column_kind(c["type"], t, c["name"], mysql_json)

    shapes = {}
    for t in names:
        if t in INTERNAL_TABLES or (engine and t == schema.VERSION_TABLE):
            continue
        cols = tuple(
            ColumnShape(
                c["name"], _type_name(c["type"], dialect), bool(c["nullable"]), kind(t, c),
                _collatable(c["type"]),
                bool(c.get("identity")) or str(c.get("default") or "").startswith("nextval("),
            )
            for c in insp.get_columns(t, schema=schema_name)
            if not (sqlite and c.get("computed"))  # SQLite's generated columns are derived: not moved
        )
        pk = tuple(insp.get_pk_constraint(t, schema=schema_name).get("constrained_columns") or ())
        indexes = {
            (tuple(i["column_names"]), bool(i["unique"])): i["name"]
            for i in insp.get_indexes(t, schema=schema_name)
            if not i.get("duplicates_constraint")  # PostgreSQL's index behind a UNIQUE constraint
        }
        uniques = frozenset(tuple(u["column_names"]) for u in insp.get_unique_constraints(t, schema=schema_name))
        fks = frozenset(
            (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
            for f in insp.get_foreign_keys(t, schema=schema_name)
        )
        shapes[t] = TableShape(t, cols, pk, indexes, uniques, fks)
    return shapes


async def reflect(conn: AsyncConnection) -> dict[str, TableShape]:
    return await conn.run_sync(reflect_shapes)


# --- what a revision creates ---

_EXPECTED_PG: dict[str, dict[str, TableShape]] = {}
_EXPECTED_SQLITE: dict[str, dict[str, TableShape]] = {}
_EXPECTED_MYSQL: dict[tuple, dict[str, TableShape]] = {}  # (MariaDB?, server version, revision) ->


def _expected_sqlite(revision: str) -> dict[str, TableShape]:
    if revision not in _EXPECTED_SQLITE:
        engine = create_engine("sqlite://")
        with engine.begin() as conn:
            cfg = schema.alembic_config()
            cfg.attributes["connection"] = conn
            with schema.ALEMBIC_LOCK:
                command.upgrade(cfg, revision)
            _EXPECTED_SQLITE[revision] = reflect_shapes(conn)
        engine.dispose()
    return _EXPECTED_SQLITE[revision]


async def _expected_pg(conn: AsyncConnection, revision: str) -> dict[str, TableShape]:
    if revision not in _EXPECTED_PG:
        if conn.in_transaction():
            await conn.rollback()
        await conn.begin()
        try:
            await conn.execute(text("SET LOCAL search_path TO pg_temp"))
            await schema.upgrade(conn, revision)
            temp = (await conn.execute(text("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()"))).scalar()
            _EXPECTED_PG[revision] = await conn.run_sync(reflect_shapes, None, temp, True)
        finally:
            await conn.rollback()  # the temporary tables go with it
    return _EXPECTED_PG[revision]


async def _expected_mysql(conn: AsyncConnection, revision: str, run_folder: Path | None) -> dict[str, TableShape]:
    """MySQL has no transactional DDL nor a temporary schema: the history is applied to a scratch database
    of its own on the same server (named after `run_folder`'s run, as the backup's proof), reflected, and dropped."""
    key = (bool(getattr(conn.dialect, "is_mariadb", False)), conn.dialect.server_version_info, revision)
    if key not in _EXPECTED_MYSQL:
        db = DbUrl(conn.engine.url, "mysql")
        async with connect(db) as admin:
            admin = await admin.execution_options(isolation_level="AUTOCOMMIT")
            async with scratch_database(db, admin, "the schema was not checked", run_folder) as scratch:
                async with connect(scratch) as built:
                    async with write_transaction(built):
                        await schema.upgrade(built, revision)
                    _EXPECTED_MYSQL[key] = await reflect(built)
    return _EXPECTED_MYSQL[key]


async def expected_shapes(conn: AsyncConnection, revision: str,
                          run_folder: Path | None = None) -> dict[str, TableShape]:
    if conn.dialect.name == "sqlite":
        return _expected_sqlite(revision)
    if conn.dialect.name == "mysql":
        return await _expected_mysql(conn, revision, run_folder)
    return await _expected_pg(conn, revision)


# --- comparing ---


async def check_schema(conn: AsyncConnection, source: dict[str, TableShape] | None = None,
                       have: dict[str, TableShape] | None = None,
                       run_folder: Path | None = None) -> list[SchemaFinding]:
    """Findings for the database on `conn` (`have`: its reflection, when the caller has it); `source`
    is the source's reflection, for the tables the history does not know; `run_folder`: the run checking."""
    state = await schema.inspect_schema(conn)
    have = have if have is not None else await reflect(conn)
    findings: list[SchemaFinding] = []
    revision = state.effective
    if state.empty and source is not None:
        # Another app's database copied as it is (--reflected): every table is the source's (its own
        # alembic_version too: the revision it records is not the engine's); a missing engine table is
        # still named below, as a table in the source but missing here.
        findings.append(SchemaFinding("", "revision", INFO, "none of the engine's tables: every table is compared "
                                                            "with the source's"))
        expected = {}
    elif revision is None:
        why = state.describe()
        findings.append(SchemaFinding("", "revision", FAIL, f"cannot tell which revision to check against: {why}"))
        expected: dict[str, TableShape] = {}
    else:
        how = f"at revision {revision}" if state.recorded else f"no revision recorded; its tables match {revision}"
        findings.append(SchemaFinding("", "revision", INFO, how))
        try:
            expected = await expected_shapes(conn, revision, run_folder)
        except DBAPIError as exc:
            line = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            findings.append(SchemaFinding("", "revision", WARN, f"schema not checked: cannot build revision {revision} "
                                          f"in a temporary schema ({line}): the user needs the TEMP privilege"))
            return findings
        except StepError as exc:  # MySQL: no scratch database for the revision (wizard.mysql.dump says the GRANT)
            findings.append(SchemaFinding("", "revision", WARN, str(exc)))
            return findings
    for name, want in expected.items():
        findings += _compare_table(name, want, have.get(name), revision or "")
    for name in sorted(set(have) - set(expected)):
        if source is not None and name in source:
            findings += _compare_reflected(name, source[name], have[name])
        elif name not in schema.ENGINE_TABLES:
            findings.append(SchemaFinding(name, "table", INFO, f"table {name} is not the engine's: not compared"))
    if source is not None:
        for name in sorted(set(source) - set(have) - set(expected)):
            findings.append(SchemaFinding(name, "table", FAIL, f"table {name} is in the source but missing here"))
    if conn.dialect.name == "postgresql":
        findings += await _check_sequences(conn, have)
    return findings


def _cols(cols: tuple[str, ...]) -> str:
    return ", ".join(cols)


def _compare_table(name: str, want: TableShape, have: TableShape | None, revision: str) -> list[SchemaFinding]:
    if have is None:
        return [SchemaFinding(name, "table", FAIL, f"table {name} is missing (revision {revision} creates it)")]
    out: list[SchemaFinding] = []

    def fail(what: str, detail: str, status: str = FAIL) -> None:
        out.append(SchemaFinding(name, what, status, detail))

    for col in want.columns:
        got = have.column(col.name)
        if got is None:
            fail("column", f"column {name}.{col.name} ({col.type}) is missing")
            continue
        if got.type != col.type:
            fail("type", f"{name}.{col.name} is {got.type}, revision {revision} makes it {col.type}")
        if got.nullable != col.nullable:
            fail("nullable", f"{name}.{col.name} is {'nullable' if got.nullable else 'NOT NULL'}, "
                             f"revision {revision} makes it {'nullable' if col.nullable else 'NOT NULL'}")
        if col.serial and not got.serial:
            fail("sequence", f"{name}.{col.name} has no sequence: an insert without an id fails")
    for extra in set(have.names) - set(want.names):
        fail("column", f"column {name}.{extra} is not in revision {revision}")
    if have.pk != want.pk:
        fail("primary key", f"{name}'s primary key is ({_cols(have.pk)}), revision {revision} makes it ({_cols(want.pk)})")
    for (cols, unique), index in want.indexes.items():
        if (cols, unique) not in have.indexes:
            ddl = f"CREATE {'UNIQUE ' if unique else ''}INDEX {index} ON {name} ({_cols(cols)})"
            fail("index", f"index {index} on {name} ({_cols(cols)}) is missing: queries on it scan the table; {ddl}")
    for (cols, unique), index in have.indexes.items():
        if (cols, unique) not in want.indexes:
            fail("index", f"index {index} on {name} ({_cols(cols)}) is not in revision {revision}", WARN)
    for cols in want.uniques - have.uniques:
        fail("unique", f"the unique constraint on {name} ({_cols(cols)}) is missing")
    for cols, table, refs in want.fks - have.fks:
        fail("foreign key", f"the foreign key {name} ({_cols(cols)}) -> {table} ({_cols(refs)}) is missing")
    for cols, table, refs in have.fks - want.fks:
        fail("foreign key", f"the foreign key {name} ({_cols(cols)}) -> {table} ({_cols(refs)}) is not in "
                            f"revision {revision}", WARN)
    if not out:
        out.append(SchemaFinding(name, "schema", OK, f"as revision {revision}: {len(want.columns)} columns, "
                                 f"{len(want.indexes)} indexes, {len(want.fks)} foreign keys"))
    return out


def _compare_reflected(name: str, source: TableShape, have: TableShape) -> list[SchemaFinding]:
    """A table the history does not know: the source's columns, nullability and primary key."""
    out = []
    for col in source.columns:
        got = have.column(col.name)
        if got is None:
            out.append(SchemaFinding(name, "column", FAIL, f"column {name}.{col.name} of the source is missing"))
        elif got.nullable != col.nullable and col.name not in source.pk and not got.nullable:
            out.append(SchemaFinding(name, "nullable", FAIL, f"{name}.{col.name} is NOT NULL, nullable in the source"))
    for extra in set(have.names) - set(source.names):
        out.append(SchemaFinding(name, "column", FAIL, f"column {name}.{extra} is not in the source"))
    if source.pk and have.pk != source.pk:
        out.append(SchemaFinding(name, "primary key", FAIL,
                                 f"{name}'s primary key is ({_cols(have.pk)}), the source's is ({_cols(source.pk)})"))
    if not out:
        out.append(SchemaFinding(name, "schema", OK, f"not the engine's; columns as in the source ({len(source.columns)})"))
    return out


async def _check_sequences(conn: AsyncConnection, have: dict[str, TableShape]) -> list[SchemaFinding]:
    """Each sequence must hand out an id past the highest one in its column."""
    out = []
    for table in have.values():
        for col in table.columns:
            if not col.serial:
                continue
            seq = (await conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                      {"t": quote(table.sql_name), "c": col.sql_name})).scalar()
            if seq is None:
                continue
            # Sent as they are, not through text(): it would read a ':name' inside a quoted name as a parameter.
            last, called = (await conn.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}")).one()
            top = (await conn.exec_driver_sql(
                f"SELECT max({quote(col.sql_name)}) FROM {quote(table.sql_name)}")).scalar()
            following = last + 1 if called else last
            where = f"{table.name}.{col.name}"
            if top is not None and following <= top:
                out.append(SchemaFinding(table.name, "sequence", FAIL,
                                         f"sequence {seq} hands out {following} next, but {where} already holds ids "
                                         f"up to {top}: the engine's next insert fails; fix: SELECT setval({string_literal(seq)}, {top})"))
            else:
                out.append(SchemaFinding(table.name, "sequence", OK,
                                         f"sequence {seq} hands out {following} next (highest {where}: {top})"))
    return out


async def verify_schema(db: DbUrl, source: dict[str, TableShape] | None = None) -> list[SchemaFinding]:
    """The schema findings for `db` alone (for callers that have no data to compare)."""
    async with connect(db, readonly=True) as conn:
        return await check_schema(conn, source)

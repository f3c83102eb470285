"""Engine databases for the foundation's tests: a 1.0.0 PostgreSQL or MySQL with the sample's rows, and readers.

A 1.0.0 PostgreSQL or MySQL database is what the engine's create_all made: 0001's tables and
no alembic_version. The rows come from a sample SQLite file, turned into the
values PostgreSQL's columns take (booleans, timestamps, parsed JSON).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from wizard import schema
from wizard.db import connect, write_transaction
from wizard.urls import parse_url

TABLE_ORDER = ("users", "workflows", "executions", "settings")  # parents first


def _convert(column: sa.Column, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, sa.Boolean):
        return bool(value)
    if isinstance(column.type, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, sa.JSON):
        return json.loads(value)
    return value


async def _load(url: str, sqlite_path: Path) -> None:
    source = sqlite3.connect(sqlite_path)
    source.row_factory = sqlite3.Row
    async with connect(parse_url(url)) as conn:
        async with write_transaction(conn):
            await schema.upgrade(conn, "0001")
            await conn.execute(sa.text("DROP TABLE alembic_version"))
            if conn.dialect.name in ("mysql", "mariadb"):
                await _in_the_default_collation(conn)
            meta = sa.MetaData()
            await conn.run_sync(lambda c: meta.reflect(c, only=TABLE_ORDER))
            for name in TABLE_ORDER:
                table = meta.tables[name]
                rows = [{c.name: _convert(c, r[c.name]) for c in table.columns}
                        for r in source.execute(f"SELECT * FROM {name}")]
                if rows:
                    await conn.execute(table.insert(), rows)
            for name in ("executions", "settings") if conn.dialect.name == "postgresql" else ():  # MySQL's
                # AUTO_INCREMENT moves past the ids inserted on its own
                await conn.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))
    source.close()


async def _in_the_default_collation(conn: Any) -> None:
    """The text columns in the database's default collation, as the engine's create_all left them on MySQL
    (0001 gives them the binary one a move onto MySQL makes: migrations/versions/0001_baseline.py). A key's
    collation cannot change under a foreign key, so those are dropped and made again."""
    collation = (await conn.execute(sa.text("SELECT @@collation_database"))).scalar()
    fks = (await conn.execute(sa.text(
        "SELECT table_name, constraint_name, column_name, referenced_table_name, referenced_column_name "
        "FROM information_schema.key_column_usage WHERE table_schema = DATABASE() "
        "AND referenced_table_name IS NOT NULL"))).all()
    for table, name, *_ in fks:
        await conn.execute(sa.text(f"ALTER TABLE {table} DROP FOREIGN KEY {name}"))
    found = await conn.execute(sa.text(
        "SELECT table_name, column_name, column_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND collation_name IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')"))
    for table, column, type_, nullable in found.all():
        await conn.execute(sa.text(f"ALTER TABLE {table} MODIFY {column} {type_} COLLATE {collation}"
                                   f"{'' if nullable == 'YES' else ' NOT NULL'}"))
    for table in TABLE_ORDER:
        await conn.execute(sa.text(f"ALTER TABLE {table} COLLATE {collation}"))
    for table, name, column, parent, parent_column in fks:
        await conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
                                   f"REFERENCES {parent} ({parent_column})"))


def build_1_0_0(url: str, sqlite_path: Path) -> str:
    """Make the empty PostgreSQL or MySQL database at `url` a 1.0.0 engine database holding the sample's rows."""
    asyncio.run(_load(url, sqlite_path))
    return url


build_pg_1_0_0 = build_1_0_0  # the name the PostgreSQL tests know it by


async def _read(url: str, sql: str) -> list[tuple]:
    async with connect(parse_url(url)) as conn:
        return [tuple(r) for r in await conn.execute(sa.text(sql))]


def read(url: str, sql: str) -> list[tuple]:
    """Rows of a query, on either engine (JSON columns come back as text on SQLite, parsed on PostgreSQL)."""
    return asyncio.run(_read(url, sql))


async def _write(url: str, sql: str) -> None:
    async with connect(parse_url(url)) as conn:
        async with write_transaction(conn):
            await conn.execute(sa.text(sql))


def write(url: str, sql: str) -> None:
    """Run one statement and commit it."""
    asyncio.run(_write(url, sql))


def parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def revision(url: str) -> str | None:
    tables = {r[0] for r in read(url, _TABLES_SQL[parse_url(url).kind])}
    if "alembic_version" not in tables:
        return None
    rows = read(url, "SELECT version_num FROM alembic_version")
    return rows[0][0] if rows else None


def counts(url: str) -> dict[str, int]:
    names = [r[0] for r in read(url, _TABLES_SQL[parse_url(url).kind])]
    return {n: read(url, f'SELECT count(*) FROM "{n}"')[0][0] for n in names}


def columns(url: str, table: str) -> list[str]:
    if parse_url(url).is_sqlite:
        return [r[1] for r in read(url, f"PRAGMA table_info({table})")]
    return [r[0] for r in read(url, "SELECT column_name FROM information_schema.columns "
                                    f"WHERE table_name = '{table}' ORDER BY ordinal_position")]


# What an engine writes to the database it was handed after a run: inserts, updates, deletes.
ENGINE_WRITES_PG = (
    "INSERT INTO executions (workflow_id, status, state, started_at) SELECT workflow_id, 'completed', "
    "'{\"nodes\": {\"n1\": {\"out\": 1}}}', now() FROM executions ORDER BY id LIMIT 50",
    "UPDATE workflows SET name = name || ' (renamed)' WHERE id IN (SELECT id FROM workflows ORDER BY id LIMIT 3)",
    "DELETE FROM executions WHERE id IN (7, 8)",
    "UPDATE users SET email = 'new@example.com', is_active = false WHERE id = (SELECT min(id) FROM users)",
)


def engine_rows(url: str) -> dict[str, set]:
    """What the engine sees, on either engine, in one comparable form."""
    def j(v):  # JSON as text on SQLite, parsed on PostgreSQL
        return json.dumps(json.loads(v) if isinstance(v, str) else v, sort_keys=True)

    return {
        "executions": {(r[0], r[1], r[2], j(r[3])) for r in read(url, "SELECT id, workflow_id, status, state "
                                                                       "FROM executions")},
        "workflows": {(r[0], r[1]) for r in read(url, "SELECT id, name FROM workflows")},
        "users": {(r[0], r[1], bool(r[2])) for r in read(url, "SELECT id, email, is_active FROM users")},
    }


_TABLES_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    "mysql": "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name",
}

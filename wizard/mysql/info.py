"""What a MySQL or MariaDB database is: the server's name and version, its size, its tables."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.db import connect
from wizard.urls import DbUrl


def server_name(version: str) -> str:
    """'MariaDB 10.11.19' from '10.11.19-MariaDB-0+deb12u1', 'MySQL 8.0.36' from '8.0.36'."""
    number = version.split("-")[0]
    return f"MariaDB {number}" if "mariadb" in version.lower() else f"MySQL {number}"


async def engine_and_size(conn: AsyncConnection) -> tuple[str, int]:
    """The server as plan names it, and the bytes its tables and indexes take in this database (InnoDB's
    own estimate, as information_schema gives it)."""
    version = (await conn.execute(text("SELECT VERSION()"))).scalar_one()
    size = (await conn.execute(text(
        "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
        "WHERE table_schema = DATABASE()"))).scalar_one()
    return server_name(version), int(size)


async def is_mariadb(db: DbUrl) -> bool:
    """Whether the MySQL server at `db` is MariaDB."""
    async with connect(db) as conn:
        return bool(conn.dialect.is_mariadb)


async def charset(conn: AsyncConnection) -> tuple[str, str]:
    """The database's default character set and collation."""
    row = (await conn.execute(text("SELECT default_character_set_name, default_collation_name "
                                   "FROM information_schema.schemata WHERE schema_name = DATABASE()"))).one()
    return row[0], row[1]


async def app_tables(conn: AsyncConnection) -> list[str]:
    """The base tables of the URL's database (no views), by name."""
    rows = await conn.execute(text(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"))
    return [r[0] for r in rows]


async def other_sessions(db: DbUrl, lock: str | None = None) -> list[str]:
    """The other client connections using `db`'s database (those the user may see: all of them with the PROCESS
    privilege), as "connection N (user U, from HOST)"; not the one holding the named `lock` (this wizard's own)."""
    async with connect(db) as conn:
        rows = await conn.execute(text(
            "SELECT id, user, host FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID() AND id <> COALESCE(IS_USED_LOCK(:lock), 0) ORDER BY id"),
            {"lock": lock or ""})
        return [f"connection {r[0]} (user {r[1]}, from {r[2]})" for r in rows]

"""A move's MySQL or MariaDB target: its checks, its schema, its bookkeeping, its AUTO_INCREMENT counters.

The checks only ask questions. The schema is the engine's Alembic history run on MySQL (revision
0001's MySQL variants); the move's bookkeeping (wizard_move, wizard_copy_checkpoint) sits beside it
under the names it has on PostgreSQL, so the rollback's drop of the move's tables is the same list.
MySQL commits each DDL statement itself: the move journals the drop of every table it may create
before the first CREATE (wizard.mysql.move_onto), and a resumed run that finds no bookkeeping row drops
what a killed run left and creates the schema again.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard import schema
from wizard.db import connect, quote, write_transaction
from wizard.errors import BadInput
from wizard.events import Emit
from wizard.move.copy import CHECKPOINTS
from wizard.move.preflight import TargetInfo
from wizard.move.target_schema import MOVES, OWN_TABLES
from wizard.mysql.info import app_tables, charset, server_name
from wizard.urls import DbUrl

CHARSET = "utf8mb4"  # the only MySQL character set that holds every character SQLite's text can

MOVE_DDL = f"""
CREATE TABLE IF NOT EXISTS {MOVES} (
    run_id VARCHAR(64) PRIMARY KEY,
    fingerprint LONGTEXT NOT NULL,
    revision VARCHAR(64) NOT NULL,
    "tables" LONGTEXT  -- NULL while the schema is being made
) ENGINE=InnoDB CHARACTER SET utf8mb4"""

CHECKPOINT_DDL = f"""
CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (
    run_id VARCHAR(64) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    last_key LONGTEXT,
    rows_copied BIGINT NOT NULL DEFAULT 0,
    rows_quarantined BIGINT NOT NULL DEFAULT 0,
    quarantine_bytes BIGINT NOT NULL DEFAULT 0,
    nulled_bytes BIGINT NOT NULL DEFAULT 0,
    conversions LONGTEXT NOT NULL,
    seconds DOUBLE NOT NULL DEFAULT 0,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (run_id, table_name)
) ENGINE=InnoDB CHARACTER SET utf8mb4"""


def charset_problem(target: DbUrl, found: tuple[str, str]) -> str:
    """Why a database with this default character set cannot take the engine's text ('' when it can)."""
    name, collation = found
    if name == CHARSET:
        return ""
    return (f"database {target.database} defaults to character set {name} (collation {collation}), which loses every "
            f"character outside it: ALTER DATABASE {target.database} CHARACTER SET utf8mb4 COLLATE "
            f"utf8mb4_unicode_ci, or move to a utf8mb4 database")


async def check_charset(target: DbUrl) -> None:
    """BadInput (before any run exists) when the target's default character set would lose characters."""
    async with connect(target) as conn:
        problem = charset_problem(target, await charset(conn))
    if problem:
        raise BadInput(f"{target}: {problem}")


async def may_create(conn: AsyncConnection) -> bool:
    """Whether the user holds CREATE on the database (granted globally or on it; roles not followed)."""
    grantee = ("CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
               "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')")  # 'user'@'host', as information_schema has it
    found = await conn.execute(text(
        f"SELECT 1 FROM information_schema.user_privileges WHERE grantee = {grantee} AND privilege_type = 'CREATE' "
        f"UNION ALL SELECT 1 FROM information_schema.schema_privileges WHERE grantee = {grantee} "
        f"AND privilege_type = 'CREATE' AND DATABASE() LIKE table_schema"))
    return found.first() is not None


async def run_holding(conn: AsyncConnection, tables: list[str]) -> str | None:
    """The run whose partial copy the database holds, if any."""
    if MOVES not in tables:
        return None
    return (await conn.execute(text(f"SELECT run_id FROM {MOVES} LIMIT 1"))).scalar()


async def describe(target: DbUrl) -> TargetInfo:
    """What the target is, as the Connection screen's test and the pre-flight checks ask it: the server, its
    character set, whether we may create tables, what it holds (BadInput when it does not let us in)."""
    async with connect(target) as conn:
        version, packet = (await conn.execute(text("SELECT VERSION(), @@max_allowed_packet"))).one()
        found = await charset(conn)
        create = await may_create(conn)
        tables = await app_tables(conn)
        holder = await run_holding(conn, tables)
    server, number = server_name(version).split(" ", 1)
    return TargetInfo(number, create, tables, target.database or "", holder, target.url.username or "",
                      server=server, charset=f"{found[0]} ({found[1]})", charset_problem=charset_problem(target, found),
                      max_packet=int(packet))


def checks(target: DbUrl, info: TargetInfo, resume_run: str | None) -> list[tuple[str, bool, str]]:
    """(check, passed, reason) of the target from what it said (`describe`): it answers, its character set, CREATE,
    empty of the engine's tables."""
    out = [("target", True, f"{target.masked()} answers: {info.server} {info.server_version}"),
           ("charset", not info.charset_problem,
            info.charset_problem or f"database {target.database} defaults to {info.charset}"),
           ("privileges", info.can_create, f"the user may create tables in database {target.database}"
            if info.can_create else info.create_problem)]
    if not info.engine_tables:
        out.append(("target empty", True, f"database {target.database} holds none of the engine's tables"))
    elif resume_run and info.run_id == resume_run:
        out.append(("target empty", True,
                    f"database {target.database} holds run {resume_run}'s partial copy: resuming"))
    else:
        out.append(("target empty", False, f"database {target.database}: {info.held_problem}"))
    return out


def tables_made(revision: str) -> list[str]:
    """Every table the move may create: the engine's, alembic_version, its bookkeeping."""
    return [*schema.ENGINE_TABLES, schema.VERSION_TABLE, *OWN_TABLES] if revision else list(OWN_TABLES)


async def load(conn: AsyncConnection, run_id: str) -> dict[str, Any] | None:
    """The bookkeeping row of `run_id` when its schema was made whole (its tables listed), else None."""
    row = None
    if MOVES in await app_tables(conn):
        row = (await conn.execute(text(f'SELECT revision, "tables" FROM {MOVES} WHERE run_id = :r'),
                                  {"r": run_id})).first()
    await conn.rollback()
    return {"revision": row[0], "tables": json.loads(row[1])} if row and row[1] is not None else None


async def create(conn: AsyncConnection, revision: str, run_id: str, fingerprint: dict[str, Any], emit: Emit,
                 step: str) -> list[str]:
    """The engine's schema at `revision` and the move's bookkeeping; what a killed earlier try left is dropped
    first. Returns the tables made."""
    await drop(conn, tables_made(revision))
    # The bookkeeping row first, naming the run with no tables yet: MySQL commits each CREATE, and a kill among them
    # leaves tables the checks of a resume of this run know as its own (and a fresh move's checks as someone's).
    await conn.exec_driver_sql(MOVE_DDL)
    await conn.execute(text(f"INSERT INTO {MOVES} (run_id, fingerprint, revision) VALUES (:run, :fp, :rev)"),
                       {"run": run_id, "fp": json.dumps(fingerprint), "rev": revision})
    await conn.commit()
    async with write_transaction(conn):
        await schema.upgrade(conn, revision, emit, step=step)
    await conn.exec_driver_sql(CHECKPOINT_DDL)
    made = [t for t in await app_tables(conn) if t in tables_made(revision)]
    # The tables last: with them the row says the schema is whole.
    await conn.execute(text(f'UPDATE {MOVES} SET "tables" = :tables WHERE run_id = :run'),
                       {"run": run_id, "tables": json.dumps(made)})
    await conn.commit()
    return made


async def drop(conn: AsyncConnection, tables: list[str]) -> list[str]:
    """Drop those of `tables` that exist (foreign keys not in the way); returns them."""
    present = [t for t in await app_tables(conn) if t in tables]
    if present:
        await conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        await conn.exec_driver_sql(f"DROP TABLE {', '.join(quote(t) for t in present)}")
        await conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
    await conn.commit()
    return present


async def set_auto_increment(conn: AsyncConnection, tables: list[str],
                             high_water: dict[str, int] | None = None) -> dict[str, int]:
    """Each AUTO_INCREMENT column's counter set past the highest id copied, or past `high_water` when that is
    higher (the source's highest id, its rows in quarantine too, or its AUTOINCREMENT mark); {table.column: the
    next value}."""
    rows = await conn.execute(text(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND extra LIKE '%auto_increment%' ORDER BY table_name"))
    out = {}
    for table, column in rows.all():
        if table not in tables:
            continue
        top = (await conn.execute(text(f"SELECT MAX({quote(column)}) FROM {quote(table)}"))).scalar()
        mark = (high_water or {}).get(table)
        if mark is not None and mark > (top or 0):
            top = mark
        out[f"{table}.{column}"] = (top or 0) + 1
        await conn.exec_driver_sql(f"ALTER TABLE {quote(table)} AUTO_INCREMENT = {out[f'{table}.{column}']}")
    await conn.commit()
    return out

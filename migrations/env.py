"""Alembic environment, async, for the wizard and for a plain `alembic upgrade`.

The wizard hands in a connection through `config.attributes["connection"]` (the
cookbook's pattern) and runs the whole upgrade in the transaction it opened;
the alembic CLI gets a URL and an async engine of its own.
"""

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
                  "mysql": "mysql+aiomysql", "mariadb": "mariadb+aiomysql"}


def _url() -> str:
    raw = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not raw:
        raise SystemExit("no database URL: pass -x url=... or set DATABASE_URL")
    url = make_url(raw)
    backend = url.drivername.split("+")[0]
    return url.set(drivername=_ASYNC_DRIVERS.get(backend, url.drivername)).render_as_string(hide_password=False)


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=None,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode recreates tables
        compare_type=True,
        # The wizard's hook for per-revision progress; absent under the alembic CLI.
        on_version_apply=config.attributes.get("on_version_apply"),
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # alembic_version goes with the tables: into the session's schema now (public, the search_path the URL
    # names, or pg_temp where the wizard builds a revision's shape to compare with).
    schema = connection.exec_driver_sql("SELECT current_schema()").scalar() \
        if connection.dialect.name == "postgresql" else None
    _configure(connection=connection, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_async())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""Alembic environment, async, for the wizard and for a plain `alembic upgrade`.

The wizard hands in a connection through `config.attributes["connection"]` (the
cookbook's pattern) and runs the whole upgrade in the transaction it opened;
the alembic CLI gets a URL and an async engine of its own.
"""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection, make_url

from wizard.db import engine_for
from wizard.urls import parse_url

config = context.config

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
                  "mysql": "mysql+aiomysql", "mariadb": "mariadb+aiomysql"}


def _raw_url() -> str:
    raw = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not raw:
        raise SystemExit("no database URL: pass -x url=... or set DATABASE_URL")
    return raw


def _url() -> str:
    url = make_url(_raw_url())
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
    # Offline, a MySQL URL cannot say whether its server is MariaDB (0001's collation differs): the caller can.
    mariadb = {"is_mariadb": True} if config.attributes.get("mariadb") else {}
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named", **mariadb})
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
    # The wizard's engine: libpq's TLS parameters in the URL (sslmode, sslrootcert...) reach asyncpg.
    engine = engine_for(parse_url(_raw_url()))
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

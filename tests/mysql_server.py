"""A real MySQL or MariaDB for the tests: found, or started from the installed package.

WIZARD_TEST_MYSQL_URL, else a server on 127.0.0.1:3306 as root with no password (not looked
for when WIZARD_TEST_NO_LOCAL=1, to exercise the fallback), else a throwaway `mariadbd` in a
temporary data directory made by mariadb-install-db, listening on a free local port, else
None with the reason (conftest skips, or fails under CI=true).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import pymysql
from sqlalchemy.engine import make_url

LOCAL_SERVER = "mysql://root@127.0.0.1:3306/mysql"
START_WAIT = 60  # seconds for a fresh mariadbd to take connections on a busy 2-core machine


def answers(url: str) -> bool:
    try:
        admin(url, "SELECT 1")
    except pymysql.err.MySQLError:
        return False
    return True


def admin(url: str, sql: str) -> None:
    """Run one statement as the URL's user, outside any test database (pymysql: aiomysql's own base)."""
    u = make_url(url)
    conn = pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", connect_timeout=3, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_mariadbd() -> tuple[str | None, str, Callable[[], None]]:
    mariadbd = shutil.which("mariadbd") or shutil.which("mysqld", path="/usr/sbin:/usr/local/sbin")
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not mariadbd or not install_db:
        return None, "no server on 127.0.0.1:3306 and mariadbd is not installed (apt-get install mariadb-server)", \
            lambda: None
    # Outside pytest's basetemp, as for PostgreSQL: a pytest starting meanwhile would reset its modes.
    folder = Path(tempfile.mkdtemp(prefix="wizard-test-mysql-"))
    data, port = folder / "data", _free_port()
    # As root mariadbd runs as the user named; root itself is allowed when named.
    user = ["--user=root"] if os.geteuid() == 0 else []
    made = subprocess.run([install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                           "--skip-test-db", *user], capture_output=True, text=True)
    if made.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        last = (made.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"no server on 127.0.0.1:3306 and mariadb-install-db failed: {last}", lambda: None
    log = open(folder / "server.log", "wb")
    server = subprocess.Popen(
        [mariadbd, "--no-defaults", f"--datadir={data}", f"--socket={folder / 'mysqld.sock'}",
         f"--pid-file={folder / 'mysqld.pid'}", "--bind-address=127.0.0.1", f"--port={port}", *user],
        stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)

    url = f"mysql://root@127.0.0.1:{port}/mysql"
    deadline = time.monotonic() + START_WAIT
    while not answers(url):
        if server.poll() is not None or time.monotonic() > deadline:
            stop_log = (folder / "server.log").read_text(errors="replace").strip().splitlines()
            stop()
            why = stop_log[-1] if stop_log else "no output"
            return None, f"no server on 127.0.0.1:3306 and a throwaway mariadbd did not start: {why}", lambda: None
        time.sleep(0.2)
    return url, "mariadbd", stop


def find_server() -> tuple[str | None, str, Callable[[], None]]:
    """(URL of a server the tests may create databases on, where it came from, what stops one started here)."""
    env_url = os.environ.get("WIZARD_TEST_MYSQL_URL")
    if env_url:
        return env_url, "WIZARD_TEST_MYSQL_URL", lambda: None
    if os.environ.get("WIZARD_TEST_NO_LOCAL") != "1" and answers(LOCAL_SERVER):
        return LOCAL_SERVER, "127.0.0.1:3306", lambda: None
    return _start_mariadbd()

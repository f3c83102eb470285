"""A real PgBouncer (Debian's `pgbouncer` package; .ci/run installs it) in front of the test server.

`pgbouncer` is a session fixture: transaction pooling, as managed PostgreSQL services run it, on
127.0.0.1:6451 (or the next free port). `start_pgbouncer` starts one more of any pool mode for a test of
its own.
Each is started from a temporary config and stopped after; with no pgbouncer installed the tests
that need it are skipped with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

# Where each looks for a free port first (this project's range on the shared test machine ends at 6469).
TRANSACTION_PORT = 6451
STATEMENT_PORT = 6460
LAST_PORT = 6469
READY_WITHIN = 30  # seconds for pgbouncer to listen


def _binary() -> str:
    found = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.path.exists(p)), None)
    if found is None:
        reason = "pgbouncer is not installed (apt-get install pgbouncer)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PgBouncer is required under CI: {reason}")
        pytest.skip(reason)
    return found


def through(url: str, port: int) -> str:
    """`url` (a database on the test server) reached through the pgbouncer listening on `port`."""
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def _free_port(first: int) -> int:
    for port in range(first, LAST_PORT + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port for pgbouncer in {first}-{LAST_PORT}")


@contextlib.contextmanager
def start_pgbouncer(server: str, first_port: int, mode: str) -> Iterator[int]:
    """A pgbouncer on 127.0.0.1 (`first_port` or the next free one; it yields the port) in pool mode `mode` in
    front of `server`; every database name passes through to the server's database of that name, as the
    server's user (auth_type any)."""
    binary = _binary()
    port = _free_port(first_port)
    s = make_url(server)
    folder = Path(tempfile.mkdtemp(prefix="wizard-pgbouncer-"))
    folder.chmod(0o755)  # run as `nobody` under root: it reads its config after dropping root
    host = s.host or s.query.get("host") or "127.0.0.1"  # pgserver: a socket folder
    login = f"host={host} port={s.port or 5432} user={s.username or 'postgres'}"
    if s.password:
        login += f" password={s.password}"
    config = folder / "pgbouncer.ini"
    config.write_text(f"""[databases]
* = {login}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = {mode}
default_pool_size = 10
""")
    config.chmod(0o644)
    log = open(folder / "pgbouncer.log", "wb")
    command = [binary, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(config)]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pgbouncer exited {proc.returncode}: {(folder / 'pgbouncer.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"pgbouncer did not listen on {port} in {READY_WITHIN} s")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(pg_server: str) -> Iterator[int]:
    """The port of a PgBouncer in transaction pooling mode in front of the test server."""
    with start_pgbouncer(pg_server, TRANSACTION_PORT, "transaction") as port:
        yield port

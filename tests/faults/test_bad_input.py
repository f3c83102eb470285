"""Bad input through the real `wizard`: the exit code of README's table, one line that says what is wrong and
what to do, no traceback, and nothing changed.

Every case runs the `wizard` script in a process of its own, in a folder holding a real engine database, against
a real PostgreSQL. Before and after, the test takes the sha256 of every file in that folder (the source, the
.env, and anything the wizard may have made: a .wizard state directory, a backup, a temporary file) and the
tables and rows of the target, and compares. A bad input (exit 2) must leave everything as it was, not even a
state directory; a refusal after a move's pre-flight checks (exit 3) may leave only what README documents, the
refused run's journal. The one line each printed is what README's "What it survives" table shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from fault_support import WIZARD, first_line, rows_lost
from move_helpers import checksums, fetch, sha256, tables_in
from pgbouncer import STATEMENT_PORT, start_pgbouncer, through
from tmux_pane import needs_tmux
from engine_data import build_pg_1_0_0
from pg_clusters import TlsServer, private_cluster, steady_port, tls_cluster
from wizard.envfile import value_in
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # a wizard process per case, most on a server: `pytest -m slow` runs them

NOBODY_UID = 65534
NOTHING = "nothing (source sha256, target tables, .env bytes checked)"
ONLY_THE_JOURNAL = "nothing but the refused run's journal (source sha256, target tables, .env bytes checked)"
ENGINE = "sqlite:///engine.db"  # every command runs in the folder that holds it: paths in messages stay short
HEAD = "known are 0001, 0002, 0003, 0004 and head"


# --- running the wizard, and what it left behind ---


def run_all(folder: Path, *commands: list[str], timeout: float = 120) -> list[tuple[subprocess.CompletedProcess,
                                                                                    float]]:
    """Each command as `wizard ...` in `folder` (one that starts with `unshare`, `env` or `setpriv` as it is), all
    at once, stdin not a terminal: (result, seconds since they started) each."""
    started = time.monotonic()
    procs = [subprocess.Popen(c if c[0] in ("unshare", "env", "setpriv") else [str(WIZARD), *c], cwd=folder,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    out = []
    try:
        for c, p in zip(commands, procs):
            try:
                stdout, stderr = p.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                pytest.fail(f"`wizard {' '.join(c)}` did not end within {timeout} s")
            out.append((subprocess.CompletedProcess(c, p.returncode, stdout, stderr), time.monotonic() - started))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return out


def files(folder: Path) -> dict[str, str]:
    """Every path under `folder`: a file's sha256, or what else it is."""
    found = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        found[rel] = "symlink" if p.is_symlink() else sha256(p) if p.is_file() else "dir" if p.is_dir() else "other"
    return found


@dataclass
class State:
    files: dict[str, str]
    target: dict[str, tuple[int, str]] | None

    @classmethod
    def of(cls, folder: Path, target: str | None) -> "State":
        return cls(files(folder), checksums(target) if target else None)


def error_line(result: subprocess.CompletedProcess, code: int, alone: bool = True) -> str:
    """The one `error: ...` line, after checking the exit code and that nothing else went wrong.

    `alone`: stderr holds that line only. A move refused by its pre-flight checks (exit 3) has shown the
    checks before it; then the line must still be the only error line, and the last.
    """
    shown = f"exit {result.returncode}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert result.returncode == code, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), shown
    assert sum(line.startswith("error") for line in lines) == 1, shown
    if alone:
        assert len(lines) == 1, shown
    else:
        assert lines[0] == "> pre-flight checks", shown
    assert first_line(result.stderr) == lines[-1]
    return lines[-1].removeprefix("error: ")


def matches(said: str, expected: str | re.Pattern) -> bool:
    return bool(expected.fullmatch(said)) if isinstance(expected, re.Pattern) else said == expected


@dataclass
class Work:
    folder: Path  # the working directory: engine.db and the case's own files
    target: str  # an empty PostgreSQL database of this test (sync URL)
    server: str

    @property
    def state_dir(self) -> Path:
        return self.folder / ".wizard"

    def expect(self, commands: list[tuple[list[str], str | re.Pattern]], code: int, *, watch: str | None = None,
               alone: bool = True, bound: float | None = None) -> str:
        """Run `commands` at once; each must exit `code` with its message, and change nothing in the folder or
        in the `watch` database (default: the test's target). The first command's line, for README."""
        watch = watch if watch is not None else self.target
        before = State.of(self.folder, watch)
        results = run_all(self.folder, *(c for c, _ in commands))
        said = []
        for (command, expected), (result, seconds) in zip(commands, results):
            line = error_line(result, code, alone)
            assert matches(line, expected), f"`wizard {' '.join(command)}` said:\n{line}\nexpected:\n{expected}"
            if bound is not None:
                assert seconds < bound, f"`wizard {' '.join(command)}` took {seconds:.1f} s"
            said.append(line)
        after = State.of(self.folder, watch)
        if code == 2:
            assert after == before  # not even a state directory: no run began
        else:
            assert after.target == before.target
            assert {k: v for k, v in after.files.items() if not k.startswith(".wizard")} == {
                k: v for k, v in before.files.items() if not k.startswith(".wizard")}
        return said[0]


@pytest.fixture
def work(tmp_path: Path, engine_db: Path, pg_url: str, pg_server: str) -> Work:
    assert engine_db.parent == tmp_path
    return Work(tmp_path, pg_url, pg_server)


@pytest.fixture
def as_nobody(work: Work, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Work, list[str]]]:
    """For the modes root ignores: a copy of `work` in a folder `nobody` can reach (pytest's are root's alone), and
    the start of a command that runs `wizard` there as nobody. Its files stay root's; HOME is that folder (asyncpg
    looks for a client key in HOME, and root's may not be read)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("running the wizard as another user needs root and setpriv")
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(WIZARD)]
    if subprocess.run([*command, "--version"], capture_output=True, timeout=60).returncode != 0:
        # .ci/run opens its virtual environment's folder to others; a checkout under a private home is not
        pytest.skip(f"nobody cannot run {WIZARD}: a folder on its path is not open to other users")
    folder = Path(tempfile.mkdtemp(prefix="wizard-nobody-"))
    try:
        folder.chmod(0o755)
        shutil.copy(work.folder / "engine.db", folder / "engine.db")
        monkeypatch.setenv("HOME", str(folder))
        yield Work(folder, work.target, work.server), command
    finally:
        shutil.rmtree(folder)


def only_the_journal(work: Work) -> None:
    """What a refused move leaves (README: "a refused move leaves nothing behind but its journal")."""
    (run,) = list((work.state_dir / "runs").iterdir())
    made = {k for k in files(work.folder) if k.startswith(".wizard")}
    assert made == {".wizard", ".wizard/lock", ".wizard/runs", f".wizard/runs/{run.name}",
                    f".wizard/runs/{run.name}/journal.jsonl"}
    records = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "run_finished" and records[-1]["state"] == "failed"
    assert not any(r["kind"] == "step_finished" and r["step"] == "schema" for r in records)


@contextlib.contextmanager
def named_database(server: str, name: str) -> Iterator[str]:
    """A database with a fixed name (it shows in the message README records), made empty and dropped after."""
    fetch(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    fetch(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        fetch(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the source: files that are not the engine's database ---


def corrupt_a_page(path: Path) -> int:
    """Overwrite the header of a cell in the middle of a leaf page of the executions table, in place."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'executions'").fetchone()[0]
    conn.close()
    data = path.read_bytes()

    def leaves(n: int) -> list[int]:
        page = data[(n - 1) * page_size:n * page_size]
        head = 100 if n == 1 else 0
        if page[head] == 0x0D:  # a table b-tree leaf
            return [n]
        assert page[head] == 0x05, f"page {n} is not a table b-tree page"
        cells = struct.unpack(">H", page[head + 3:head + 5])[0]
        children = [struct.unpack(">I", page[o:o + 4])[0] for o in
                    (struct.unpack(">H", page[head + 12 + 2 * i:head + 14 + 2 * i])[0] for i in range(cells))]
        return [leaf for child in children + [struct.unpack(">I", page[head + 8:head + 12])[0]] for leaf in
                leaves(child)]

    all_leaves = leaves(root)
    assert len(all_leaves) > 4, "the sample's executions fit in too few pages to pick one in the middle"
    leaf = all_leaves[len(all_leaves) // 2]
    page = data[(leaf - 1) * page_size:leaf * page_size]
    cells = struct.unpack(">H", page[3:5])[0]
    offsets = sorted(struct.unpack(">H", page[8 + 2 * i:10 + 2 * i])[0] for i in range(cells))
    with open(path, "r+b") as f:
        f.seek((leaf - 1) * page_size + offsets[len(offsets) // 2])
        f.write(b"\xff" * 8)
    return leaf


def make_sqlite(path: Path, *statements: str) -> Path:
    conn = sqlite3.connect(path)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("name, made, says", [
    ("missing.db", "a source file that does not exist", "{name} does not exist: check the path in the URL "
                                                         "(sqlite:////absolute/path.db)"),
    ("adir", "a source path that is a directory", "{name} is not a file: the URL must name the engine's SQLite "
                                                  "database file"),
    ("notes.db", "a source file that is not SQLite (text)", "{name} is not a SQLite database: point the URL at the "
                                                            "engine's .db file"),
], ids=["missing", "directory", "not-sqlite"])
def test_a_source_that_is_no_sqlite_file(work: Work, survived, name: str, made: str, says: str) -> None:
    if name == "adir":
        (work.folder / name).mkdir()
    elif name == "notes.db":
        (work.folder / name).write_text("these are notes, not a database\n")
    url = f"sqlite:///{name}"
    said = work.expect([
        (["migrate", "--source", url, "--target", work.target, "--yes"], says.format(name=name)),
        (["plan", "--source", url], says.format(name=name)),
        (["backup", "--source", url], says.format(name=work.folder / name)),  # a run's URLs are absolute
        (["upgrade", "--db", url, "--yes"], says.format(name=name)),
        (["verify", "--source", url, "--target", work.target], says.format(name=name)),
    ], 2)
    survived(input=f"{made} (migrate, plan, backup, upgrade, verify)", exit_code=2, message=said, changed=NOTHING)


@pytest.mark.parametrize("name", ["secret.db", "root/engine.db"], ids=["file-mode", "folder-mode"])
def test_a_source_this_user_may_not_read(as_nobody: tuple[Work, list[str]], survived, name: str) -> None:
    work, nobody = as_nobody
    (work.folder / "root").mkdir(mode=0o700)  # root's, as the files are
    shutil.copy(work.folder / "engine.db", work.folder / name)
    (work.folder / name).chmod(0o600 if name == "secret.db" else 0o644)
    says = "{} cannot be read by this user (permission denied): run the wizard as the engine's user, or let this " \
           "one read the file and enter its folders"
    url = f"sqlite:///{name}"
    said = work.expect([
        ([*nobody, "migrate", "--source", url, "--target", work.target, "--yes"], says.format(name)),
        ([*nobody, "plan", "--source", url], says.format(name)),
        ([*nobody, "backup", "--source", url], says.format(work.folder / name)),
        ([*nobody, "upgrade", "--db", url, "--yes"], says.format(name)),
        ([*nobody, "verify", "--source", url, "--target", work.target], says.format(name)),
    ], 2)
    survived(input=f"a source this user may not read ({'its mode' if name == 'secret.db' else 'its folder'}'s)",
             exit_code=2, message=said, changed=NOTHING)


def test_a_source_named_in_another_encoding(work: Work, survived) -> None:
    name = os.fsdecode(b"caf\xe9.db")  # latin-1: Python keeps the byte as a surrogate, which no driver takes
    shutil.copy(work.folder / "engine.db", work.folder / name)
    says = "the {} URL holds bytes that are not UTF-8 (a file or database named in another encoding): rename it, " \
           "or link the file under a UTF-8 name, and use that"
    url = f"sqlite:///{name}"
    said = work.expect([
        (["migrate", "--source", url, "--target", work.target, "--yes"], says.format("source")),
        (["plan", "--source", url], says.format("source")),
        (["backup", "--source", url], says.format("source")),
        (["upgrade", "--db", url, "--yes"], says.format("database")),
        (["verify", "--source", url, "--target", work.target], says.format("source")),
    ], 2)
    survived(input="a source file named in latin-1, not UTF-8", exit_code=2, message=said, changed=NOTHING)


def test_a_database_this_user_may_not_write_is_not_upgraded(as_nobody: tuple[Work, list[str]], survived) -> None:
    """Said before the question and the backup (the upgrade failed after both, leaving a run): the file read-only
    for this user, its folder (SQLite writes its journal there), or a read-only disk."""
    work, nobody = as_nobody
    for folder in ("data", "ro"):
        (work.folder / folder).mkdir()
        shutil.copy(work.folder / "engine.db", work.folder / folder / "engine.db")
    os.chown(work.folder / "data" / "engine.db", NOBODY_UID, -1)  # the file is nobody's, its folder root's
    (work.folder / "state").mkdir()
    os.chown(work.folder / "state", NOBODY_UID, -1)
    says = "{} cannot be written by this user ({} is read-only here): run the wizard as the engine's user, or make it " \
           "writable"
    in_folder = "its folder, where SQLite writes its journal,"
    said = work.expect([
        ([*nobody, "upgrade", "--db", ENGINE, "--yes", "--state-dir", "state"],
         says.format("engine.db", "the file")),
        ([*nobody, "upgrade", "--db", "sqlite:///data/engine.db", "--yes", "--state-dir", "state"],
         says.format("data/engine.db", in_folder)),
        ([*read_only(work, "ro"), "upgrade", "--db", "sqlite:///ro/engine.db", "--yes", "--state-dir", "state"],
         says.format("ro/engine.db", "the file")),
    ], 2)
    survived(input="an upgrade of a SQLite file this user may not write (the file, its folder, a read-only disk)",
             exit_code=2, message=said, changed=NOTHING)


def test_a_corrupted_page_fails_the_pre_flight_quick_check(work: Work, survived) -> None:
    source = work.folder / "engine.db"
    leaf = corrupt_a_page(source)
    said = work.expect([(["migrate", "--source", ENGINE, "--target", work.target, "--yes"], re.compile(
        rf"pre-flight check 'source' failed: PRAGMA quick_check says: On tree page {leaf} cell \d+: [^;]+(; [^;]+)*: "
        r"restore it from a backup first"))], 3, alone=False)
    only_the_journal(work)  # the backup taken alongside the checks was discarded
    survived(input="a source with a corrupted b-tree page (8 bytes overwritten in a leaf of executions)", exit_code=3,
             message=said, changed=ONLY_THE_JOURNAL)


@pytest.mark.parametrize("made", ["a 0-byte file", "a SQLite file with no tables"])
def test_an_empty_database(work: Work, survived, made: str) -> None:
    empty = work.folder / "empty.db"
    if made == "a 0-byte file":
        empty.write_bytes(b"")
    else:
        make_sqlite(empty, "PRAGMA user_version = 7")  # a valid header and schema page, no table
        assert empty.stat().st_size > 0
    url = "sqlite:///empty.db"
    said = work.expect([(["migrate", "--source", url, "--target", work.target, "--yes"],
                         "pre-flight check 'revision' failed: the source holds none of the engine's tables (it holds "
                         "no tables): point --source at the engine's database file")], 3, alone=False)
    only_the_journal(work)
    shutil.rmtree(work.state_dir)
    work.expect([(["upgrade", "--db", url, "--yes"],
                  "sqlite:///empty.db holds none of the engine's tables: nothing to upgrade (is it the right "
                  "database?)")], 3)
    assert not work.state_dir.exists()  # refused before its backup: no run
    survived(input=f"an empty source database: {made}", exit_code=3, message=said, changed=ONLY_THE_JOURNAL)


def test_a_database_of_another_app(work: Work, survived) -> None:
    make_sqlite(work.folder / "crm.db", "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)",
                "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), "
                "amount NUMERIC(10,2), issued DATETIME)",
                "INSERT INTO customers VALUES (1, 'Ada')", "INSERT INTO invoices VALUES (1, 1, 12.5, '2024-01-02')")
    url = "sqlite:///crm.db"
    # `wizard plan` says what it is, and shows how its tables would be carried (the reflected DDL, the type map)...
    before = State.of(work.folder, work.target)
    ((planned, _),) = run_all(work.folder, ["plan", "--source", url])
    assert planned.returncode == 0, planned.stderr
    assert "schema: empty: none of the engine's tables" in planned.stdout
    assert "note none of the engine's tables: nothing to upgrade" in planned.stdout
    carried = re.sub(r"\s+", " ", planned.stdout)
    assert "issued DATETIME timestamp without time zone" in carried and "customers id INTEGER bigint" in carried
    assert State.of(work.folder, work.target) == before
    # ...a move refuses it and offers the reflected copy, which then carries its tables as they are.
    said = work.expect([(["migrate", "--source", url, "--target", work.target, "--yes"],
                         "pre-flight check 'revision' failed: the source holds none of the engine's tables (its tables "
                         "are customers, invoices): point --source at the engine's database file, or pass "
                         "--reflected to copy its tables as they are (no engine schema)")], 3, alone=False)
    only_the_journal(work)
    ((copied, _),) = run_all(work.folder, ["migrate", "--source", url, "--target", work.target, "--yes", "--reflected"])
    assert copied.returncode == 0, copied.stderr
    assert tables_in(work.target) == ["customers", "invoices"]
    survived(input="a database of another app (no engine tables; `plan` shows their reflected DDL)", exit_code=3,
             message=said, changed=ONLY_THE_JOURNAL + "; then `--reflected` copied its 2 tables, verified")


# --- URLs ---


@pytest.mark.parametrize("which, url, says", [
    ("source", "engine.db", "cannot read the {what} URL '...engine.db': use sqlite:///path/to/file.db, "
                            "postgresql://user@host:5432/db or mysql://user@host:3306/db"),
    ("target", "postgresql://app@db:port/engine", "cannot read the {what} URL '...db:port/engine': use "
                                                  "sqlite:///path/to/file.db, postgresql://user@host:5432/db or "
                                                  "mysql://user@host:3306/db"),
    ("source", "mssql://sa@localhost/engine", "the {what} URL uses 'mssql', which the wizard does not move: use "
                                              "sqlite:///, postgresql:// or mysql://"),
    ("target", "oracle://app@db:1521/engine", "the {what} URL uses 'oracle', which the wizard does not move: use "
                                              "sqlite:///, postgresql:// or mysql://"),
    ("source", "postgresql://app@127.0.0.1:99999/engine", "the {what} URL's port 99999 is not a port: use one from 1 "
                                                         "to 65535, or leave it out for the default"),
    ("target", "mysql://app@127.0.0.1:0/engine", "the {what} URL's port 0 is not a port: use one from 1 to 65535, or "
                                                 "leave it out for the default"),
    ("target", "postgresql://app:p@ss@127.0.0.1/engine", "the {what} URL holds more than one @ before its host: "
                                                          "write an @ in the user name or password as %40"),
    ("source", "postgresql://127.0.0.1:x/engine", "cannot read the {what} URL '...127.0.0.1:x/engine': use "
                                                  "sqlite:///path/to/file.db, postgresql://user@host:5432/db or "
                                                  "mysql://user@host:3306/db"),
    ("source", "mysql://app@127.0.0.1/engine?passwd=x", "the {what} URL's query holds passwd, which the MySQL "
                                                       "drivers do not take: remove it, or use one of charset, "
                                                       "connect_timeout, local_infile, password, program_name, "
                                                       "read_default_file, read_default_group, server_public_key, "
                                                       "ssl_ca, ssl_capath, ssl_cert, ssl_check_hostname, ssl_cipher, "
                                                       "ssl_key, unix_socket"),
], ids=["source-no-scheme", "target-bad-port", "source-mssql", "target-oracle", "source-port-99999",
        "target-port-0", "target-password-with-at", "source-bad-port-no-user", "source-mysql-query-key"])
def test_a_url_the_wizard_cannot_read(work: Work, survived, which: str, url: str, says: str) -> None:
    if which == "source":
        commands = [(["migrate", "--source", url, "--target", work.target, "--yes"], says.format(what="source")),
                    (["plan", "--source", url], says.format(what="source")),
                    (["backup", "--source", url], says.format(what="source")),
                    (["upgrade", "--db", url, "--yes"], says.format(what="database")),
                    (["verify", "--source", url, "--target", work.target], says.format(what="source"))]
    else:
        commands = [(["migrate", "--source", ENGINE, "--target", url, "--yes"], says.format(what="target")),
                    (["plan", "--source", ENGINE, "--target", url], says.format(what="target")),
                    (["verify", "--source", ENGINE, "--target", url], says.format(what="target"))]
    said = work.expect(commands, 2)
    kind = "an unknown driver" if "uses '" in says else "a port out of range" if "not a port" in says else \
        "a password's @ not written %40" if "%40" in says else \
        "a query key no MySQL driver takes" if "query holds" in says else "a URL that does not parse"
    survived(input=f"{kind}: {which} `{url}`", exit_code=2, message=said, changed=NOTHING)


# --- the target's server ---


def server_commands(url: str, says: str | re.Pattern) -> list[tuple[list[str], str | re.Pattern]]:
    """The same PostgreSQL URL where each command takes one: a move's target, plan, backup, upgrade, verify."""
    return [(["migrate", "--source", ENGINE, "--target", url, "--yes"], says),
            (["plan", "--source", url], says),
            (["backup", "--source", url], says),
            (["upgrade", "--db", url, "--yes"], says),
            (["verify", "--source", ENGINE, "--target", url], says)]


def test_a_closed_port(work: Work, survived) -> None:
    url = "postgresql://postgres@127.0.0.1:1/engine"
    said = work.expect(server_commands(url, f"{url}: no server answers there: check host and port, and that "
                                            f"PostgreSQL is running"), 2, bound=30)
    survived(input="a server that is not there (a closed local port)", exit_code=2, message=said, changed=NOTHING)


@contextlib.contextmanager
def silent_server(port: int = 5432) -> Iterator[tuple[str, int]]:
    """A host that takes the TCP connection and never says a word: a firewall that drops packets, as the client
    sees it (no real blackhole address answers here: the sandbox's network accepts and resets). 127.0.0.2:`port`
    when it is free, so the message stays the same from run to run."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.2", port))
    except OSError:
        sock.close()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(sock.accept()[0])
            except (socket.timeout, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()
    finally:
        done.set()
        thread.join()
        for c in held:
            c.close()
        sock.close()


@pytest.mark.slow  # over 12 s: run by `pytest -m slow`
def test_a_host_that_does_not_answer_times_out_in_seconds(work: Work, survived) -> None:
    with silent_server() as (host, port):
        url = f"postgresql://postgres@{host}:{port}/engine"
        says = f"{url}: the server did not answer in 10 s: check host, port and firewall"
        # All at once: each waits its 10 s. The bound is the subprocess's sanity, not a performance claim.
        said = work.expect([c for c in server_commands(url, says) if c[0][0] != "backup"], 2, bound=30)
    survived(input="a host that does not answer (accepts TCP, never speaks)", exit_code=2, message=said,
             changed=NOTHING)


def test_a_database_that_does_not_exist(work: Work, survived) -> None:
    url = make_url(work.server).set(drivername="postgresql", database="wizard_no_such_db").render_as_string(False)
    says = f"{parse_url(url).masked()}: database 'wizard_no_such_db' does not exist: create it (createdb " \
           f"wizard_no_such_db) or fix the URL"
    said = work.expect(server_commands(url, says), 2)
    survived(input="a database that does not exist", exit_code=2, message=said, changed=NOTHING)


def test_a_user_that_does_not_exist(work: Work, survived) -> None:
    url = make_url(work.server).set(drivername="postgresql", username="wizard_no_such_role",
                                    database="postgres").render_as_string(False)
    says = f"{parse_url(url).masked()}: role \"wizard_no_such_role\" does not exist: check the user name in the URL"
    said = work.expect(server_commands(url, says)[:2], 2)
    survived(input="a user that does not exist", exit_code=2, message=said, changed=NOTHING)


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A throwaway server that checks passwords: the suite's usual server trusts every local connection
    (pg_hba `trust` for local and 127.0.0.1), so a wrong password cannot be provoked there.

    A cluster of its own, one role that must log in with scram-sha-256, reached through its socket: the socket
    folder is in the URL and so in the message README records: a fixed folder when it is free, else a fresh one.
    """
    folder = Path("/tmp/wizard-faults-pw")
    try:
        folder.mkdir()
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="wizard-faults-pw-"))
    hba = "local all wizard_pw scram-sha-256\nhost all wizard_pw all scram-sha-256\nlocal all all trust\n"
    # Its socket only, on the default port (no TCP, so no clash with a server on 5432): a URL that never changes.
    with private_cluster("wizard-faults-pw-", settings={"listen_addresses": "''"}, hba=hba, folder=folder,
                         port=5432) as server:
        fetch(f"postgresql://postgres@/postgres?host={folder}", "CREATE ROLE wizard_pw LOGIN PASSWORD 'right-password'")
        fetch(f"postgresql://postgres@/postgres?host={folder}", "CREATE DATABASE pwdb OWNER wizard_pw")
        yield f"postgresql://wizard_pw@/pwdb?host={server.folder}"


def test_a_wrong_password(work: Work, survived, password_server: str) -> None:
    right = make_url(password_server).set(password="right-password").render_as_string(hide_password=False)
    ((ok, _),) = run_all(work.folder, ["plan", "--source", right])  # the server checks: the right one gets in
    assert ok.returncode == 0 and "empty: none of the engine's tables" in ok.stdout, ok.stderr
    wrong = make_url(password_server).set(password="wrong-password").render_as_string(hide_password=False)
    says = f"{parse_url(wrong).masked()}: the password was refused: check the user and password in the URL"
    assert "wrong-password" not in says
    said = work.expect(server_commands(wrong, says), 2)
    survived(input="a wrong password (a scram-sha-256 server of its own)", exit_code=2, message=said, changed=NOTHING)


# --- TLS (a server of its own that takes TLS connections only) ---


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    with tls_cluster(port=steady_port(6431)) as server:
        fetch(server.url(sslmode="require"), "CREATE DATABASE tlsdb")
        yield server


def tls_case(work: Work, tls_server: TlsServer, url: str, says: str, code: int = 2) -> str:
    """The five commands that take a server, through `url`; the TLS server's database watched for changes."""
    return work.expect(server_commands(url, says), code, watch=tls_server.url("tlsdb", sslmode="require"))


def test_tls_required_but_not_asked_for(work: Work, survived, tls_server: TlsServer) -> None:
    url = tls_server.url("tlsdb", sslmode="disable")
    said = tls_case(work, tls_server, url, f"{url}: the server accepts TLS connections only (libpq: no pg_hba.conf "
                    f"entry ... no encryption), and sslmode=disable did not ask for one: add ?sslmode=require to the "
                    f"URL, or verify-full with sslrootcert=<the CA file>")
    survived(input="sslmode=disable to a server that takes TLS connections only (hostssl in pg_hba.conf)",
             exit_code=2, message=said, changed=NOTHING)


def test_a_certificate_signed_by_another_ca(work: Work, survived, tls_server: TlsServer) -> None:
    (work.folder / "other-ca.crt").write_bytes(tls_server.other_ca.read_bytes())  # a path that reads the same
    url = tls_server.url("tlsdb", sslmode="verify-full", sslrootcert="other-ca.crt")
    # OpenSSL's reason: the server sends its CA along (it has one, for client certificates), or not.
    said = tls_case(work, tls_server, url, re.compile(
        re.escape(f"{url}: the server's certificate does not verify against the CA in other-ca.crt (") +
        r"(self-signed certificate in certificate chain|unable to get local issuer certificate)" +
        re.escape("): give the CA that signed it in sslrootcert=")))
    survived(input="sslmode=verify-full with sslrootcert= a CA that did not sign the server's certificate",
             exit_code=2, message=said, changed=NOTHING)


def test_a_certificate_for_another_host_name(work: Work, survived, tls_server: TlsServer) -> None:
    (work.folder / "ca.crt").write_bytes(tls_server.ca.read_bytes())
    url = tls_server.url("tlsdb", sslmode="verify-full", sslrootcert="ca.crt").replace("127.0.0.1", "localhost")
    said = tls_case(work, tls_server, url, f"{url}: the server's certificate is not for host 'localhost' "
                    f"(sslmode=verify-full checks the name): connect by the name it was issued for, or use "
                    f"sslmode=verify-ca")
    survived(input="sslmode=verify-full to a host name the server's certificate was not issued for (localhost, "
                   "certificate for 127.0.0.1)", exit_code=2, message=said, changed=NOTHING)


def test_an_sslmode_libpq_does_not_know(work: Work, survived) -> None:
    url = make_url(work.target).update_query_dict({"sslmode": "on"}).render_as_string(False)
    says = re.compile(r"the (source|database|target) URL says sslmode=on: use one of disable, allow, prefer, "
                      r"require, verify-ca, verify-full")
    said = work.expect(server_commands(url, says), 2)
    survived(input="sslmode=on (not one of libpq's six modes)", exit_code=2, message=said, changed=NOTHING)


@pytest.mark.parametrize("variables, query", [({"PGSSLROOTCERT": "/nonexistent/ca.crt"}, {"sslmode": "verify-full"}),
                                              ({"PGSSLCERT": "/etc", "PGSSLKEY": "/etc"}, {})],
                         ids=["missing-ca", "folders"])
def test_a_tls_file_of_the_environments_that_is_no_file(work: Work, survived, variables: dict[str, str],
                                                        query: dict[str, str]) -> None:
    """PGSSL* variables name the files the URL leaves out: one that is not a file is said as the URL's own are
    (it was "no server answers there"). Set for the wizard alone: the test's own connections read them too."""
    url = make_url(work.target).update_query_dict(query).render_as_string(False)
    named = ", ".join(f"{k}={v}" for k, v in variables.items())
    says = f"{parse_url(url).masked()}: no such file: {named}: give the path of the file, or leave the parameter out"
    said = work.expect([(["env", *(f"{k}={v}" for k, v in variables.items()), str(WIZARD), *command], says)
                        for command, _ in server_commands(url, says)], 2)
    survived(input=f"a TLS file named by the environment that is no file ({named})", exit_code=2, message=said,
             changed=NOTHING)


def test_a_home_whose_client_key_this_user_may_not_read(as_nobody: tuple[Work, list[str]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`su engine` keeps root's HOME: asyncpg looks at ~/.postgresql/postgresql.key there, and may not."""
    work, nobody = as_nobody
    home = work.folder / "root"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    key = home / ".postgresql" / "postgresql.key"
    work.expect([([*nobody, *command], f"{parse_url(work.target).masked()}: {key}, a TLS file the client reads, "
                                       f"cannot be read by this user: make it readable, or run with this user's "
                                       f"own HOME") for command, _ in server_commands(work.target, "")[:2]], 2)


def test_a_pg_dump_older_than_the_server(work: Work, survived, monkeypatch: pytest.MonkeyPatch) -> None:
    build_pg_1_0_0(work.target, work.folder / "engine.db")
    old = work.folder / "old-bin"
    old.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        (old / tool).write_text(f'#!/bin/sh\necho "{tool} (PostgreSQL) 9.6.24"\n')
        (old / tool).chmod(0o755)
    monkeypatch.setenv("WIZARD_PG_BIN", "old-bin")
    major = int(fetch(work.target, "SHOW server_version_num")[0][0]) // 10000
    says = (f"pg_dump is older than the server (PostgreSQL {major}) and cannot dump it (9 in old-bin (WIZARD_PG_BIN)): "
            f"install postgresql-client-{major} (or newer), or set WIZARD_PG_BIN to its bin folder")
    said = work.expect([(["upgrade", "--db", work.target, "--yes"], says), (["backup", "--source", work.target], says)],
                       3)
    assert not work.state_dir.exists()  # refused before a run exists: no journal of a backup that never began
    survived(input="a pg_dump older than the server (WIZARD_PG_BIN=old-bin holding pg_dump 9.6)", exit_code=3,
             message=said, changed=NOTHING)


# --- the target's database ---


def test_a_user_who_may_not_create_tables(work: Work, survived) -> None:
    role = "wizard_faults_nocreate"  # a fixed name: it shows in the message README records
    fetch(work.server, f"DROP ROLE IF EXISTS {role}")
    fetch(work.server, f"CREATE ROLE {role} LOGIN")
    try:
        assert not fetch(work.target, f"SELECT has_schema_privilege('{role}', 'public', 'CREATE')")[0][0]
        url = make_url(work.target).set(username=role).render_as_string(hide_password=False)
        said = work.expect([(["migrate", "--source", ENGINE, "--target", url, "--yes"],
                             f"pre-flight check 'privileges' failed: the user {role} may not create tables in schema "
                             f"public: GRANT CREATE ON SCHEMA public TO {role}, or connect as its owner")],
                           3, alone=False)
        only_the_journal(work)
    finally:
        fetch(work.server, f"DROP ROLE IF EXISTS {role}")
    survived(input="a user without CREATE on the target's schema (PostgreSQL 15's default for public)", exit_code=3,
             message=said, changed=ONLY_THE_JOURNAL)


def test_a_target_that_already_holds_data(work: Work, survived) -> None:
    with named_database(work.server, "wizard_faults_full") as full:
        fetch(full, "CREATE TABLE users (id text PRIMARY KEY, name text)")
        fetch(full, "CREATE TABLE executions (id bigint PRIMARY KEY, status text)")
        fetch(full, "INSERT INTO users VALUES ('u1', 'someone'), ('u2', 'else')")
        fetch(full, "INSERT INTO executions SELECT i, 'done' FROM generate_series(1, 50) i")
        said = work.expect([(["migrate", "--source", ENGINE, "--target", full, "--yes"],
                             "pre-flight check 'target empty' failed: database wizard_faults_full: it already holds "
                             "the engine's tables (executions, users): use an empty database")],
                           3, watch=full, alone=False)
        only_the_journal(work)
        assert checksums(full)["executions"][0] == 50
    survived(input="a target that already holds the engine's tables, with rows", exit_code=3, message=said,
             changed=ONLY_THE_JOURNAL)


# --- .env ---


ENV = "DATABASE_URL=sqlite:///engine.db\nDEBUG=1\n"


def test_an_env_file_that_does_not_exist(work: Work, survived) -> None:
    said = work.expect([
        (["migrate", "--source", ENGINE, "--target", work.target, "--yes", "--env-file", "engine.env"],
         "engine.env does not exist: pass the engine's .env with --env-file, or leave it out"),
        # The source from DATABASE_URL in it: a .env named on the command line must be there.
        (["migrate", "--target", work.target, "--yes", "--env-file", "engine.env"],
         "engine.env does not exist: pass --env-file with the engine's .env, or --source"),
        (["plan", "--env-file", "engine.env"], "engine.env does not exist: pass --env-file with the engine's .env, "
                                               "or --source"),
    ], 2)
    survived(input="an --env-file that does not exist", exit_code=2, message=said, changed=NOTHING)


def test_an_env_file_that_is_no_file(work: Work, survived) -> None:
    """/dev/null or a pipe: nothing the switch could rewrite, said as what it is (it was said not to exist)."""
    os.mkfifo(work.folder / "engine.env")
    said = work.expect([
        ([command, "--source", ENGINE, "--target", work.target, "--yes", "--env-file", env],
         f"{env} is not a file: pass the engine's .env with --env-file, or leave it out")
        for command, env in (("migrate", "/dev/null"), ("migrate", "engine.env"))], 2)
    survived(input="an --env-file that is no file (/dev/null, a pipe)", exit_code=2, message=said, changed=NOTHING)


def _chattr(flag: str, path: Path) -> bool:
    if not shutil.which("chattr"):
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_an_immutable_env_file(work: Work, survived) -> None:
    env = work.folder / "engine.env"
    env.write_text(ENV)
    env.chmod(0o400)
    if os.geteuid() == 0:  # why chmod is not enough: root may write any mode (and the switch renames over it)
        assert os.access(env, os.W_OK)
    if not _chattr("+i", env):
        pytest.skip("chattr +i is not possible here (not root, or a file system without the attribute)")
    try:
        assert not os.access(env, os.W_OK)  # even for root
        said = work.expect([(["migrate", "--source", ENGINE, "--target", work.target, "--yes", "--env-file",
                              "engine.env"],
                             "engine.env is not writable (its mode, or chattr +i): make it writable, or leave "
                             "--env-file out and point the engine at the target yourself")], 2)
    finally:
        _chattr("-i", env)
    survived(input="an .env that cannot be rewritten (chattr +i)", exit_code=2, message=said,
             changed=NOTHING)


def read_only(work: Work, folder: str) -> list[str]:
    """The start of a command that runs `wizard` with `folder` (of work's) a read-only bind mount, in a mount
    namespace of its own (unshare -m), so the mount is never seen outside that process and goes with it."""
    mount = f'mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && exec "$0" "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount, "true"], cwd=work.folder, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only bind mount here: {probe.stderr.decode()[-300:]}")
    return ["unshare", "-m", "sh", "-c", mount, str(WIZARD)]


def test_an_env_file_on_a_read_only_file_system(work: Work, survived) -> None:
    conf = work.folder / "conf"
    conf.mkdir()
    (conf / ".env").write_text(ENV)
    said = work.expect([([*read_only(work, "conf"), "migrate", "--source", ENGINE, "--target",
                          work.target, "--yes", "--env-file", "conf/.env"],
                         "conf/.env is on a read-only file system: remount it read-write, or leave --env-file out "
                         "and point the engine at the target yourself")], 2)
    survived(input="an .env on a read-only file system (a read-only bind mount)", exit_code=2, message=said,
             changed=NOTHING)


def test_a_directory_in_the_way(work: Work, survived) -> None:
    (work.folder / "conf").mkdir()
    (work.folder / "engine.env").write_text(ENV)
    (work.folder / ".engine.env.wizard-tmp").mkdir()  # where the switch writes the new .env before its rename
    said = work.expect([
        (["migrate", "--source", ENGINE, "--target", work.target, "--yes", "--env-file", "conf"],
         "Invalid value for '--env-file': File 'conf' is a directory. (see `wizard migrate --help`)"),
        (["migrate", "--source", ENGINE, "--target", work.target, "--yes", "--env-file", "engine.env"],
         ".engine.env.wizard-tmp is in the way (the switch writes its new .env there): remove it, or leave "
         "--env-file out and point the engine at the target yourself"),
    ], 2)
    survived(input="a directory in the way: --env-file names a folder, or one sits where the new .env is written",
             exit_code=2, message=said, changed=NOTHING)


def test_an_env_file_with_crlf_export_quotes_and_comments_keeps_every_other_byte(
        work: Work, survived, engine_db: Path) -> None:
    """Not an error: the source comes from this .env, the move succeeds, and only the DATABASE_URL line changes."""
    lines = [b"# the engine's settings, written on Windows\r\n",
             b"export DATABASE_URL='sqlite:///engine.db'\r\n",
             b"# DATABASE_URL=sqlite:///old.db (a comment that names it)\r\n",
             b"OLD_DATABASE_URL=\"sqlite:///old.db\"\r\n",
             b"   \r\n",
             b"export DEBUG=\"1\"   # inline comment\r\n",
             b"QUOTED=\"a \\\"quoted\\\" value # not a comment\"\r\n",
             b"TRAILING=no-newline-at-the-end"]
    env = work.folder / "engine.env"
    env.write_bytes(b"".join(lines))
    os.chmod(env, 0o640)
    with named_database(work.server, "wizard_faults_env") as target:
        before = sha256(engine_db)
        ((moved, _),) = run_all(work.folder, ["migrate", "--target", target, "--env-file", "engine.env", "--yes"])
        assert moved.returncode == 0 and "Traceback" not in moved.stderr, moved.stderr[-3000:]
        new = parse_url(target).async_str().encode()
        assert env.read_bytes() == b"".join([lines[0], b"export DATABASE_URL=\"" + new + b"\"\r\n", *lines[2:]])
        assert value_in(env.read_bytes(), "DATABASE_URL") == new.decode()
        assert value_in(env.read_bytes(), "QUOTED") == 'a "quoted" value # not a comment'
        assert env.stat().st_mode & 0o777 == 0o640
        assert sha256(engine_db) == before
        (run,) = list((work.state_dir / "runs").iterdir())  # one run, with its backups, for its rollback
        assert (run / "env.backup").read_bytes() == b"".join(lines)
        assert rows_lost(engine_db, target, run) == 0
        # The step's own line (rich wraps it at 80 columns on a pipe: read whole).
        said = re.search(r"DATABASE_URL in engine\.env is now \S+", re.sub(r"\s*\n\s*", " ", moved.stderr))[0]
        assert said == f"DATABASE_URL in engine.env is now {parse_url(target).masked()}"
    survived(input=".env with CRLF line ends, `export`, quotes and comments (not an error)", exit_code=0,
             message=said,
             changed="only the DATABASE_URL line of .env (every other byte checked); the move verified, 0 rows lost")


def test_a_state_directory_that_cannot_be_written(work: Work, survived) -> None:
    """Under a file, a file itself (WIZARD_STATE_DIR is no click path), or on a read-only disk: said before
    anything is written, by every command that starts a run."""
    (work.folder / "state").mkdir()
    says = "the state directory {} cannot be written ({}): pass --state-dir a folder you can write to"
    under_a_file = says.format(work.folder / "engine.db" / "state", "Not a directory")
    said = work.expect([
        (["backup", "--source", ENGINE, "--state-dir", "engine.db/state"], under_a_file),
        (["migrate", "--source", ENGINE, "--target", work.target, "--yes", "--state-dir", "engine.db/state"],
         under_a_file),
        (["upgrade", "--db", ENGINE, "--yes", "--state-dir", "engine.db/state"], under_a_file),
        (["env", "WIZARD_STATE_DIR=engine.db", str(WIZARD), "backup", "--source", ENGINE],
         says.format(work.folder / "engine.db", "File exists")),
        ([*read_only(work, "state"), "backup", "--source", ENGINE, "--state-dir", "state"],
         says.format(work.folder / "state", "Read-only file system")),
    ], 2)
    survived(input="a state directory that cannot be written (under a file, a file, a read-only disk)", exit_code=2,
             message=said, changed=NOTHING)


def test_a_state_directory_that_cannot_be_read(as_nobody: tuple[Work, list[str]], survived) -> None:
    work, nobody = as_nobody
    (work.folder / "root").mkdir(mode=0o700)  # root's; click says what it sees of a folder it may open itself
    says = f"the state directory {work.folder / 'root/state'} cannot be read (Permission denied): run as its " \
           f"owner, or pass --state-dir the folder that holds your runs"
    said = work.expect([([*nobody, "status", "--state-dir", "root/state"], says),
                        ([*nobody, "rollback", "--last", "--yes", "--state-dir", "root/state"], says)], 2)
    survived(input="a state directory of another user's (status, rollback)", exit_code=2, message=said,
             changed=NOTHING)


@needs_tmux
def test_the_tui_says_a_state_directory_it_cannot_read_in_the_clis_line(as_nobody: tuple[Work, list[str]],
                                                                       panes) -> None:
    """`wizard` (the TUI) in a real terminal, as nobody: the line `wizard status` prints and exit 2, no crash."""
    work, nobody = as_nobody
    (work.folder / "root").mkdir(mode=0o700)
    state = work.folder / "root" / "state"
    before = files(work.folder)
    pane = panes([*nobody, "--source", f"sqlite:///{work.folder / 'engine.db'}", "--state-dir", str(state)],
                 work.folder / "pane")
    assert pane.wait_exit() == 2
    shown = "".join(pane.wait_for("error:").split())  # one line, wrapped by the terminal wherever 80 falls
    says = f"error: the state directory {state} cannot be read (Permission denied): run as its owner, or pass " \
           f"--state-dir the folder that holds your runs"
    assert "Traceback" not in shown and "".join(says.split()) in shown, pane.screen
    assert {k: v for k, v in files(work.folder).items() if not k.startswith("pane")} == before


def test_an_env_file_that_is_not_utf8(work: Work, survived) -> None:
    """A byte of latin-1 in a comment stops nothing; in DATABASE_URL itself, it is said as the URL's."""
    (work.folder / "latin1.env").write_bytes(b"# r\xe9glages du moteur\nDATABASE_URL=sqlite:///engine.db\n")
    ((planned, _),) = run_all(work.folder, ["plan", "--env-file", "latin1.env"])
    assert planned.returncode == 0 and "Traceback" not in planned.stderr, planned.stderr[-3000:]
    assert "source sqlite:///engine.db" in planned.stdout
    (work.folder / "latin1-url.env").write_bytes(b"DATABASE_URL=sqlite:///caf\xe9.db\n")
    says = "the source URL holds bytes that are not UTF-8 (a file or database named in another encoding): rename " \
           "it, or link the file under a UTF-8 name, and use that"
    said = work.expect([(["plan", "--env-file", "latin1-url.env"], says),
                        (["migrate", "--env-file", "latin1-url.env", "--target", work.target, "--yes"], says),
                        (["backup", "--env-file", "latin1-url.env"], says)], 2)
    survived(input="an .env in latin-1 (a comment: read; DATABASE_URL itself: said)", exit_code=2, message=said,
             changed=NOTHING)


def test_an_env_file_that_sets_a_variable_twice(work: Work, survived, engine_db: Path) -> None:
    """Not an error: dotenv (and a shell) take the last line, which the move read its source from; the switch
    rewrites that line, and the key leaves .env whole, so the engine reads the target and no key after it."""
    first = b"DATABASE_URL=sqlite:///old.db\nOPENAI_API_KEY=sk-old-0000000000\n"
    env = work.folder / "engine.env"
    env.write_bytes(first + b"DATABASE_URL=sqlite:///engine.db\nOPENAI_API_KEY=sk-new-1111111111\n")
    ((moved, _),) = run_all(work.folder, ["migrate", "--target", work.target, "--env-file", "engine.env", "--yes"])
    assert moved.returncode == 0 and "Traceback" not in moved.stderr, moved.stderr[-3000:]
    new = parse_url(work.target).async_str()
    assert env.read_bytes() == f"DATABASE_URL=sqlite:///old.db\nDATABASE_URL=\"{new}\"\n".encode()
    assert value_in(env.read_bytes(), "DATABASE_URL") == new and value_in(env.read_bytes(), "OPENAI_API_KEY") is None
    assert "sk-new-1111111111" in str(fetch(work.target, "SELECT settings_data FROM settings"))  # the one that counted
    survived(input=".env setting DATABASE_URL and OPENAI_API_KEY twice (not an error: the last line counts)",
             exit_code=0, message="the last DATABASE_URL line is switched; no OPENAI_API_KEY line is left",
             changed="the last DATABASE_URL line and both OPENAI_API_KEY lines of .env; the move verified")


def test_a_sqlite_target(work: Work, survived) -> None:
    """`plan` says what `migrate` says, where it planned a move onto the file, one that "already holds the
    engine's tables"."""
    shutil.copy(work.folder / "engine.db", work.folder / "other.db")
    says = "the target of a move must be PostgreSQL or MySQL: postgresql://user@host:5432/dbname"
    said = work.expect([(["plan", "--source", ENGINE, "--target", "sqlite:///other.db"], says),
                        (["migrate", "--source", ENGINE, "--target", "sqlite:///other.db", "--yes"], says)], 2)
    survived(input="a SQLite --target (plan, migrate)", exit_code=2, message=said, changed=NOTHING)


def test_a_target_that_is_the_source(work: Work, survived) -> None:
    """A database equal to itself would verify: said instead (one file by another path, one server database)."""
    says = "the source and the target are one database ({}): give as --target the database the source was moved to"
    said = work.expect([
        (["verify", "--source", ENGINE, "--target", f"sqlite:///{work.folder / 'engine.db'}"],
         says.format(f"sqlite:///{work.folder / 'engine.db'}")),
        (["verify", "--source", work.target, "--target", work.target], says.format(parse_url(work.target).masked())),
    ], 2)
    survived(input="verify with a target that is the source", exit_code=2, message=said, changed=NOTHING)


def test_a_report_that_cannot_be_written(work: Work, survived) -> None:
    """Said before the verification runs (it may take an hour), not as a traceback at its end."""
    (work.folder / "reports").mkdir()
    says = "the report cannot be written at {} ({} is not a folder you may write in): pass --report a path in one " \
           "you may"
    said = work.expect([
        (["verify", "--source", ENGINE, "--target", work.target, "--report", "engine.db/report.md"],
         says.format("engine.db/report.md", work.folder / "engine.db")),
        ([*read_only(work, "reports"), "verify", "--source", ENGINE, "--target", work.target, "--report",
          "reports/new/report.md"], says.format("reports/new/report.md", work.folder / "reports")),
    ], 2)
    survived(input="a --report path that cannot be written (under a file, on a read-only disk)", exit_code=2,
             message=said, changed=NOTHING)


def test_a_report_in_another_users_folder(as_nobody: tuple[Work, list[str]]) -> None:
    work, nobody = as_nobody
    (work.folder / "root").mkdir(mode=0o700)
    work.expect([([*nobody, "verify", "--source", ENGINE, "--target", work.target, "--report", "root/report.md"],
                  f"the report cannot be written at root/report.md ({work.folder / 'root'} is not a folder you may "
                  f"write in): pass --report a path in one you may")], 2)


# --- revisions and runs ---


def test_a_revision_that_is_not_in_the_history(work: Work, survived) -> None:
    said = work.expect([
        (["migrate", "--source", ENGINE, "--target", work.target, "--to", "0099", "--yes"],
         f"revision '0099' is not in the engine's history: {HEAD}"),
        (["upgrade", "--db", ENGINE, "--to", "0099", "--yes"], f"revision '0099' is not in the engine's history: {HEAD}"),
        (["upgrade", "--db", work.target, "--to", "0099", "--yes"],
         f"revision '0099' is not in the engine's history: {HEAD}"),
    ], 2)
    survived(input="a --to revision that does not exist", exit_code=2, message=said, changed=NOTHING)


def test_an_unknown_run_id(work: Work, survived) -> None:
    ((none, _),) = run_all(work.folder, ["rollback", "--run", "20990101-000000-abcdef", "--yes"])
    assert error_line(none, 2) == f"no runs in {work.state_dir}: pass --state-dir where the wizard kept its journal"
    assert not work.state_dir.exists()
    ((backup, _),) = run_all(work.folder, ["backup", "--source", ENGINE])  # a run to be there beside the wrong id
    assert backup.returncode == 0, backup.stderr
    says = f"no run '20990101-000000-abcdef' in {work.state_dir}: `wizard status` lists the runs"
    said = work.expect([
        (["rollback", "--run", "20990101-000000-abcdef", "--yes"], says),
        (["verify", "--source", ENGINE, "--target", work.target, "--run", "20990101-000000-abcdef"], says),
        (["migrate", "--source", ENGINE, "--target", work.target, "--yes", "--resume"],
         f"no unfinished move from {ENGINE} to {parse_url(work.target).masked()} in {work.state_dir}: run without "
         f"--resume, or pass the --state-dir the move used"),
    ], 2)
    survived(input="an unknown --run id (rollback, verify)", exit_code=2,
             message=said, changed=NOTHING)


# --- production targets: a pooler, a schema of its own ---


def test_a_pooler_that_allows_no_transaction(work: Work, survived) -> None:
    """PgBouncer in statement pooling mode: every chunk commits with its checkpoint in one transaction, and
    there are none. Refused before anything is written, naming the server's own URL when it answers."""
    with named_database(work.server, "wizard_pooled") as url, \
            start_pgbouncer(work.server, STATEMENT_PORT, "statement") as port:
        pooled = through(url, port)
        said = work.expect([(["migrate", "--source", ENGINE, "--target", pooled, "--yes"], re.compile(
            rf"{re.escape(parse_url(pooled).masked())}: a pooler there allows no transaction \(.*transaction blocks "
            r"not allowed in statement pooling mode\): the copy commits each chunk with its checkpoint in one: "
            rf"(use {re.escape(parse_url(url).masked())}|connect to the server itself), or a pooler in session or "
            r"transaction mode"))], 2, watch=url)
    survived(input="PgBouncer in statement pooling mode in front of the target (no transactions)", exit_code=2,
             message=said, changed=NOTHING)


def test_a_schema_that_is_not_there(work: Work, survived) -> None:
    with named_database(work.server, "wizard_schema") as url:
        says = (f"{parse_url(url).masked()}?options=-csearch_path%3Dnosuch: schema nosuch does not exist, or "
                f"{make_url(url).username} may not use it: CREATE SCHEMA nosuch AUTHORIZATION "
                f"{make_url(url).username}, or GRANT USAGE, CREATE ON SCHEMA nosuch TO {make_url(url).username}")
        said = work.expect([
            (["migrate", "--source", ENGINE, "--target", url, "--schema", "nosuch", "--yes"], says),
            (["plan", "--source", ENGINE, "--target", url, "--schema", "nosuch"], says),
            (["verify", "--source", ENGINE, "--target", url, "--schema", "nosuch"], says),
            (["upgrade", "--db", url, "--schema", "nosuch", "--yes"], says),
            (["upgrade", "--db", ENGINE, "--schema", "app", "--yes"],
             "--schema is for a PostgreSQL target: a SQLite file has no schemas"),
        ], 2, watch=url)
    survived(input="--schema naming a schema the database does not have (migrate, plan, verify, upgrade)",
             exit_code=2, message=said, changed=NOTHING)


def test_a_schema_through_a_pooler_that_drops_the_urls_options(work: Work, survived, pgbouncer: int) -> None:
    with named_database(work.server, "wizard_pooled") as url:
        said = work.expect([(["migrate", "--source", ENGINE, "--target", through(url, pgbouncer), "--schema", "app",
                              "--yes"], f"{parse_url(through(url, pgbouncer)).masked()}?options=-csearch_path%3Dapp: "
                                        "the pooler there does not pass on the URL's options: connect to the server "
                                        "itself, or set them for the role (ALTER ROLE ... SET search_path = ...) and "
                                        "leave them out of the URL")], 2, watch=url)
    survived(input="--schema through PgBouncer, which refuses the URL's options (search_path)", exit_code=2,
             message=said, changed=NOTHING)

"""Faults from the machine around the wizard: the engine still running on the source, a disk that fills, and
a second wizard started while one is working. Real `wizard` processes, real SQLite files, a real PostgreSQL.

Every wait here is a bounded poll of something the wizard or the other process leaves behind (a line on a
pipe, the run's journal, the target's wizard_copy_checkpoint table, a process state), never a plain sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import asyncpg
import pytest

from fault_support import WIZARD, first_line, rows_lost, source_counts, wizard
from move_helpers import fetch, pg, sha256, tables_in
from pgbouncer import through
from wizard import sample
from wizard.db import sqlite_uri

pytestmark = pytest.mark.slow  # real processes and large sources: `pytest -m slow` runs them

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
REFUSED = 3
FAILED = 1


# --- helpers ---


def wait_for(what: str, check: Callable[[], object], timeout: float = 60, every: float = 0.01) -> object:
    """Poll `check` until it returns something true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def records(state: Path) -> dict[str, list[dict]]:
    """run id -> its journal's records (a torn last line is left for the next poll)."""
    out = {}
    for journal in sorted((state / "runs").glob("*/journal.jsonl")):
        lines = []
        for line in journal.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                break
        out[journal.parent.name] = lines
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def one_clear_line(done: subprocess.CompletedProcess, code: int) -> str:
    """The run ended with `code` and said why in exactly one `error:` line, with no traceback."""
    assert done.returncode == code, f"exit {done.returncode}, not {code}: {done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    said = error_lines(done.stderr)
    assert len(said) == 1, done.stderr[-3000:]
    assert said[0] == first_line(done.stderr), done.stderr[-3000:]
    return said[0]


def plain(line: str, tmp_path: Path, **names: str) -> str:
    """A line as the README shows it: no temporary paths, pids or run ids of this run."""
    line = line.replace(f"{tmp_path}/", "")
    for name, value in names.items():
        line = line.replace(value, f"<{name}>")
    return RUN_ID.sub("<run>", line)


def leftovers(folder: Path, *allowed: str) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name not in allowed)


def backup_rows(path: Path) -> tuple[str, dict[str, int], set[int]]:
    """integrity_check, row counts per table and every execution id of a backup file."""
    conn = sqlite3.connect(sqlite_uri(path, immutable=True), uri=True)
    try:
        check = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        counts = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        ids = {r[0] for r in conn.execute("SELECT id FROM executions")}
        return check, counts, ids
    finally:
        conn.close()


def lost_from(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(max(0, n - after.get(table, 0)) for table, n in before.items())


def start(args: list[str], log: Path) -> subprocess.Popen:
    """A process in the background, its output to files (a stopped process must not block on a full pipe)."""
    return subprocess.Popen(args, stdout=open(log.with_suffix(".out"), "w"), stderr=open(log.with_suffix(".err"), "w"),
                            stdin=subprocess.DEVNULL)


def finished(proc: subprocess.Popen, log: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    code = proc.wait(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, code, log.with_suffix(".out").read_text(),
                                       log.with_suffix(".err").read_text())


def stopped(pid: int) -> bool:
    """The process is stopped (SIGSTOP took effect): state T in /proc/PID/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")


def wait_mid_copy(target_url: str, proc: subprocess.Popen, timeout: float = 60) -> int:
    """Rows of executions the running move has committed, once there are some (its checkpoint in the target)."""
    async def poll() -> int:
        conn = await asyncpg.connect(pg(target_url))
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert proc.poll() is None, "the first wizard ended before its copy was seen"
                try:
                    n = await conn.fetchval("SELECT coalesce(max(rows_copied), 0) FROM wizard_copy_checkpoint "
                                            "WHERE table_name = 'executions'")
                except asyncpg.UndefinedTableError:
                    n = 0  # the schema step has not made it yet (or the move already dropped it)
                if n:
                    return n
                await asyncio.sleep(0.005)
            pytest.fail(f"no chunk of executions committed in the target within {timeout:.0f} s")
        finally:
            await conn.close()

    return asyncio.run(poll())


@pytest.fixture
def paused() -> Iterator[Callable[[subprocess.Popen], None]]:
    """pause(proc): SIGSTOP it; whatever happens, it is continued (and, if still running at the end, killed)."""
    procs: list[subprocess.Popen] = []

    def pause(proc: subprocess.Popen) -> None:
        procs.append(proc)
        os.kill(proc.pid, signal.SIGSTOP)
        wait_for(f"process {proc.pid} to stop", lambda: stopped(proc.pid), timeout=10)

    yield pause
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source whose move takes seconds (only ever read: the tests that share it never write it)."""
    return sample.build(tmp_path_factory.mktemp("big") / "engine.db", executions=20_000, workflows=50, users=10)


# --- 1. the engine still running on the source ---

ENGINE = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = wal")
conn.execute("PRAGMA wal_autocheckpoint = 0")  # its last commits stay in the -wal, not checkpointed
conn.execute("BEGIN")
conn.execute("INSERT INTO executions (id, workflow_id, status) SELECT 900000 + rowid, id, 'completed' FROM workflows")
conn.execute("COMMIT")
conn.execute("BEGIN IMMEDIATE")  # the write lock, held
conn.execute("INSERT INTO executions (id, workflow_id, status) SELECT 950000 + rowid, id, 'running' FROM workflows")
print("holding", flush=True)
sys.stdin.read()  # until it is stopped: its open transaction dies with it
"""


def test_the_source_open_in_a_running_app(tmp_path: Path, pg_url: str, survived) -> None:
    source = sample.build(tmp_path / "engine.db", executions=2000, workflows=50, users=10)
    engine = subprocess.Popen([sys.executable, "-c", ENGINE, str(source)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([engine.stdout], [], [], 30)
        assert ready and engine.stdout.readline().strip() == "holding", f"the app did not start (exit {engine.poll()})"
        wal = Path(f"{source}-wal")
        assert wal.stat().st_size > 0  # committed frames the main file does not have yet
        committed = source_counts(source)  # what a reader sees: the committed rows only
        files = (sha256(source), sha256(wal))
        state = tmp_path / "state"

        moved = wizard("migrate", "--source", f"sqlite:///{source}", "--target", pg_url, "--state-dir", str(state),
                       "--yes", timeout=120)
        said = one_clear_line(moved, REFUSED)
        assert "pre-flight check 'source in use' failed" in said, said
        assert f"has a write transaction open in process {engine.pid} " in said and "stop it" in said, said
        assert tables_in(pg_url) == []  # nothing written in the target
        assert leftovers(state, "lock", "journal.jsonl") == []  # the backup taken alongside was discarded

        backed = wizard("backup", "--source", f"sqlite:///{source}", "--state-dir", str(tmp_path / "backups"),
                        "--json", timeout=120)
        assert backed.returncode == 0, backed.stderr[-3000:]
        record = json.loads(backed.stdout.splitlines()[-1])
        check, counts, ids = backup_rows(Path(record["path"]))
        assert check == "ok" and record["check"] == "integrity_check: ok"
        assert counts == committed  # every committed row, the -wal's too ...
        assert {900000 + i for i in range(1, 51)} <= ids and not {i for i in ids if i > 950000}  # ... none uncommitted
        assert (sha256(source), sha256(wal)) == files  # neither the move nor the backup wrote the source
        assert engine.poll() is None
    finally:
        engine.terminate()  # the operator stops the engine: its open transaction is never committed
        engine.wait(timeout=30)

    assert wal.stat().st_size > 0  # the engine died: its committed frames are still only in the -wal
    again = wizard("migrate", "--source", f"sqlite:///{source}", "--target", pg_url, "--state-dir", str(state),
                   "--yes", timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    run = next(r for r, recs in records(state).items() if recs[-1].get("state") == "finished")
    assert source_counts(source) == committed
    assert fetch(pg_url, "SELECT count(*) FROM executions WHERE id > 900000")[0][0] == 50
    lost = rows_lost(source, pg_url, state / "runs" / run)
    assert lost == 0
    survived(fault="the source open in a running app: another process holds a write transaction (BEGIN IMMEDIATE, "
                   "rows not committed) and committed WAL frames not yet checkpointed",
             did=f"migrate refused at pre-flight, exit 3, nothing written to the target: "
                 f"`{plain(said, tmp_path, pid=str(engine.pid))}`; `wizard backup` meanwhile: integrity_check ok, "
                 f"every committed row (the -wal's too), none of the uncommitted; once the app was stopped the move "
                 f"ran and verified",
             rows_lost=lost)


# --- 2. the disk filling during the backup ---

DISK = 8 << 20  # the tmpfs: room for the journal, and for the 3 MB source's backup until it is filled
ROOM = 512 << 10  # what is left once it is: a journal fits, a backup does not


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs mounted as the state directory, unmounted afterwards."""
    why = None
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
    elif not shutil.which("mount"):
        why = "no mount(8) on this machine"
    mount = tmp_path / "state"
    mount.mkdir()
    if why is None:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(mount)],
                              capture_output=True, text=True)
        why = f"mount -t tmpfs failed: {done.stderr.strip()}" if done.returncode else None
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a full disk needs a small filesystem under CI: {why}")
        pytest.skip(f"a full disk needs a small filesystem: {why}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # a straggler still inside: detach it


def fill(disk: Path, leave: int) -> None:
    """Another file takes the tmpfs's space but `leave` bytes (a log that grew, another program's data)."""
    with open(disk / "filler", "ab") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
        f.flush()
    assert shutil.disk_usage(disk).free <= leave


@pytest.fixture
def disk_source(tmp_path: Path) -> Path:
    source = sample.build(tmp_path / "engine.db", executions=4000, workflows=50, users=10)
    assert ROOM * 2 < source.stat().st_size < DISK // 2
    return source


def test_a_disk_too_small_for_the_backup(small_disk: Path, disk_source: Path, pg_url: str, tmp_path: Path,
                                         survived) -> None:
    before, rows = sha256(disk_source), source_counts(disk_source)
    fill(small_disk, 1 << 20)  # a third of the source's size is free

    backed = wizard("backup", "--source", f"sqlite:///{disk_source}", "--state-dir", str(small_disk), timeout=120)
    said_backup = one_clear_line(backed, FAILED)  # no check up front: the disk fills during the write
    assert "is full" in said_backup and "free space" in said_backup and "nothing was changed" in said_backup
    assert leftovers(small_disk, "lock", "journal.jsonl", "filler") == []  # no partial backup, no temp name
    (journal,) = records(small_disk).values()
    assert journal[-1]["kind"] == "run_finished" and journal[-1]["state"] == "failed"  # the journal still fit

    moved = wizard("migrate", "--source", f"sqlite:///{disk_source}", "--target", pg_url, "--state-dir",
                   str(small_disk), "--yes", timeout=120)
    said_move = one_clear_line(moved, REFUSED)
    assert "pre-flight check 'disk' failed" in said_move and "--state-dir on a larger disk" in said_move, said_move
    assert leftovers(small_disk, "lock", "journal.jsonl", "filler") == []
    (move_journal,) = [j for j in records(small_disk).values() if j[0].get("journey") == "move"]
    assert not [r for r in move_journal if r.get("step") == "backup"]  # refused before a backup could fill the disk
    assert tables_in(pg_url) == []
    assert sha256(disk_source) == before
    lost = lost_from(rows, source_counts(disk_source))
    assert lost == 0
    survived(fault="a state directory too small for the backup (a 1 MB tmpfs left for a 3 MB source)",
             did=f"wizard backup: exit 1, `{plain(said_backup, tmp_path)}`; wizard migrate: refused at pre-flight, "
                 f"exit 3, `{plain(said_move, tmp_path)}`; no partial backup or temp file left, source and target "
                 f"untouched",
             rows_lost=lost)


# The real wizard, but its backup's page copy begins only once the test says go: the test fills the disk
# from outside in between, after the pre-flight check found room (which it journals).
GATED = r"""
import sys, time
from pathlib import Path
from wizard import backup
go = Path(sys.argv[1])
copy = backup._copy_sqlite
def gated(*args):
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the test never said go")
        time.sleep(0.01)
    return copy(*args)
backup._copy_sqlite = gated
from wizard.cli import main
sys.argv = ["wizard", *sys.argv[2:]]
main()
"""


def test_the_disk_filling_during_the_backup(small_disk: Path, disk_source: Path, pg_url: str, tmp_path: Path,
                                            survived) -> None:
    before = sha256(disk_source)
    go = tmp_path / "go"
    args = ["migrate", "--source", f"sqlite:///{disk_source}", "--target", pg_url, "--state-dir", str(small_disk),
            "--yes"]
    log = tmp_path / "gated"
    proc = start([sys.executable, "-c", GATED, str(go), *args], log)
    try:
        def preflight_done() -> dict | None:
            return next((r for recs in records(small_disk).values() for r in recs
                         if r["kind"] == "step_finished" and r["step"] == "preflight"), None)

        checked = wait_for("the pre-flight checks to finish", preflight_done)
        assert {c["name"]: c["status"] for c in checked["checks"]}["disk"] == "pass", checked["checks"]
        assert proc.poll() is None
        fill(small_disk, ROOM)
        go.touch()
        done = finished(proc, log, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = one_clear_line(done, FAILED)
    assert "backup of" in said and "is full" in said and "nothing was changed" in said, said
    assert leftovers(small_disk, "lock", "journal.jsonl", "filler") == []  # the partial backup and its journal
    (run, journal), = records(small_disk).items()
    assert journal[-1]["kind"] == "run_finished" and journal[-1]["state"] == "failed"
    assert any(r["kind"] == "step_failed" and r["step"] == "backup" for r in journal)
    assert tables_in(pg_url) == []
    assert sha256(disk_source) == before

    (small_disk / "filler").unlink()  # the operator frees the space and runs the same command again
    again = wizard(*args, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    (done_run,) = [r for r in records(small_disk) if r != run]
    lost = rows_lost(disk_source, pg_url, small_disk / "runs" / done_run)
    assert lost == 0 and sha256(disk_source) == before
    survived(fault="the disk filling during the backup (another file takes the state directory's tmpfs after "
                   "the pre-flight check found room)",
             did=f"migrate failed at the backup, exit 1: `{plain(said, tmp_path)}`; the partial backup and its "
                 f"journal removed, nothing written to the target, the source unchanged; run again once there was "
                 f"room, it moved and verified",
             rows_lost=lost)


# --- 3 and 4. two wizards at once ---


def first_move(source: Path, target: str, state: Path, tmp_path: Path, pause) -> tuple[subprocess.Popen, str, Path]:
    """A move started and paused in the middle of its copy: (its process, its run id, its log)."""
    log = tmp_path / "first"
    proc = start([str(WIZARD), "migrate", "--source", f"sqlite:///{source}", "--target", target, "--state-dir",
                  str(state), "--yes"], log)
    copied = wait_mid_copy(target, proc)
    pause(proc)
    (run_id, journal), = records(state).items()
    assert journal[-1]["kind"] != "run_finished" and 0 < copied, journal[-1]
    return proc, run_id, log


def resumed_and_verified(proc: subprocess.Popen, log: Path, source: Path, target: str, state: Path,
                         run_id: str) -> int:
    os.kill(proc.pid, signal.SIGCONT)
    done = finished(proc, log)
    assert done.returncode == 0, done.stderr[-3000:]
    assert records(state)[run_id][-1]["state"] == "finished"
    return rows_lost(source, target, state / "runs" / run_id)


def test_two_wizards_on_the_same_state_directory(big_source: Path, engine_db: Path, pg_url: str, tmp_path: Path,
                                                 paused, survived) -> None:
    state = tmp_path / "state"
    proc, run_id, log = first_move(big_source, pg_url, state, tmp_path, paused)
    before = sha256(engine_db)
    seconds = {
        "migrate": ["migrate", "--source", f"sqlite:///{big_source}", "--target", pg_url, "--yes"],
        "upgrade": ["upgrade", "--db", f"sqlite:///{engine_db}", "--yes"],
        "backup": ["backup", "--source", f"sqlite:///{big_source}"],
    }
    started = {name: start([str(WIZARD), *args, "--state-dir", str(state)], tmp_path / name)
               for name, args in seconds.items()}
    said = {}
    for name, second in started.items():
        line = one_clear_line(finished(second, tmp_path / name, timeout=120), REFUSED)
        assert f"run {run_id} (move, pid {proc.pid}) holds {state}" in line, f"{name}: {line}"
        assert "wait for it to end, or stop it first" in line, f"{name}: {line}"
        said[name] = line
    assert proc.poll() is None and stopped(proc.pid)  # the first held the state directory all along
    assert list(records(state)) == [run_id]  # a refused run leaves no run behind
    assert sha256(engine_db) == before

    lost = resumed_and_verified(proc, log, big_source, pg_url, state, run_id)
    assert lost == 0
    survived(fault="two wizards at once on one state directory (a migrate, an upgrade and a backup started while "
                   "a migrate is mid-copy)",
             did=f"each second one refused, exit 3: `{plain(said['upgrade'], tmp_path, pid=str(proc.pid))}`; "
                 f"the first went on, finished and verified",
             rows_lost=lost)


def test_two_wizards_on_the_same_target(big_source: Path, pg_url: str, tmp_path: Path, paused, survived) -> None:
    state = tmp_path / "state"
    proc, run_id, log = first_move(big_source, pg_url, state, tmp_path, paused)
    database = pg_url.rsplit("/", 1)[1]
    seconds = {
        "migrate": ["migrate", "--source", f"sqlite:///{big_source}", "--target", pg_url, "--yes"],
        "upgrade": ["upgrade", "--db", pg_url, "--yes"],
    }
    started = {name: start([str(WIZARD), *args, "--state-dir", str(tmp_path / f"state-{name}")], tmp_path / name)
               for name, args in seconds.items()}
    said = {}
    for name, second in started.items():
        line = one_clear_line(finished(second, tmp_path / name, timeout=120), REFUSED)
        holder = rf"wizard move {run_id} \(server pid \d+\) holds database {database}:"
        assert re.search(holder, line), f"{name}: {line}"
        assert "wait for it to end, or stop it first" in line, f"{name}: {line}"
        said[name] = line
        # Refused before its run begins: no run, backup or dump in its own state directory.
        assert leftovers(tmp_path / f"state-{name}", "lock") == [], name
        assert not records(tmp_path / f"state-{name}"), name
    assert proc.poll() is None and stopped(proc.pid)

    lost = resumed_and_verified(proc, log, big_source, pg_url, state, run_id)
    assert lost == 0
    shown = re.sub(r"server pid [0-9]+", "server pid <pid>", plain(said["migrate"], tmp_path, db=database))
    survived(fault="two wizards on one target database from different state directories (a migrate and an "
                   "upgrade started while a migrate is mid-copy)",
             did=f"each second one refused, exit 3, naming the run that holds it: `{shown}`; "
                 f"the first went on, finished and verified",
             rows_lost=lost)


def test_a_transaction_pooler_in_front_of_the_target(engine_db: Path, pg_url: str, pgbouncer: int,
                                                     survived) -> None:
    """PgBouncer in transaction mode (as managed services run it): each transaction on any server connection, so a
    named prepared statement or a session's advisory lock does not follow the client. The move works through it."""
    pooled = through(pg_url, pgbouncer)
    state = engine_db.parent / "state"
    moved = wizard("migrate", "--source", f"sqlite:///{engine_db}", "--target", pooled, "--yes", "--state-dir",
                   str(state))
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert "through a transaction pooler" in moved.stderr
    held = fetch(pg_url, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                         "WHERE l.locktype = 'advisory' AND d.datname = current_database()")[0][0]
    assert held == 0
    (run,) = (state / "runs").iterdir()
    lost = rows_lost(engine_db, pooled, run)
    survived(fault="PgBouncer 1.18 in transaction pooling mode in front of the target (named prepared statements "
                   "and session advisory locks do not follow a client there)",
             did="moved and verified through it: no named prepared statements, the target lock held in one "
                 "transaction (none left on a pooled connection after), the pre-flight naming the direct URL as "
                 "faster", rows_lost=lost)

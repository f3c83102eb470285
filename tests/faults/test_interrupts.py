"""The copy interrupted from outside, then resumed: each test ends with a row-level verification.

The real `wizard` runs in a process of its own on a source big enough that the copy of `executions` lasts
a second or more; the fault lands once the target's `wizard_copy_checkpoint` shows a chunk of executions
committed (bounded polling, no sleeps), and `wizard migrate --resume` must then finish and verify.

- the target's connections terminated (pg_terminate_backend), and the target PostgreSQL really restarted
  (a private server of this module's own, never the shared one): exit 1 and a one-line error that ends with
  the command that resumes, which is then run as printed;
- SIGINT to the headless CLI; the real terminal of the headless CLI lost (tmux kill-session: SIGHUP, and the
  terminal is gone), a terminal gone with no SIGHUP at all (its writes fail first), and the pipe its JSON
  lines go to closed; SIGINT and SIGHUP to the TUI in a real terminal (tmux, 80x24, driven by its keys): a stop
  at a checkpoint, exit 130, the journal (and `wizard status`) says interrupted, the checkpoint equals the
  target's rows.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy.engine import make_url

from fault_support import WIZARD, first_line, rows_lost, wizard
from move_helpers import executions_copied, fetch
from tmux_pane import Pane, needs_tmux
from pg_clusters import private_cluster
from wizard import cluster, sample
from wizard.move.copy import CHUNK_ROWS
from wizard.journal import FAILED, FINISHED, INTERRUPTED, Run, load_run
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # real processes and large sources: `pytest -m slow` runs them

EXECUTIONS = 150_000
LIMIT = 120.0  # bounds a hung test; asserts no speed


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.build(tmp_path_factory.mktemp("interrupts") / "engine.db", executions=EXECUTIONS, workflows=500,
                        users=50)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Wizards this test started; any still running at the end (a failed test) is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def migrate_args(source: Path, url: str, state: Path) -> list[str]:
    return ["migrate", "--source", f"sqlite:///{source}", "--target", url, "--state-dir", str(state), "--yes"]


def start(args: list[str], tmp_path: Path, processes: list[subprocess.Popen]) -> tuple[subprocess.Popen, Path]:
    """`wizard ARGS` in the background, its stderr to a file (a pipe nobody reads could stall it)."""
    err = tmp_path / f"stderr-{len(processes)}.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen([str(WIZARD), *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f,
                                text=True)
    processes.append(proc)
    return proc, err


def wait_mid_executions(url: str, running: Callable[[], bool], what: str) -> int:
    """Poll until a chunk of executions is committed and more are to come; the rows committed so far."""
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        copied = executions_copied(url)
        if copied > 0:
            return copied
        if copied < 0:
            pytest.fail(f"the copy of executions ended before {what} could be interrupted: make the source bigger")
        if not running():
            pytest.fail(f"{what} ended before the copy of executions began")
        time.sleep(0.01)
    pytest.fail(f"the copy of executions never started in {what}")


def assert_checkpoint_intact(url: str, at_least: int = 1) -> int:
    """The checkpoint of executions is the truth: the target holds exactly its rows (ids 1..n, once each), a part
    of the table, at least `at_least` of them. No checkpoint row counts as none copied."""
    rows = fetch(url, "SELECT rows_copied, done FROM wizard_copy_checkpoint WHERE table_name = 'executions'")
    rows_copied, done = tuple(rows[0]) if rows else (0, False)
    in_target = fetch(url, "SELECT count(*), count(DISTINCT id), coalesce(max(id), 0) FROM executions")[0]
    assert not done and at_least <= rows_copied < EXECUTIONS, (rows_copied, done)
    assert tuple(in_target) == (rows_copied, rows_copied, rows_copied), (tuple(in_target), rows_copied)
    return rows_copied


def resume_command(line: str, target_url: str) -> list[str]:
    """The command the wizard's last line says resumes the run, ready to run (the target's password, which the
    line masks, put back as an operator would type it)."""
    found = re.search(r"resume with: (wizard migrate .* --resume)$", line)
    assert found, f"the line does not end with the command that resumes: {line!r}"
    words = shlex.split(found.group(1))
    masked = parse_url(target_url).masked()
    return [str(WIZARD)] + [target_url if w == masked else w for w in words[1:]]


def resume_and_count_lost(command: list[str], state: Path, source: Path, target_url: str) -> tuple[Run, int]:
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    run = load_run(state)
    assert run.state() == FINISHED
    return run, rows_lost(source, target_url, run.folder)


def last_finish(run: Run) -> dict:
    return [r for r in run.records() if r["kind"] == "run_finished"][-1]


def assert_lost_connection_line(stderr: str) -> str:
    """One line, no traceback: the step, that the connection to the target was lost, and how to resume."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    line = first_line(stderr)
    assert line == errors[0], stderr[-3000:]
    assert line.startswith("error: copy: lost the connection to the target ("), line
    return line


# --- the target goes away -------------------------------------------------------------------------------------


def test_target_connections_terminated_mid_copy_then_resume(source: Path, pg_url: str, tmp_path: Path,
                                                           processes: list, survived) -> None:
    state = tmp_path / "state"
    proc, err = start(migrate_args(source, pg_url, state), tmp_path, processes)
    wait_mid_executions(pg_url, lambda: proc.poll() is None, "wizard migrate")
    # What a DBA does to a database's sessions: every client backend on it, the wizard's lock included.
    killed = [r[0] for r in fetch(pg_url, "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid() AND "
                                          "backend_type = 'client backend'") if r[1]]
    assert len(killed) >= 2 and all(name.startswith("wizard move ") for name in killed), killed
    proc.wait(timeout=LIMIT)
    stderr = err.read_text()
    assert proc.returncode == 1, stderr[-3000:]
    line = assert_lost_connection_line(stderr)
    run = load_run(state)
    assert run.state() == FAILED
    assert [r["step"] for r in run.records() if r["kind"] == "step_failed"] == ["copy"]
    assert_checkpoint_intact(pg_url)

    run, lost = resume_and_count_lost(resume_command(line, pg_url), state, source, pg_url)
    assert lost == 0
    survived(fault="the target's connections terminated (pg_terminate_backend of every session of the run, its "
                   "lock's included) mid-copy of executions",
             did=f"exit {proc.returncode}, one line: `copy: lost the connection to the target (...): resume with: "
                 f"wizard migrate ... --resume`; journal failed at copy, the checkpoint equal to the rows in the "
                 f"target; that command exited 0, verified",
             rows_lost=lost)


@pytest.fixture(scope="module")
def private_server() -> Iterator[cluster.Cluster]:
    """A PostgreSQL of this module's own, on a port of its own, so restarting it disturbs nobody."""
    with private_cluster("wizard-restart-pg-") as server:
        yield server


def test_target_server_restarted_mid_copy_then_resume(source: Path, private_server: cluster.Cluster, tmp_path: Path,
                                                      processes: list, survived) -> None:
    name = f"wizard_restart_{uuid.uuid4().hex[:8]}"
    fetch(private_server.url, f'CREATE DATABASE "{name}"')
    url = make_url(private_server.url).set(database=name).render_as_string(hide_password=False)
    began = fetch(url, "SELECT pg_postmaster_start_time()")[0][0]
    state = tmp_path / "state"
    proc, err = start(migrate_args(source, url, state), tmp_path, processes)
    wait_mid_executions(url, lambda: proc.poll() is None, "wizard migrate")
    # A crash-and-restart of the server (immediate: no shutdown checkpoint, asynchronous commits may be lost).
    restarted = private_server.ctl("-m", "immediate", "restart")
    assert restarted.returncode == 0, restarted.stderr + private_server.tail()
    proc.wait(timeout=LIMIT)
    stderr = err.read_text()
    assert fetch(url, "SELECT pg_postmaster_start_time()")[0][0] > began  # it really went away and came back
    assert proc.returncode == 1, stderr[-3000:]
    line = assert_lost_connection_line(stderr)
    run = load_run(state)
    assert run.state() == FAILED
    assert [r["step"] for r in run.records() if r["kind"] == "step_failed"] == ["copy"]
    # The chunks committed last may be gone (the copy commits asynchronously), each with its checkpoint.
    assert_checkpoint_intact(url, at_least=0)

    run, lost = resume_and_count_lost(resume_command(line, url), state, source, url)
    assert lost == 0
    survived(fault="the target PostgreSQL restarted mid-copy of executions (pg_ctl restart -m immediate)",
             did=f"exit {proc.returncode}, one line: `copy: lost the connection to the target (...): resume with: "
                 f"wizard migrate ... --resume`; journal failed at copy; after recovery the checkpoint equal to the "
                 f"rows in the target (a chunk committed asynchronously may be lost, always with its checkpoint); that command "
                 f"exited 0, verified",
             rows_lost=lost)


# --- signals to the headless CLI ------------------------------------------------------------------------------


def test_sigint_to_the_cli_stops_after_the_chunk_exits_130_and_resume_verifies(source: Path, pg_url: str,
                                                                               tmp_path: Path, processes: list,
                                                                               survived) -> None:
    state = tmp_path / "state"
    proc, err = start(migrate_args(source, pg_url, state), tmp_path, processes)
    seen = wait_mid_executions(pg_url, lambda: proc.poll() is None, "wizard migrate")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=LIMIT)
    stderr = err.read_text()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "stopping after the current chunk" in stderr
    line = first_line(stderr)
    assert line.startswith("stopped after a checkpoint in table executions (Ctrl+C): resume with: wizard migrate "), line
    run = load_run(state)
    assert run.state() == INTERRUPTED
    copied = assert_checkpoint_intact(pg_url)
    # The chunk in hand when the signal came (and at most one the poll did not see yet), no more.
    assert seen <= copied <= seen + 2 * CHUNK_ROWS, (seen, copied)

    run, lost = resume_and_count_lost(resume_command(line, pg_url), state, source, pg_url)
    assert lost == 0
    survived(fault="SIGINT (Ctrl+C) to `wizard migrate` mid-copy of executions",
             did=f"stopped after the chunk in hand, exit {proc.returncode}, last line: `stopped after a checkpoint in "
                 f"table executions (Ctrl+C): resume with: wizard migrate ... --resume`; journal interrupted; that "
                 f"command exited 0, verified",
             rows_lost=lost)


def alive(pane: Pane) -> Callable[[], bool]:
    return lambda: pane.exit_code() is None


def assert_stopped_at_a_checkpoint(state: Path, why: str) -> Run:
    run = load_run(state)
    assert run.state() == INTERRUPTED
    assert last_finish(run)["error"] == f"stopped after a checkpoint in table executions ({why})", last_finish(run)
    listed = wizard("status", "--json", "--state-dir", str(state))
    assert listed.returncode == 0, listed.stderr
    status = json.loads(listed.stdout.splitlines()[-1])
    assert [(r["id"], r["state"]) for r in status["runs"]] == [(run.id, INTERRUPTED)]
    return run


@needs_tmux
def test_sighup_to_the_cli_when_the_terminal_is_lost_stops_at_a_checkpoint(source: Path, pg_url: str,
                                                                           tmp_path: Path, panes, survived) -> None:
    """`wizard migrate` in a real terminal that goes away mid-copy (the SSH session lost): what it still has to
    print goes nowhere, and it must not turn the stop into a traceback."""
    state = tmp_path / "state"
    pane = panes([str(WIZARD), *migrate_args(source, pg_url, state)], tmp_path / "pane")
    wait_mid_executions(pg_url, alive(pane), "wizard migrate in a terminal")
    pane.hang_up()
    assert_output_loss_survived(pane.wait_exit(), state, source, pg_url, survived,
                                  "the terminal of `wizard migrate` lost mid-copy of executions (tmux kill-session: "
                                  "SIGHUP, the terminal gone)")


def assert_output_loss_survived(code: int, state: Path, source: Path, pg_url: str, survived, fault: str,
                                why: str = "terminal hung up") -> None:
    """The wizard whose output went stopped at a checkpoint with exit 130, and `--resume` finishes and verifies."""
    assert code == 130, f"exit {code}; the journal ends: {load_run(state).records()[-1]}"
    assert_stopped_at_a_checkpoint(state, why)
    assert_checkpoint_intact(pg_url)

    command = [str(WIZARD), *migrate_args(source, pg_url, state), "--resume"]
    run, lost = resume_and_count_lost(command, state, source, pg_url)
    assert lost == 0
    survived(fault=fault,
             did=f"stopped at a checkpoint, exit {code}; journal and `wizard status`: interrupted ({why}); "
                 f"`--resume` exited 0, verified",
             rows_lost=lost)


class DetachedTerminal:
    """A pseudo-terminal the wizard writes to that is not its controlling terminal (the wizard runs in a session
    of its own): closing it makes every write there fail with EIO and sends no SIGHUP, the order a lost SSH
    session can also arrive in (the terminal's writes fail before the signal is handled)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)  # a full terminal would stall the wizard
        self._reader.start()

    def _drain(self) -> None:
        while not self._closing.is_set():
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    os.read(self.master, 65536)
                except OSError:
                    return

    def close(self) -> None:
        self._closing.set()
        self._reader.join()
        os.close(self.master)


def test_the_cli_terminal_gone_without_a_sighup_stops_at_a_checkpoint(source: Path, pg_url: str, tmp_path: Path,
                                                                      processes: list, survived) -> None:
    state = tmp_path / "state"
    terminal = DetachedTerminal()
    proc = subprocess.Popen([str(WIZARD), *migrate_args(source, pg_url, state)], stdin=subprocess.DEVNULL,
                            stdout=terminal.slave, stderr=terminal.slave, start_new_session=True)
    processes.append(proc)
    os.close(terminal.slave)
    wait_mid_executions(pg_url, lambda: proc.poll() is None, "wizard migrate on a terminal")
    terminal.close()
    assert_output_loss_survived(proc.wait(timeout=LIMIT), state, source, pg_url, survived,
                                  "the terminal of `wizard migrate` gone mid-copy of executions with no SIGHUP (its "
                                  "writes fail with EIO first)")


def test_the_cli_output_pipe_closed_stops_at_a_checkpoint(source: Path, pg_url: str, tmp_path: Path,
                                                          processes: list, survived) -> None:
    """`wizard migrate --json | head`: the reader goes, the next write fails with EPIPE."""
    state = tmp_path / "state"
    proc = subprocess.Popen([str(WIZARD), *migrate_args(source, pg_url, state), "--json"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    processes.append(proc)
    assert proc.stdout.readline().startswith(b'{"event": "StepStarted"')
    os.set_blocking(proc.stdout.fileno(), False)

    def reading() -> bool:  # read what came so far, as `head` would until it has enough
        try:
            os.read(proc.stdout.fileno(), 65536)
        except BlockingIOError:
            pass
        return proc.poll() is None

    wait_mid_executions(pg_url, reading, "wizard migrate --json")
    proc.stdout.close()
    assert_output_loss_survived(proc.wait(timeout=LIMIT), state, source, pg_url, survived,
                                "the pipe `wizard migrate --json` writes to closed mid-copy of executions (its "
                                "reader gone: EPIPE)", why="output closed")


# --- signals to the TUI in a real terminal --------------------------------------------------------------------


@needs_tmux
@pytest.mark.parametrize("fault", ["SIGINT", "SIGHUP"])
def test_signal_to_the_tui_mid_copy_stops_at_a_checkpoint_and_headless_resume_verifies(
        fault: str, source: Path, pg_url: str, tmp_path: Path, panes, survived) -> None:
    state = tmp_path / "state"
    pane = panes([str(WIZARD), "tui", "--source", f"sqlite:///{source}", "--target", pg_url, "--state-dir",
                  str(state)], tmp_path / "pane")
    pane.wait_for(f"executions {EXECUTIONS:,}")  # the source read: Start's first choice is the move
    pane.send("Enter")  # Move to PostgreSQL
    pane.wait_for("step 1 of 7")
    pane.send("C-t")
    pane.wait_for("Ready.")
    pane.send("C-n")
    pane.wait_for("n starts the move")
    pane.send("n")
    pane.wait_for("Move now?")  # what `wizard migrate` asks
    pane.send("y")
    wait_mid_executions(pg_url, alive(pane), "the TUI")
    if fault == "SIGINT":
        os.kill(pane.pid, signal.SIGINT)  # kill -INT: Ctrl+C in the terminal is one of the app's keys
    else:
        pane.hang_up()
    code = pane.wait_exit()
    assert code == 130, f"exit {code}; the journal ends: {load_run(state).records()[-1]}"
    if fault == "SIGINT":  # the terminal stays: the shell is told where the run is and how to carry on
        said = pane.tmux("capture-pane", "-p", "-J", "-t", "w")  # -J: a line the terminal wrapped, whole
        assert "stopped: " in said and "--resume; or open the wizard again" in said, said
    assert_stopped_at_a_checkpoint(state, "terminal hung up" if fault == "SIGHUP" else "SIGINT")
    assert_checkpoint_intact(pg_url)

    command = [str(WIZARD), *migrate_args(source, pg_url, state), "--resume"]
    run, lost = resume_and_count_lost(command, state, source, pg_url)
    assert lost == 0
    how = "kill -INT of the wizard" if fault == "SIGINT" else "tmux kill-session: SIGHUP, the terminal gone"
    survived(fault=f"{fault} to the TUI in a real terminal mid-copy of executions ({how})",
             did=f"stopped at a checkpoint, exit {code}; journal and `wizard status`: interrupted; headless "
                 f"`wizard migrate --resume` exited 0, verified",
             rows_lost=lost)

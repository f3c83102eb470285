"""Exactly once: a move killed (kill -9) mid-copy and resumed equals an uninterrupted one; resume's refusals.

Ctrl+C, SIGHUP and the target going away mid-copy are in tests/faults/test_interrupts.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from move_helpers import checksums, executions_copied, fetch, sha256
from wizard import sample
from wizard.errors import BadInput, Interrupted, Refused
from wizard.events import Progress, StopRequest
from wizard.journal import FINISHED, INTERRUPTED, load_run
from wizard.move.run import MoveOptions, run_move
from wizard.urls import parse_url

WIZARD = Path(sys.executable).with_name("wizard")
BIG = 200_000


def _database(server: str) -> str:
    name = f"wizard_test_{uuid.uuid4().hex[:12]}"
    fetch(server, f'CREATE DATABASE "{name}"')
    return make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.build(tmp_path_factory.mktemp("big") / "engine.db", executions=BIG, workflows=500, users=50)


@pytest.fixture(scope="session")
def reference(big_db: Path, pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The target of an uninterrupted move of big_db: its checksums and sequence."""
    url = _database(pg_server)
    try:
        options = MoveOptions(parse_url(f"sqlite:///{big_db}"), parse_url(url),
                              state_dir=tmp_path_factory.mktemp("ref-state"), yes=True)
        asyncio.run(run_move(options))
        return {"sums": checksums(url), "seq": _next_id(url)}
    finally:
        name = make_url(url).database
        fetch(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _next_id(url: str) -> int:
    return fetch(url, "SELECT nextval(pg_get_serial_sequence('executions', 'id'))")[0][0]


def _start_and_wait_for_executions(args: list[str], url: str) -> subprocess.Popen:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        copied = executions_copied(url)
        if copied > 0:
            return proc
        if copied < 0 or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the copy of executions ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the copy of executions never started")


def _args(source: Path, url: str, state: Path) -> list[str]:
    return [str(WIZARD), "migrate", "--source", f"sqlite:///{source}", "--target", url, "--state-dir", str(state),
            "--yes"]


@pytest.mark.slow  # over 15 s: run by `pytest -m slow`
def test_kill_9_mid_executions_then_resume_equals_an_uninterrupted_move(big_db: Path, reference: dict, pg_url: str,
                                                                        tmp_path: Path) -> None:
    before = sha256(big_db)
    state = tmp_path / "state"
    proc = _start_and_wait_for_executions(_args(big_db, pg_url, state), pg_url)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    copied_at_kill = executions_copied(pg_url)
    assert 0 < copied_at_kill < BIG
    assert fetch(pg_url, "SELECT count(*) FROM executions")[0][0] == copied_at_kill  # the checkpoint is the truth
    run = load_run(state)
    assert run.summary()["state"] == INTERRUPTED  # its process is gone, no last record
    resumed = subprocess.run(_args(big_db, pg_url, state) + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert load_run(state).state() == FINISHED
    assert checksums(pg_url) == reference["sums"]
    assert _next_id(pg_url) == reference["seq"]
    assert sha256(big_db) == before


def _stopped_move(source: Path, url: str, state: Path) -> str:
    """A move stopped (StopRequest) after the first chunk of executions; returns its run id."""
    stop = StopRequest()

    def emit(event: object) -> None:
        if isinstance(event, Progress) and event.item == "executions" and event.done:
            stop.set("test")

    options = MoveOptions(parse_url(f"sqlite:///{source}"), parse_url(url), state_dir=state, yes=True, chunk_rows=50)
    with pytest.raises(Interrupted, match="resume with: wizard migrate .*--resume"):
        asyncio.run(run_move(options, emit, stop))
    return load_run(state).id


def test_resume_refuses_when_the_source_changed_since_the_run_began(engine_db: Path, pg_url: str,
                                                                   tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_id = _stopped_move(engine_db, pg_url, state)
    conn = sqlite3.connect(engine_db)  # the engine was started again against it
    conn.execute("UPDATE executions SET status = 'cancelled' WHERE id = 1")
    conn.commit()
    conn.close()
    options = MoveOptions(parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url), state_dir=state, yes=True,
                          resume=True)
    with pytest.raises(Refused, match=f"source file changed since run {run_id} began"):
        asyncio.run(run_move(options))


def test_resume_carries_on_in_process_with_the_same_policy(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    _stopped_move(engine_db, pg_url, state)
    options = MoveOptions(parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url), state_dir=state, yes=True,
                          resume=True, on_orphans="quarantine")
    with pytest.raises(Refused, match="--on-orphans abort: resume it with the same"):
        asyncio.run(run_move(options))
    options.on_orphans = None
    result = asyncio.run(run_move(options))
    assert result.state == FINISHED
    assert fetch(pg_url, "SELECT count(*), count(DISTINCT id), max(id) FROM executions")[0][:] == (300, 300, 300)
    records = load_run(state).records()
    assert [r["kind"] for r in records].count("run_resumed") == 1  # the refused attempt left no trace


def test_resume_with_nothing_to_resume_is_bad_input(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    options = MoveOptions(parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url), state_dir=tmp_path / "state",
                          yes=True, resume=True)
    with pytest.raises(BadInput, match="no unfinished move"):
        asyncio.run(run_move(options))


def test_report_json_of_a_resumed_run_counts_every_row_once(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    _stopped_move(engine_db, pg_url, state)
    options = MoveOptions(parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url), state_dir=state, yes=True,
                          resume=True)
    result = asyncio.run(run_move(options))
    report = json.loads(result.report_json.read_text())
    assert {t["table"]: t["copied"] for t in report["tables"]} == {"users": 5, "workflows": 20, "executions": 300,
                                                                  "settings": 1}


@pytest.mark.parametrize("schema, held, kept", [
    ("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)", "NULL, 'held ' || n", "n, 'kept ' || n"),
    # A key NULL in its second column sorts among the rows of its first: a checkpoint there must not skip them.
    ("CREATE TABLE t (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (a, b))", "n % 2, NULL, 'held ' || n",
     "n % 2, n, 'kept ' || n"),
])
def test_a_stop_among_rows_whose_key_is_null_resumes_without_losing_or_repeating_a_row(
        schema: str, held: str, kept: str, pg_url: str, tmp_path: Path) -> None:
    """SQLite lets a key that is not the rowid hold NULL; those rows are held (quarantined), and a checkpoint
    taken among them cannot say `key > NULL`: the resume must still hold each of them once and copy the rest."""
    source = tmp_path / "odd.db"
    conn = sqlite3.connect(source)
    conn.execute(schema)
    for rows, values in ((130, held), (70, kept)):
        conn.execute(f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {rows}) "
                     f"INSERT INTO t SELECT {values} FROM c")
    conn.commit()
    conn.close()
    state = tmp_path / "state"
    stop = StopRequest()

    def emit(event: object) -> None:
        if isinstance(event, Progress) and event.item == "t" and event.done:
            stop.set("test")

    options = MoveOptions(parse_url(f"sqlite:///{source}"), parse_url(pg_url), state_dir=state, yes=True,
                          chunk_rows=50, reflected=True, on_orphans="quarantine")
    with pytest.raises(Interrupted):
        asyncio.run(run_move(options, emit, stop))
    options.resume = True
    assert asyncio.run(run_move(options)).state == FINISHED
    lines = (state / "runs" / load_run(state).id / "quarantine" / "t.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["row"]["v"] for line in lines) == sorted(f"held {n}" for n in range(1, 131))
    assert fetch(pg_url, "SELECT count(*), count(DISTINCT v) FROM t")[0][:] == (70, 70)

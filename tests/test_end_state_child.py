"""The end state recorded by a child process (wizard.rollback.end_state_child), as a move does beside its
verification: the same file as recorded in the process itself, a failure said in one masked line, and a
child whose parent is gone quits without leaving a file behind."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from wizard.errors import StepError
from wizard.rollback import since
from wizard.rollback.end_state_child import record_end_state_in_child
from wizard.urls import parse_url


def _rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT tbl, key, digest FROM rows ORDER BY tbl, key").fetchall()
    finally:
        conn.close()


async def _fill(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE keyed (id bigint PRIMARY KEY, note text, at timestamp)")
        await conn.execute("CREATE TABLE loose (x int)")  # no key: kept as a multiset
        await conn.execute("INSERT INTO keyed SELECT i, 'note ' || i, timestamp '2024-01-01' + i * interval '1 s' "
                           "FROM generate_series(1, 3000) i")
        await conn.execute("INSERT INTO loose VALUES (1), (1), (2)")
    finally:
        await conn.close()


def test_the_child_records_what_the_process_itself_records(pg_url: str, tmp_path: Path) -> None:
    asyncio.run(_fill(pg_url))
    db = parse_url(pg_url)
    here, child = tmp_path / "here", tmp_path / "child"
    here.mkdir()
    child.mkdir()
    counts = asyncio.run(since.record_end_state(db, here))
    assert asyncio.run(record_end_state_in_child(db, child)) == counts == {"keyed": 3000, "loose": 3}
    assert _rows(child / since.END_STATE) == _rows(here / since.END_STATE)
    assert not since.unfinished_end_state(child).exists()


def test_a_failure_in_the_child_is_one_masked_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = parse_url(f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/nowhere")
    with pytest.raises(StepError) as raised:
        asyncio.run(record_end_state_in_child(db, tmp_path))
    said = raised.value.message
    assert said.startswith("recording the end state failed: ") and "\n" not in said
    assert "s3cret-pw" not in said
    assert not (tmp_path / since.END_STATE).exists() and not since.unfinished_end_state(tmp_path).exists()


def test_a_child_whose_parent_is_gone_quits_and_leaves_no_file(tmp_path: Path) -> None:
    """stdin closed, as a parent killed by kill -9 leaves it: the child, held on a server that never answers,
    quits at once, says nothing, and removes the file it had begun."""
    with socket.socket() as silent:  # takes the connection (the kernel's backlog), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://someone@127.0.0.1:{silent.getsockname()[1]}/nowhere"
        child = subprocess.Popen([sys.executable, "-m", "wizard.rollback.end_state_child"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        child.stdin.write(json.dumps({"db": url, "folder": str(tmp_path)}).encode() + b"\n")
        child.stdin.flush()
        unfinished = since.unfinished_end_state(tmp_path)
        while not unfinished.exists():  # the child has begun its file and waits for the server
            assert child.poll() is None, child.stderr.read()
        out, _ = child.communicate(timeout=60)  # closes its stdin first
    assert child.returncode == 1 and out == b""  # not the connect timeout's error, which would be said
    assert not unfinished.exists() and not (tmp_path / since.END_STATE).exists()

"""Issue 15, story 4: a real PgBouncer in transaction pooling mode in front of the target.

The move (stopped mid-copy and resumed through the pooler), the verification, the upgrade and the
rollbacks of both all go through it; the pre-flight names the direct URL; no advisory lock stays behind on a
pooled server connection; and a second run is refused while the first holds the target.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from move_helpers import fetch, tables_in
from pgbouncer import through
from wizard import sample
from wizard.errors import Interrupted, Refused
from wizard.events import Progress, StopRequest
from wizard.journal import FINISHED
from wizard.move.run import MoveOptions, run_move
from wizard.pooler import find_pooler
from wizard.target_lock import target_lock
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # whole moves through a PgBouncer started for them: `pytest -m slow` (CI runs it)

WIZARD = Path(sys.executable).with_name("wizard")
# Advisory locks any session holds in the database, pooled server connections included.
HELD = ("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND d.datname = current_database()")


def test_a_pooler_is_told_apart_from_the_server_itself(pg_url: str, pgbouncer: int) -> None:
    assert asyncio.run(find_pooler(parse_url(pg_url))) is None
    pooler = asyncio.run(find_pooler(parse_url(through(pg_url, pgbouncer))))
    assert pooler is not None
    assert pooler.direct is not None and pooler.direct.masked() == parse_url(pg_url).masked()


def test_story_4_a_move_through_pgbouncer_resumes_verifies_and_rolls_back(pg_url: str, pgbouncer: int,
                                                                          tmp_path: Path) -> None:
    source = sample.build(tmp_path / "engine.db", executions=2000, workflows=20, users=5)
    pooled, state = parse_url(through(pg_url, pgbouncer)), tmp_path / "state"
    stop = StopRequest()

    def emit(event: object) -> None:  # many small chunks: many transactions, each on any server connection
        if isinstance(event, Progress) and event.item == "executions" and event.done:
            stop.set("test")

    with pytest.raises(Interrupted, match="resume with: wizard migrate .*--resume"):
        asyncio.run(run_move(MoveOptions(parse_url(f"sqlite:///{source}"), pooled, state_dir=state, yes=True,
                                         chunk_rows=50), emit, stop))
    assert fetch(pg_url, HELD)[0][0] == 0  # the stopped run's lock went with its transaction

    result = asyncio.run(run_move(MoveOptions(parse_url(f"sqlite:///{source}"), pooled, state_dir=state, yes=True,
                                              resume=True, chunk_rows=50)))
    assert result.state == FINISHED and result.verification is not None and result.verification.ok
    totals = result.report.totals
    assert totals["quarantined"] == 0 and totals["copied"] == sum(result.preflight.rows.values())  # rows lost = 0
    (said,) = [c for c in result.preflight.checks if c.name == "pooler"]
    assert said.status == "warn" and f"connect to {parse_url(pg_url).masked()} directly" in said.reason
    assert fetch(pg_url, HELD)[0][0] == 0  # none left on a pooled server connection for its next client
    assert "wizard_move" not in tables_in(pg_url)  # dropped in the lock's transaction, which committed

    target = pooled.sync_str()
    for command in (["verify", "--source", f"sqlite:///{source}", "--target", target],
                    ["upgrade", "--db", target, "--yes", "--state-dir", str(state)],
                    ["rollback", "--last", "--yes", "--state-dir", str(state)],  # the upgrade
                    ["rollback", "--run", result.run_id, "--yes", "--state-dir", str(state)]):  # the move
        done = subprocess.run([str(WIZARD), *command], capture_output=True, text=True)
        assert done.returncode == 0, f"wizard {command[0]}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    assert tables_in(pg_url) == []


def test_a_second_run_through_the_pooler_is_refused_by_name(pg_url: str, pgbouncer: int) -> None:
    pooled = parse_url(through(pg_url, pgbouncer))

    async def both() -> None:
        async with target_lock(pooled, "wizard move run-A"):
            with pytest.raises(Refused, match="wizard move run-A .*holds database"):
                async with target_lock(pooled, "wizard move run-B"):
                    pass

    asyncio.run(both())
    assert fetch(pg_url, HELD)[0][0] == 0

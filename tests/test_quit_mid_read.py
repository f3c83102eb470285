"""Ctrl+Q while a screen still reads the SQLite source: the wizard leaves, and its process ends.

The Start screen's read was cancelled twice on the way out (its screen's unmount, then the app's exit), the
second time while SQLAlchemy closed the aiosqlite connection it had interrupted: that close waited for
aiosqlite's worker thread, which the first had stopped, and the process never ended (1 in 3 quits of the
demo's terminal test). The child below is the wizard on a real file, its read held long by one slow query
on the read's own connection; it must end by itself, and leave the source as it was: quit on the Start
screen, or on the screen after it, whose Start screen cancelled its read on leaving.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wizard.backup import sha256_file

QUIT_MID_READ = r"""
import asyncio, sys
from pathlib import Path
from sqlalchemy import text
import wizard.move.plan as plan
from screens.state import Session
from wizard.app import WizardApp

SLOW = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000000) SELECT count(*) FROM n"
reading = asyncio.Event()
row_counts = plan.row_counts

async def slow_row_counts(conn, names):
    reading.set()
    await conn.execute(text(SLOW))
    return await row_counts(conn, names)

plan.row_counts = slow_row_counts

async def main():
    app = WizardApp(Session(state_dir=Path(sys.argv[2]), source_text=sys.argv[1]))
    async with app.run_test() as pilot:
        await reading.wait()
        await pilot.pause(0.05)  # the slow query under way in aiosqlite's thread
        await pilot.press(*sys.argv[3:])  # Enter: on to the Runs screen, whose Start screen cancels its read
        print("quit", flush=True)
        await pilot.press("ctrl+q")
        while app.is_running:  # left by itself, as it does in a terminal
            await asyncio.sleep(0.05)
    print("left", app.return_code, flush=True)

asyncio.run(main())
print("exited", flush=True)
"""


@pytest.mark.parametrize("keys", [[], ["enter"]], ids=["on-the-start-screen", "on-the-next-screen"])
def test_ctrl_q_while_the_start_screen_reads_the_source_ends_the_process(engine_db: Path, tmp_path: Path,
                                                                          keys: list[str]) -> None:
    before = sha256_file(engine_db)
    child = subprocess.Popen([sys.executable, "-c", QUIT_MID_READ, f"sqlite:///{engine_db}", str(tmp_path / "state"),
                              *keys],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"the wizard did not end after Ctrl+Q mid-read: {out!r} {err[-2000:]!r}") from None
    assert child.returncode == 0, err[-2000:]
    assert out.split() == ["quit", "left", "0", "exited"]
    assert err == ""  # no thread's traceback either
    assert sha256_file(engine_db) == before

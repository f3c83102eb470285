"""The wizard in a real terminal: tmux at 80x24, keys by send-keys, the screen by capture-pane.

What the Pilot cannot show: the console script starts, draws in a real terminal, and
takes keys as a terminal sends them (Ctrl+letters, Escape, Enter) -- over SSH, in tmux.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

import asyncpg
import pytest
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from tmux_pane import needs_tmux
from wizard import demo
from wizard.urls import parse_url

WIZARD = Path(sys.executable).with_name("wizard")
pytestmark = needs_tmux


def _tables(admin: str, database: str) -> list[str]:
    async def ask() -> list[str]:
        conn = await asyncpg.connect(make_url(admin).set(database=database).render_as_string(hide_password=False))
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        finally:
            await conn.close()

    return asyncio.run(ask())


def _drop(admin: str, database: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def test_demo_to_a_verified_move_and_back_with_ctrl_r(tmp_path: Path, pg_server: str, panes,
                                                       request: pytest.FixtureRequest) -> None:
    """The README's first command, as a newcomer presses through it: 80x24, keys only."""
    if pg_server != demo.LOCAL_SERVER:
        pytest.skip("the demo looks for PostgreSQL on 127.0.0.1:5432 first; this machine has none")
    folder = tmp_path / "demo"
    pane = panes([str(WIZARD), "demo", "--executions", "3000", "--folder", str(folder)], tmp_path / "pane")

    screen = pane.wait_for("Move to PostgreSQL")
    target = pane.wait_for_match(r"wizard_demo_[0-9a-f]{8}").group(0)  # named in the demo's banner
    request.addfinalizer(lambda: _drop(pg_server, target))
    pane.wait_for("3,000")  # the demo database: its tables with row counts
    env_before = (folder / ".env").read_bytes()
    source_sha = hashlib.sha256((folder / "engine.db").read_bytes()).hexdigest()
    assert all(len(line) <= 80 for line in screen.splitlines())

    pane.send("Enter")  # Move to PostgreSQL
    pane.wait_for("step 1 of 7")
    pane.send("C-t")
    pane.wait_for("Ready.")
    pane.send("C-n")
    pane.wait_for("n starts the move")
    pane.send("n")
    pane.wait_for("Move now?")  # what `wizard migrate` asks
    pane.send("y")
    pane.wait_for_match("Backup (taken|proven)")  # taken: its integrity_check runs beside the copy
    pane.send("n")
    pane.wait_for("step 4 of 7")
    pane.send("n")
    pane.wait_for("Pause")  # in the footer while the run goes on
    pane.wait_for("Phase: done")  # not the last step's title, once all three are finished
    # n goes on once the whole run has ended (the verification, the end state and the report come after
    # the copy's phases): a key sent before then is greyed out and does nothing.
    pane.wait_for("Copied and verified row by row")
    pane.send("n")
    pane.wait_for("Every row accounted for")
    pane.send("n")
    pane.wait_for("step 7 of 7")
    pane.send("a")
    pane.wait_for("Rewrite DATABASE_URL")
    pane.send("y")
    pane.wait_for("Switched.")
    moved_to = parse_url(dotenv_values(folder / ".env")["DATABASE_URL"]).database
    assert moved_to == target
    assert set(_tables(pg_server, moved_to)) >= {"executions", "settings", "users", "workflows"}

    pane.send("d")  # Done: the Start screen, where Ctrl+R still reaches the run
    pane.wait_for("Last run")
    pane.send("C-r")
    pane.wait_for("Roll back?")
    pane.send("y")
    pane.wait_for("rolled back and checked")
    pane.wait_for_match(r"\d{8}-\d{6}-[0-9a-f]{6} +move +rolled back")  # the runs table's cells whole
    assert (folder / ".env").read_bytes() == env_before
    assert hashlib.sha256((folder / "engine.db").read_bytes()).hexdigest() == source_sha
    assert _tables(pg_server, moved_to) == []

    pane.send("Escape")
    pane.wait_for("Move to PostgreSQL")
    # The Start screen reads the source again (.env names the file once more): quit once it has. A Ctrl+Q
    # while it read hung the wizard in 1 of 3 runs here (left open: see the stop's note).
    pane.wait_for("3,000")
    pane.send("C-q")
    assert pane.wait_exit() == 0
    pane.wait_for("dropped the demo database")  # a throwaway: nothing left on the server

"""The wizard in a real terminal: tmux at 80x24, keys by send-keys, the screen by capture-pane.

What the Pilot cannot show: the console script starts, draws in a real terminal, and
takes keys as a terminal sends them (Ctrl+letters, Escape, Enter) -- over SSH, in tmux.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from wizard import demo
from wizard.urls import parse_url

TMUX = shutil.which("tmux")
WIZARD = Path(sys.executable).with_name("wizard")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")


class Pane:
    """One detached tmux session of 80x24 on a private server."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.socket = f"wizard-test-{uuid.uuid4().hex[:8]}"
        self._tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24", "-c", str(cwd),
                   f"{command}; echo EXIT=$?; sleep 600")

    def _tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def send(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "w", key)

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "w")

    def wait_for(self, wanted: str) -> str:
        """Poll the screen until `wanted` shows; the limit only bounds a hung test, it asserts no speed."""
        return self.wait_for_true(lambda screen: wanted in screen, wanted)

    def wait_for_match(self, pattern: str) -> re.Match:
        found = re.search(pattern, self.wait_for_true(lambda screen: re.search(pattern, screen) is not None, pattern))
        assert found is not None
        return found

    def wait_for_true(self, test, what: str, limit: float = 120.0) -> str:
        deadline = time.monotonic() + limit
        while True:
            screen = self.text()
            if test(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{what!r} never showed; the screen was:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def pane_factory():
    panes: list[Pane] = []

    def make(command: str, cwd: Path) -> Pane:
        panes.append(Pane(command, cwd))
        return panes[-1]

    yield make
    for pane in panes:
        pane.close()


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


def test_demo_to_a_verified_move_and_back_with_ctrl_r(tmp_path: Path, pg_server: str, pane_factory,
                                                       request: pytest.FixtureRequest) -> None:
    """The README's first command, as a newcomer presses through it: 80x24, keys only."""
    if pg_server != demo.LOCAL_SERVER:
        pytest.skip("the demo looks for PostgreSQL on 127.0.0.1:5432 first; this machine has none")
    folder = tmp_path / "demo"
    pane = pane_factory(f"{WIZARD} demo --executions 3000 --folder {folder}", tmp_path)

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
    pane.wait_for("Backup proven")
    pane.send("n")
    pane.wait_for("step 4 of 7")
    pane.send("n")
    pane.wait_for("row counts match")
    pane.wait_for("Phase: done")  # not the last step's title, once all three are finished
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

    pane.send("C-r")
    pane.wait_for("Roll back?")
    pane.send("y")
    pane.wait_for("rolled back and checked")
    assert (folder / ".env").read_bytes() == env_before
    assert hashlib.sha256((folder / "engine.db").read_bytes()).hexdigest() == source_sha
    assert _tables(pg_server, moved_to) == []

    pane.send("Escape")
    pane.wait_for("Move to PostgreSQL")
    pane.send("C-q")
    assert "dropped the demo database" in pane.wait_for("EXIT=0")  # a throwaway: nothing left on the server

"""A real terminal for the tests: a detached tmux session of 80x24 on a private tmux server.

Keys go in by send-keys and the screen comes back by capture-pane. The pane's first process is HOLDER, as
the operator's login shell would be: it runs the command on the terminal, passes the hang-up on to it when
the terminal goes (an interactive shell sends its jobs SIGHUP), records the command's pid and exit status
(which nothing else outlives the terminal to tell), and keeps the terminal open afterwards, so that what the
command printed last can still be read.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")
LIMIT = 120.0  # bounds a hung test; asserts no speed

HOLDER = '''
import os, signal, subprocess, sys, time

folder, command = sys.argv[1], sys.argv[2:]
children, hung_up = [], []


def hang_up(*_):
    hung_up.append(True)
    for c in children:
        c.send_signal(signal.SIGHUP)


signal.signal(signal.SIGHUP, hang_up)
children.append(subprocess.Popen(command))
with open(os.path.join(folder, "pid.tmp"), "w") as f:
    f.write(str(children[0].pid))
os.replace(os.path.join(folder, "pid.tmp"), os.path.join(folder, "pid"))
code = children[0].wait()
with open(os.path.join(folder, "rc.tmp"), "w") as f:
    f.write(str(code))
os.replace(os.path.join(folder, "rc.tmp"), os.path.join(folder, "rc"))
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the terminal stays for capture-pane until it goes
if not hung_up:
    time.sleep(600)
'''


class Pane:
    """`command` in a new 80x24 terminal; `folder` is its working directory and holds the HOLDER's records."""

    def __init__(self, command: list[str], folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        holder = folder / "holder.py"
        holder.write_text(HOLDER)
        self.socket = f"wizard-test-{uuid.uuid4().hex[:8]}"
        line = shlex.join([sys.executable, str(holder), str(folder), *command])
        self.tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24", "-c", str(folder), f"exec {line}")
        self.screen = ""

    def tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=30).stdout

    def send(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "w", key)

    def text(self) -> str:
        self.screen = self.tmux("capture-pane", "-p", "-t", "w")
        return self.screen

    def wait_for(self, wanted: str) -> str:
        """Poll the screen until `wanted` shows; fails if the command exits first."""
        return self.wait_for_true(lambda screen: wanted in screen, wanted)

    def wait_for_match(self, pattern: str) -> re.Match:
        found = re.search(pattern, self.wait_for_true(lambda screen: re.search(pattern, screen) is not None, pattern))
        assert found is not None
        return found

    def wait_for_true(self, test: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + LIMIT
        while not test(self.text()):
            if self.exit_code() is not None:
                time.sleep(0.5)  # what it printed last may still be on its way through tmux
                if test(self.text()):
                    break
                pytest.fail(f"{what!r} never showed (exit {self.exit_code()}); the screen was:\n{self.screen}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what!r} never showed; the screen was:\n{self.screen}")
            time.sleep(0.1)
        return self.screen

    @property
    def pid(self) -> int:
        """The command's process (the holder's child)."""
        deadline = time.monotonic() + LIMIT
        while not (self.folder / "pid").exists():
            assert time.monotonic() < deadline, "the command never started in the pane"
            time.sleep(0.05)
        return int((self.folder / "pid").read_text())

    def exit_code(self) -> int | None:
        rc = self.folder / "rc"
        return int(rc.read_text()) if rc.exists() else None

    def wait_exit(self) -> int:
        deadline = time.monotonic() + LIMIT
        while (code := self.exit_code()) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"the command never exited; the screen was:\n{self.screen}")
            time.sleep(0.05)
        return code

    def hang_up(self) -> None:
        """The terminal goes away, as when the SSH session is lost: the pane's first process gets SIGHUP."""
        self.tmux("kill-session", "-t", "w")

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def panes() -> Iterator[Callable[[list[str], Path], Pane]]:
    """Makes Panes; at the end, a command still running (a failed test) is killed and every terminal closed."""
    made: list[Pane] = []

    def make(command: list[str], folder: Path) -> Pane:
        made.append(Pane(command, folder))
        return made[-1]

    yield make
    for pane in made:
        pid = pane.folder / "pid"
        if pane.exit_code() is None and pid.exists():
            try:
                os.kill(int(pid.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
        pane.close()

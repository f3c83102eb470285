"""What the move's report says to do after it (a view it did not make in the target, and how to make it), said
by the TUI as `wizard migrate` prints it: the Finish screen lists the report's notes (commands.move_notes) and
where the report is. The pre-flight check points to "the report" for what to do; the TUI never said where."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from move_helpers import fetch
from tui_support import make_app, press, screen_text, settle
from wizard import commands, sample

WIZARD = str(Path(sys.executable).with_name("wizard"))


def flat(text: str) -> str:
    """Without whitespace: a long line wraps at spaces on the terminal, a path at its separators on the screen."""
    return "".join(text.split())


def with_a_view(path: Path) -> Path:
    sample.build(path, executions=50, workflows=3, users=2)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW recent_runs AS SELECT id, status FROM executions")
    return path


async def test_the_finish_screen_says_the_moves_notes_as_the_cli_prints_them(tmp_path: Path, pg_url: str,
                                                                             other_pg_url: str) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "tui").mkdir()
    a, b = with_a_view(tmp_path / "cli" / "engine.db"), with_a_view(tmp_path / "tui" / "engine.db")
    moved = await asyncio.to_thread(subprocess.run, [WIZARD, "migrate", "--source", f"sqlite:///{a}", "--target",
                                                     pg_url, "--yes", "--state-dir", str(tmp_path / "cli-state")],
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert moved.returncode == 0, moved.stderr
    cli = flat(moved.stdout)

    app = make_app(tmp_path / "tui-state", source_text=f"sqlite:///{b}", target_text=other_pg_url)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n", "y")
        assert app.session.log.state == "done", app.session.log.error
        await press(pilot, "n", "n", "n", "n")  # Schema, Copy, Verify, Finish
        shown = flat(screen_text(app))
        result = app.session.log.result
    notes = commands.move_notes(result)
    (view,) = [n for n in notes if "recent_runs" in n]
    assert flat(view) in cli, cli
    assert flat(view) in shown, shown
    assert flat(f"Report: {result.report_md}") in shown, shown
    assert view in result.report_md.read_text()
    for url in (pg_url, other_pg_url):
        assert await asyncio.to_thread(fetch, url, "SELECT viewname FROM pg_views WHERE viewname = 'recent_runs'") == []

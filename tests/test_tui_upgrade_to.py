"""`wizard upgrade --to REV` by keys: the Schema screen's t stops the upgrade at an earlier revision than head.
Both faces, on copies of one 1.0.0 file, leave the same rows at the same revision, and the same journal."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from test_faces_agree import journal_steps, rows_of
from tui_support import make_app, press, screen_text, settle
from wizard import sample
from wizard.journal import load_run

WIZARD = str(Path(sys.executable).with_name("wizard"))


async def test_an_upgrade_to_a_revision_before_head_by_keys_ends_as_the_clis(tmp_path: Path) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "tui").mkdir()
    a = sample.build(tmp_path / "cli" / "engine.db", executions=100, workflows=5, users=2)
    b = tmp_path / "tui" / "engine.db"
    shutil.copyfile(a, b)
    cli_state, tui_state = tmp_path / "cli-state", tmp_path / "tui-state"
    up = await asyncio.to_thread(subprocess.run, [WIZARD, "upgrade", "--db", f"sqlite:///{a}", "--to", "0003",
                                                  "--yes", "--state-dir", str(cli_state)],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert up.returncode == 0, up.stderr

    app = make_app(tui_state, source_text=f"sqlite:///{b}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter")  # Upgrade in place: to head, 0004
        assert "Goes to: 0004" in screen_text(app), screen_text(app)
        await press(pilot, "t", "t")  # head -> 0002 -> 0003
        shown = screen_text(app)
        assert "Goes to: 0003" in shown and "0004  " not in shown, shown
        await press(pilot, "a")
        assert "to 0003." in " ".join(app.screen.question.split())
        await press(pilot, "y")
        assert app.session.log.state == "done", app.session.log.error
        # Where the database is now, not where it was before the upgrade (nor the baseline note: recorded)
        shown = screen_text(app)
        assert "Now: 0003   (was 0001)" in shown and "Goes to" not in shown and "baseline first" not in shown, shown
        # Applied: neither key acts again on this screen, so the footer hides both (greyed says "later").
        keys = [str(k.description) for k in app.screen.query("FooterKey")]
        assert app.screen.check_action("apply", ()) is False and "Apply" not in keys, keys
        assert app.screen.check_action("upgrade_to", ()) is False

    assert rows_of(b)["alembic_version"] == [("0003",)]
    assert rows_of(a) == rows_of(b)
    assert journal_steps(load_run(tui_state).folder) == journal_steps(load_run(cli_state).folder)

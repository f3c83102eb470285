"""After an upgrade in place, the TUI says what each data revision did to the rows, as `wizard upgrade` prints it
(commands.upgrade_counts): how many it read, changed, and left as they were because their JSON does not parse."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from engine_data import write
from test_faces_agree import rows_of
from tui_support import make_app, press, screen_text, settle
from wizard import commands, sample
from wizard.journal import load_run

WIZARD = str(Path(sys.executable).with_name("wizard"))


async def test_the_rows_each_data_revision_changed_are_said_by_both_faces(tmp_path: Path) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "tui").mkdir()
    a = sample.build(tmp_path / "cli" / "engine.db", executions=100, workflows=5, users=2)
    await asyncio.to_thread(write, f"sqlite:///{a}", "UPDATE executions SET state = '{not json' WHERE id = 1")
    b = tmp_path / "tui" / "engine.db"
    shutil.copyfile(a, b)
    up = await asyncio.to_thread(subprocess.run, [WIZARD, "upgrade", "--db", f"sqlite:///{a}", "--yes", "--state-dir",
                                                  str(tmp_path / "cli-state")],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert up.returncode == 0, up.stderr
    cli = " ".join(up.stdout.split())

    app = make_app(tmp_path / "tui-state", source_text=f"sqlite:///{b}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter", "a", "y")
        assert app.session.log.state == "done", app.session.log.error
        shown = " ".join(screen_text(app).split())
        result = app.session.log.result
    said = commands.upgrade_counts(result)
    assert any("invalid_json 1" in counts for _, counts in said), said
    for label, counts in said:
        assert f"{label} {counts}" in cli, cli
        assert f"{label}: {counts}" in shown, shown
    assert rows_of(a) == rows_of(b)
    assert load_run(tmp_path / "tui-state").state() == "finished"

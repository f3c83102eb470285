"""`wizard rollback` lists what the TUI's confirmation lists: with rows written since the run, the path that keeps
them, and the other choice, restoring the backup anyway (the confirmation's r, the CLI's --restore-backup), with
what that loses and where it saves it first."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from engine_data import write
from test_faces_agree import rows_of
from wizard import commands, sample
from wizard.journal import load_run

WIZARD = str(Path(sys.executable).with_name("wizard"))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([WIZARD, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=300)


async def test_rollback_names_the_restore_backup_choice_the_tui_offers(tmp_path: Path) -> None:
    db = sample.build(tmp_path / "engine.db", executions=100, workflows=5, users=2)
    state = tmp_path / "state"
    assert (await asyncio.to_thread(cli, "upgrade", "--db", f"sqlite:///{db}", "--yes", "--state-dir", str(state), cwd=tmp_path)).returncode == 0
    await asyncio.to_thread(write, f"sqlite:///{db}", "INSERT INTO executions (id, workflow_id, status, state) SELECT 900 + id, workflow_id, "
                             "'new', '{\"nodes\": []}' FROM executions WHERE id <= 3")
    before = rows_of(db)

    said = await asyncio.to_thread(cli, "rollback", "--last", "--state-dir", str(state), cwd=tmp_path)
    assert said.returncode == 3, said.stderr  # no terminal to ask on: refused, nothing undone
    plan = await commands.rollback_plan(load_run(state))
    alternative = commands.rollback_alternative(plan)
    assert alternative is not None  # what the TUI's confirmation offers as r
    shown = " ".join(said.stdout.split())
    assert " ".join(plan.path().split()) in shown, shown
    assert " ".join(alternative.path().split()) in shown, shown
    assert "--restore-backup" in shown, shown
    assert rows_of(db) == before

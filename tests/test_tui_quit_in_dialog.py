"""Ctrl+Q with a confirmation open leaves the wizard on the first press, and the unanswered question has
written nothing. A dialog is modal: Textual keeps every app key that is not a priority one from it, so Ctrl+Q did
nothing until the question was answered (seen in tmux at 80x24 on the upgrade's question)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from screens.confirm import Confirm
from tui_support import make_app, press, settle
from wizard import commands
from wizard.journal import list_runs


async def left(app, seconds: float = 10) -> bool:
    """Whether the app ends by itself within `seconds`, as it does in a terminal."""
    for _ in range(int(seconds / 0.05)):
        if not app.is_running:
            return True
        await asyncio.sleep(0.05)
    return not app.is_running


@pytest.mark.parametrize("keys, upgraded_first", [
    (["down", "enter", "a"], False),  # Upgrade in place, Apply: the upgrade's question
    (["ctrl+r"], True),  # after an upgrade: the rollback's question
], ids=["upgrade-question", "rollback-question"])
async def test_ctrl_q_with_a_question_open_leaves_at_once_and_writes_nothing(
        tmp_path: Path, engine_db: Path, keys: list[str], upgraded_first: bool) -> None:
    state = tmp_path / "state"
    if upgraded_first:
        await commands.upgrade(commands.parse_url(f"sqlite:///{engine_db}"), None, state)
    before, runs_before = engine_db.read_bytes(), [(r.id, r.journal_path.read_bytes()) for r in list_runs(state)]
    app = make_app(state, source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, *keys)
        assert isinstance(app.screen, Confirm), app.screen
        await pilot.press("ctrl+q")
        assert await left(app), "Ctrl+Q with a question open did not leave"
    assert app.return_code == 0
    assert engine_db.read_bytes() == before
    assert [(r.id, r.journal_path.read_bytes()) for r in list_runs(state)] == runs_before

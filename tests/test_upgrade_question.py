"""Before an upgrade writes, both faces ask the one question (commands.upgrade_question): the database, from and
to, the backup first, how the revisions go in and each step. A no changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from screens.confirm import Confirm
from test_move_question import _on_a_terminal
from tui_support import make_app, press, screen_text, settle
from wizard import commands


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_the_upgrade_asks_the_same_question_on_both_faces(tmp_path: Path, engine_db: Path) -> None:
    before = sha256(engine_db)
    source = f"sqlite:///{engine_db}"
    question = commands.upgrade_question(await commands.upgrade_plan(commands.parse_url(source)))
    assert "in one transaction" in question and "record the 1.0.0 baseline" in question

    code, said = await asyncio.to_thread(_on_a_terminal, ["upgrade", "--db", source, "--state-dir",
                                                          str(tmp_path / "cli-state")], b"n\n")
    assert code == 3, said
    assert " ".join(question.split()) in " ".join(said.split()), said

    app = make_app(tmp_path / "tui-state", source_text=source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter", "a")  # Upgrade in place, apply: it asks first
        assert isinstance(app.screen, Confirm), screen_text(app)
        assert app.screen.question.startswith(question), app.screen.question
        await press(pilot, "n")
        assert app.session.log.state == "waiting"
    assert sha256(engine_db) == before  # both said no: nothing changed

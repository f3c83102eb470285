"""The TUI's upgrade confirmation says what `wizard upgrade` says before it asks, from the same plan
(commands.upgrade_plan): where the database starts (a 1.0.0 database: no revision recorded, its baseline recorded
first), where it goes, and how the revisions are applied; on MySQL/MariaDB, that each is committed on its own and
what a failure between two leaves."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from engine_data import build_1_0_0, read
from tui_support import make_app, press, screen_text, settle
from wizard import commands
from wizard.journal import list_runs

WIZARD = str(Path(sys.executable).with_name("wizard"))


def tables(url: str) -> set[str]:
    return {r[0] for r in read(url, "SHOW TABLES")}


async def test_the_upgrade_question_of_a_mariadb_database_is_the_clis(tmp_path: Path, mysql_url: str,
                                                                        engine_db: Path) -> None:
    await asyncio.to_thread(build_1_0_0, mysql_url, engine_db)
    before = await asyncio.to_thread(tables, mysql_url)
    plan = await commands.upgrade_plan(commands.parse_url(mysql_url))
    said = await asyncio.to_thread(subprocess.run, [WIZARD, "upgrade", "--db", mysql_url, "--state-dir",
                                                    str(tmp_path / "cli-state")],
                                   capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert said.returncode == 3, said.stderr  # no terminal to ask on: refused
    cli = " ".join(said.stdout.split())
    assert f"from {commands.upgrade_start(plan)} to {plan.target}" in cli, cli
    assert " ".join(plan.how.split()) in cli, cli

    app = make_app(tmp_path / "state", source_text=mysql_url)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter", "a")  # Upgrade in place; Apply asks first
        assert "Upgrade?" in screen_text(app)
        shown = " ".join(app.screen.question.split())  # the dialog's text, as its Wrapped draws it
        assert f"from {commands.upgrade_start(plan)} to {plan.target}" in shown, shown
        assert " ".join(plan.how.split()) in shown, shown
        await press(pilot, "n")  # no: nothing happens
        assert app.session.log.state == "waiting"
    assert await asyncio.to_thread(tables, mysql_url) == before  # no alembic_version: still 1.0.0
    assert list_runs(tmp_path / "state") == []

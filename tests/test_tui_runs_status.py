"""The Runs screen says of each run what `wizard status` says: its state as the journal and its process tell it
(a run whose process is gone is interrupted, not running), how many steps it finished, and where and why it
failed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui_support import make_app, press, screen_text, settle
from wizard import commands, sample
from engine_data import read, write
from wizard.errors import Refused, WizardError
from wizard.journal import list_runs

WIZARD = str(Path(sys.executable).with_name("wizard"))


def status_json(state: Path) -> dict[str, dict]:
    done = subprocess.run([WIZARD, "status", "--state-dir", str(state), "--json"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=True)
    return {r["id"]: r for r in json.loads(done.stdout)["runs"]}


async def test_runs_screen_says_what_wizard_status_says(tmp_path: Path, pg_url: str) -> None:
    db = sample.build_dirty(tmp_path / "dirty.db", executions=200)
    state = tmp_path / "state"
    # A move refused by its checks (abort, and rows PostgreSQL will not take): a failed run.
    with pytest.raises(Refused):
        await commands.migrate(commands.MoveOptions(source=commands.parse_url(f"sqlite:///{db}"),
                                                    target=commands.parse_url(pg_url), state_dir=state, yes=True))
    # A run whose process ended with no last record (kill -9, a lost machine): a child begins it and is gone.
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", "import sys; from pathlib import Path; "
                                             "from wizard.journal import new_run; new_run(Path(sys.argv[1]), 'upgrade')",
                                             str(state)], check=True)
    runs = list_runs(state)
    (failed,) = [r for r in runs if r.journey == "move"]
    (gone,) = [r for r in runs if r.journey == "upgrade"]
    said = status_json(state)
    assert (said[failed.id]["state"], said[failed.id]["failed_step"]) == ("failed", "preflight")
    assert said[gone.id]["state"] == "interrupted"

    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter")  # Roll back a run: the Runs screen
        shown = screen_text(app)
        gone_row = next(line for line in shown.splitlines() if gone.id in line)
        assert "interrupted" in gone_row and "running" not in gone_row, shown
        await press(pilot, "home" if runs[-1] == failed else "down")  # the failed move (newest first)
        shown = " ".join(screen_text(app).split())
        assert "failed at preflight" in shown, shown
        assert "will not take as they are" in shown, shown  # why, as the journal has it
    assert list_runs(state) == runs  # looking changed nothing


async def test_a_run_whose_rollback_failed_is_said_so_by_both_faces(tmp_path: Path, pg_url: str) -> None:
    db = sample.build(tmp_path / "engine.db", executions=50, workflows=5, users=2)
    state = tmp_path / "state"
    moved = await commands.migrate(commands.MoveOptions(source=commands.parse_url(f"sqlite:///{db}"),
                                                        target=commands.parse_url(pg_url), state_dir=state, yes=True))
    # Another object the operator made on a table the move created: the drop, once .env was restored, stops.
    await asyncio.to_thread(write, pg_url, "CREATE VIEW operators_view AS SELECT * FROM users")
    run = commands.find_run(state, moved.run_id)
    with pytest.raises(WizardError):
        await commands.rollback(run)
    said = status_json(state)[run.id]
    assert said["state"] == "rollback failed", said  # not "finished": the rollback stopped part-way
    assert said["failed_step"] == "rollback (drop_tables)" and "operators_view" in said["error"], said
    assert await asyncio.to_thread(tables_of, pg_url)  # the target still holds the move's tables

    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter")  # Roll back a run: the Runs screen
        shown = " ".join(screen_text(app).split())
        assert "rollback failed" in shown and "failed at rollback (drop_tables)" in shown, shown
        assert "operators_view" in shown, shown  # why, as the journal has it


def tables_of(url: str) -> list[str]:
    return [r[0] for r in read(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


async def test_after_its_rollback_the_runs_screen_no_longer_offers_to_roll_the_run_back(tmp_path: Path) -> None:
    """A key in the footer acts now, or is not shown: a run rolled back already never rolls back again."""
    db = sample.build(tmp_path / "engine.db", executions=30, workflows=3, users=2)
    before = db.read_bytes()
    state = tmp_path / "state"
    await commands.upgrade(commands.parse_url(f"sqlite:///{db}"), None, state)
    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter", "ctrl+r", "y")  # the Runs screen, its rollback, confirmed
        assert "rolled back and checked" in " ".join(screen_text(app).split()), screen_text(app)
        footer = screen_text(app).splitlines()[-1]
        assert "Roll back this run" not in footer, footer
        assert app.screen.check_action("rollback_selected", ()) is False
    assert db.read_bytes() == before and list_runs(state)[-1].state() == "rolled back"


async def test_ctrl_r_on_a_run_that_cannot_be_rolled_back_does_not_roll_back_the_sessions_run(tmp_path: Path) -> None:
    """On the Runs screen ctrl+r is the highlighted run's. For a run rolled back already it does not act, and the
    app's own ctrl+r (roll back what this session did) stood in for it: the confirmation of another run, the
    session's upgrade, opened under the operator's hand."""
    db = sample.build(tmp_path / "engine.db", executions=30, workflows=3, users=2)
    state = tmp_path / "state"
    earlier = await commands.upgrade(commands.parse_url(f"sqlite:///{db}"), "0002", state)
    await commands.rollback(commands.find_run(state, earlier.run_id))
    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter", "a", "y")  # this session's own upgrade
        assert app.session.log.state == "done", app.session.log.error
        upgraded = hashlib.sha256(db.read_bytes()).hexdigest()
        app.go("runs")
        await settle(pilot)
        await press(pilot, "down")  # newest first: the earlier run, rolled back already
        runs = app.screen
        assert runs.selected.id == earlier.run_id, screen_text(app)
        assert app.check_action("rollback", ()) is False and "Roll back" not in screen_text(app).splitlines()[-1]
        await press(pilot, "ctrl+r")
        await settle(pilot)
        assert app.screen is runs, screen_text(app)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == upgraded

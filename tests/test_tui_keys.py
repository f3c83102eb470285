"""Issue 12's operator at 80x24: a verified move in at most 8 keys, a rollback in 2 from the Start screen after
Done, footers that offer only keys that act (a dialog's own keys under a dialog), Pause and Cancel while the copy
runs, no stale or CLI words, names and paths that wrap only at their separators. Asserts what the databases and
.env hold afterwards, not only what the screen says.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from screens.backup import BackupScreen
from screens.copy import CopyScreen
from screens.widgets import fold_offsets
from test_tui_journeys import pg_counts, sha256
from tui_support import make_app, press, screen_text, settle
from wizard.envfile import database_url
from wizard.urls import parse_url

BANNER = "Demo: the sample database below, and an empty PostgreSQL database to move it to."


def footer(app) -> str:
    return screen_text(app).splitlines()[-1]


def whole(shown: str, value: str) -> bool:
    """`value` is on the screen, broken across lines (if at all) only right after a / _ . - @ : separator."""
    gap = r"(?: *[^\n]{0,4}? *\n[^\n]{0,12}? *)?"  # a line's end, and a dialog's border or scrollbar either side
    pattern = "".join(re.escape(ch) + (gap if ch in "/_.-@:" else "") for ch in value)
    return re.search(pattern, shown) is not None


@pytest.fixture
def engine_env(tmp_path: Path, engine_db: Path) -> Path:
    env = tmp_path / ".env"
    env.write_bytes(f'DATABASE_URL="sqlite+aiosqlite:///{engine_db}"\n'.encode()
                    + b"OPENAI_API_KEY=sk-test-0123456789abcdef\n")
    return env


async def test_a_verified_move_then_done_then_ctrl_r_y(tmp_path: Path, engine_db: Path, engine_env: Path,
                                                      pg_url: str) -> None:
    source_sha, env_before = sha256(engine_db), engine_env.read_bytes()
    target = parse_url(pg_url)
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env),
                   source_from_env=True, target_text=pg_url, banner=BANNER)
    keys: list[str] = []

    async def key(*pressed: str) -> str:
        keys.extend(pressed)
        await press(pilot, *pressed)
        return screen_text(app)

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "--yes" not in screen_text(app)
        await key("enter")
        shown = screen_text(app)  # every field says what the URL says
        for value in (target.url.host, str(target.url.port), target.database, target.url.username):
            assert re.search(rf"(Host|Port|Database|User) +{re.escape(value)}", shown), (value, shown)
        await key("ctrl+t")
        shown = await key("ctrl+n")
        assert whole(shown, target.masked()), shown  # in the checks' reasons, 44 columns wide
        await key("n", "y")  # the move, once confirmed: backup, schema, copy, verification
        assert app.session.log.state == "done", app.session.log.error
        assert isinstance(app.screen, BackupScreen)  # back to the checks never acts again once the run began
        assert app.screen.check_action("back", ()) is False and "Back" not in footer(app), footer(app)
        await key("n", "n")
        shown = screen_text(app)
        assert isinstance(app.screen, CopyScreen)
        assert "Copied and verified row by row" in shown and "row-by-row verification" not in shown, shown
        assert app.screen.check_action("pause", ()) is False and "Pause" not in footer(app)  # the copy is over
        shown = await key("n")
        assert "Every row accounted for" in shown, shown
        assert len(keys) <= 8, keys

        await key("n")
        shown = await key("a")  # the switch asks first; the dialog's footer offers its own keys only
        assert "Rewrite DATABASE_URL" in shown and "Yes" in footer(app), footer(app)
        assert not {"Switch", "Health", "Done", "Roll back"} & set(footer(app).split()), footer(app)
        shown = await key("y")
        assert parse_url(database_url(engine_env)).database == target.database
        assert whole(shown, target.database) and "Switched." in shown, shown
        assert app.screen.check_action("apply_env", ()) is False and "Switch .env" not in footer(app)

        shown = await key("d")  # Start: the source is what .env says now, the banner of the start is gone
        assert "DATABASE_URL in" in shown and whole(shown, target.database), shown
        assert "to move it to" not in shown, shown

        keys.clear()
        shown = await key("ctrl+r")
        assert "Roll back?" in shown and "Yes" in footer(app), shown
        run = app.session.last_run
        assert whole(shown, str(run.folder / "env.backup")), shown
        assert engine_env.read_bytes() != env_before  # asking changes nothing
        shown = await key("y")
        assert "rolled back and checked" in shown, shown
        assert len(keys) == 2

        # The Runs screen lists every step the table counts, the .env switch and the settings it moved too.
        steps = str(app.screen.query_one("#steps").content)
        listed = re.findall(r"^\d+\. (\w[\w ]*):", steps, re.M)
        assert len(listed) == len(run.finished_steps()) and {"report", "switch", "settings"} <= set(listed), steps

    assert engine_env.read_bytes() == env_before
    assert sha256(engine_db) == source_sha
    assert await pg_counts(pg_url) == {}


async def test_pause_and_cancel_show_while_the_copy_runs(tmp_path: Path, pg_url: str) -> None:
    from wizard import sample

    engine_db = sample.build(tmp_path / "engine.db", executions=20_000, workflows=20, users=5)  # a run that lasts
    seen: list[tuple[object, object, list[str]]] = []
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        # What n does here, then the Copy screen at once: keys pressed during the run come when the loop has
        # time, which may be after the run.
        app.start_move()
        app.go("copy")
        while app.session.log.state == "running":  # what the Copy screen offers, as the run goes on
            await pilot.pause(0.05)
            screen = app.screen
            if isinstance(screen, CopyScreen) and app.session.log.state == "running":
                keys = [str(k.description) for k in screen.query("FooterKey") if not k.has_class("-disabled")]
                seen.append((screen.check_action("pause", ()), screen.check_action("cancel", ()), keys))
        await settle(pilot)
        assert app.session.log.state == "done", app.session.log.error
        assert isinstance(app.screen, CopyScreen)
        assert app.screen.check_action("pause", ()) is False and app.screen.check_action("cancel", ()) is False
        assert "Pause" not in footer(app) and "Cancel" not in footer(app)
    assert seen, "the Copy screen never saw the run running"
    assert all(pause and cancel and {"Pause", "Cancel"} <= set(keys) for pause, cancel, keys in seen), seen


async def test_without_an_env_file_the_finish_screen_offers_no_switch(tmp_path: Path, engine_db: Path,
                                                                     pg_url: str) -> None:
    """With no .env the switch never acts: its key is hidden, not greyed (greyed says it will act later)."""
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n", "y", "n", "n", "n", "n")  # the move, then Finish
        assert app.session.log.state == "done", app.session.log.error
        assert "No .env file to switch" in screen_text(app), screen_text(app)
        assert app.screen.check_action("apply_env", ()) is False and "Switch .env" not in footer(app), footer(app)
        await press(pilot, "a")
        assert "Rewrite DATABASE_URL" not in screen_text(app)
    assert not (tmp_path / ".env").exists()


async def test_the_upgrade_offers_apply_not_next(tmp_path: Path, engine_db: Path) -> None:
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter")
        assert app.screen.check_action("next", ()) is False and " Next" not in footer(app), footer(app)
        assert "--yes" not in screen_text(app)
        await press(pilot, "a")
        assert "Upgrade?" in screen_text(app)
        await press(pilot, "n")  # No: nothing ran
        assert app.session.log.state == "waiting"


@pytest.mark.parametrize("line, width, pieces", [
    ("target  postgresql://u@127.0.0.1:5432/wizard_demo_0e108fff answers", 44,
     ["target  ", "postgresql://u@127.0.0.1:5432/", "wizard_demo_0e108fff answers"]),
    ("restore .env from /srv/engine/.wizard/runs/20250101-000000-abcdef/env.backup", 40,
     ["restore .env from ", "/srv/engine/.wizard/runs/", "20250101-000000-abcdef/env.backup"]),
    ("abcdefghijklmnopqrstuvwxyz", 10, ["abcdefghij", "klmnopqrst", "uvwxyz"]),  # no separator: cut, as a fold
])
def test_long_names_break_after_a_separator(line: str, width: int, pieces: list[str]) -> None:
    offsets = [0, *fold_offsets(line, width), len(line)]
    assert [line[a:b] for a, b in zip(offsets, offsets[1:])] == pieces


async def test_a_rollback_question_taller_than_its_dialog_reads_on_with_the_arrow_keys(
        tmp_path: Path, engine_db: Path, engine_env: Path, pg_url: str) -> None:
    """At 80x24 a rollback's confirmation after rows were written since is longer than its dialog; focus on
    Cancel, Down and PageDown used to do nothing (only three Tabs reached the text). Now they read on, and the
    footer says so while there is more."""
    from move_helpers import execute
    from wizard import commands

    env_before = engine_env.read_bytes()
    await commands.migrate(commands.MoveOptions(parse_url(database_url(engine_env)), parse_url(pg_url),
                                                state_dir=tmp_path / "state", yes=True, env_file=engine_env))
    await asyncio.to_thread(execute, pg_url, "UPDATE executions SET status = 'written since' WHERE id = 1")
    app = make_app(tmp_path / "state", env_file=engine_env, source_text=database_url(engine_env),
                   source_from_env=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+r")
        question = app.screen.query_one("#question")
        assert question.max_scroll_y > 0 and "More" in footer(app), footer(app)
        assert "Then it checks the result" not in screen_text(app)
        # The restore-backup alternative is the key r here: the screens never name the CLI's flags.
        said = " ".join(app.screen.question.split())
        assert "the 1 row(s) written since are saved to" in said and "--restore-backup" not in said, said
        await press(pilot, "pagedown", *["down"] * question.max_scroll_y)
        assert question.scroll_y == question.max_scroll_y and "Then it checks the result" in screen_text(app)
        assert engine_env.read_bytes() != env_before  # reading changes nothing
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)

    assert engine_env.read_bytes() == env_before
    assert await pg_counts(pg_url) == {}
    with sqlite3.connect(engine_db) as conn:
        assert conn.execute("SELECT status FROM executions WHERE id = 1").fetchone() == ("written since",)

"""The .env switch after a copy of another app's tables as they are (--reflected; f on the Pre-flight screen): the
target has no engine settings to take OPENAI_API_KEY, so it stays in .env. `wizard migrate --reflected --env-file`
says so and switches; the Finish screen's switch must end the same, not fail half way with .env already
rewritten."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from tui_support import make_app, press, screen_text, settle
from wizard.envfile import read_env
from wizard.journal import list_runs

WIZARD = str(Path(sys.executable).with_name("wizard"))
KEY = "sk-test-0123456789abcdef"


def crm(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace');")
    return path


def env_for(folder: Path, db: Path) -> Path:
    env = folder / ".env"
    env.write_text(f"DATABASE_URL=sqlite:///{db}\nOPENAI_API_KEY={KEY}\n")
    return env


async def test_the_switch_after_a_reflected_copy_ends_as_the_clis(tmp_path: Path, pg_url: str,
                                                                  other_pg_url: str) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "tui").mkdir()
    cli_env = env_for(tmp_path / "cli", crm(tmp_path / "cli" / "crm.db"))
    moved = await asyncio.to_thread(subprocess.run, [WIZARD, "migrate", "--source", f"sqlite:///{tmp_path}/cli/crm.db",
                                                     "--target", pg_url, "--reflected", "--env-file", str(cli_env),
                                                     "--yes", "--state-dir", str(tmp_path / "cli-state")],
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert moved.returncode == 0, moved.stderr
    assert read_env(cli_env)["OPENAI_API_KEY"] == KEY
    assert read_env(cli_env)["DATABASE_URL"].startswith("postgresql")

    tui_env = env_for(tmp_path / "tui", crm(tmp_path / "tui" / "crm.db"))
    app = make_app(tmp_path / "tui-state", env_file=tui_env, source_text=f"sqlite:///{tmp_path}/tui/crm.db",
                   target_text=other_pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "f")  # the Pre-flight screen: its tables as they are
        assert app.session.reflected, screen_text(app)
        await press(pilot, "n", "y")
        assert app.session.log.state == "done", app.session.log.error
        await press(pilot, "n", "n", "n")  # Schema, Copy, Verify
        assert "Every row accounted for" in screen_text(app), screen_text(app)
        await press(pilot, "n", "a", "y")  # Finish: switch .env
        shown = screen_text(app)
        assert "Switched." in shown, shown
    assert read_env(tui_env)["OPENAI_API_KEY"] == KEY
    assert read_env(tui_env)["DATABASE_URL"].startswith("postgresql")
    (run,) = list_runs(tmp_path / "tui-state")
    assert "settings" not in {r.get("step") for r in run.records() if r["kind"] == "step_failed"}

"""A SQLite file given as a move's target: the Connection screen refuses it with the words `wizard migrate` uses
(the command layer's one check, commands.check_target), and neither face makes the file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tui_support import make_app, press, screen_text, settle

WIZARD = str(Path(sys.executable).with_name("wizard"))


async def test_a_sqlite_target_is_refused_alike_by_both_faces(tmp_path: Path, engine_db: Path) -> None:
    target = tmp_path / "target.db"
    said = await asyncio.to_thread(subprocess.run, [WIZARD, "migrate", "--source", f"sqlite:///{engine_db}",
                                                    "--target", f"sqlite:///{target}", "--yes", "--state-dir",
                                                    str(tmp_path / "cli-state")],
                                   capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert said.returncode == 2, said.stderr
    (line,) = said.stderr.splitlines()
    why = line.removeprefix("error: ")

    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=f"sqlite:///{target}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t")
        shown = " ".join(screen_text(app).split())
        assert why in shown, (why, shown)
        assert not app.screen.can_go_next()
    assert not target.exists()
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").rglob("journal.jsonl"))


async def test_a_mysql_target_for_a_mysql_source_is_refused_on_the_connection_screen(
        tmp_path: Path, engine_db: Path, mysql_url: str, mysql_server: str) -> None:
    """`wizard migrate` refuses MySQL to MySQL before it connects (exit 2); the Connection screen said Ready to an
    empty MySQL target and left the refusal to the next screen."""
    from engine_data import build_1_0_0
    from mysql_server import fresh_database

    source = await asyncio.to_thread(build_1_0_0, mysql_url, engine_db)
    databases = fresh_database(mysql_server)
    target = next(databases)
    try:
        said = await asyncio.to_thread(subprocess.run, [WIZARD, "migrate", "--source", source, "--target", target,
                                                        "--yes", "--state-dir", str(tmp_path / "cli-state")],
                                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert said.returncode == 2, said.stderr
        why = " ".join(said.stderr.removeprefix("error: ").split())

        app = make_app(tmp_path / "state", source_text=source, target_text=target)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "enter", "ctrl+t")
            shown = " ".join(screen_text(app).split())
            assert why[:60] in shown, (why, shown)
            assert "Ready." not in shown and not app.screen.can_go_next()
        assert not list((tmp_path / "state").rglob("journal.jsonl"))
    finally:
        databases.close()

"""Before a move writes, both faces ask the one question (commands.move_question): which database is backed up,
which is written, how many rows, what the policy does, how many tables at once. `wizard migrate` without --yes
asks it on the terminal; the TUI's n on the Pre-flight screen asks it in a confirmation. A no writes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from screens.confirm import Confirm
from screens.preflight import PreflightScreen
from test_tui_journeys import pg_counts, sqlite_counts
from tui_support import make_app, press, screen_text, settle
from wizard import commands
from wizard.journal import list_runs

WIZARD = str(Path(sys.executable).with_name("wizard"))


async def test_n_on_the_preflight_screen_asks_what_migrate_asks_and_a_no_writes_nothing(
        tmp_path: Path, engine_db: Path, pg_url: str) -> None:
    state = tmp_path / "state"
    app = make_app(state, source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n")
        assert isinstance(app.screen, Confirm), screen_text(app)
        asked = app.screen.question
        assert asked == commands.move_question(app.move_options(), app.session.preflight)
        shown = " ".join(screen_text(app).split())
        assert "Move now?" in shown and commands.parse_url(pg_url).database in shown, shown
        await press(pilot, "n")  # no
        assert isinstance(app.screen, PreflightScreen) and app.session.log.state == "waiting"
        assert await pg_counts(pg_url) == {} and list_runs(state) == []  # nothing written, no run begun
        await press(pilot, "n", "y")
        assert app.session.log.state == "done", app.session.log.error
    assert await pg_counts(pg_url) == sqlite_counts(engine_db)


def _on_a_terminal(args: list[str], answer: bytes, columns: int = 200) -> tuple[int, str]:
    """`wizard` with a terminal `columns` wide for stdin, stdout and stderr; `answer` typed once it asks. Its exit
    code and what it printed."""
    master, slave = os.openpty()
    proc = subprocess.Popen([WIZARD, *args], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            env={**os.environ, "COLUMNS": str(columns)})
    os.close(slave)
    said, answered, deadline = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the wizard ended and closed the terminal
                    break
                said += chunk
            if not answered and b"[y/N]" in said:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not select.select([master], [], [], 0.1)[0]:
                break
        return proc.wait(timeout=30), said.decode(errors="replace").replace("\r", "")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


async def test_migrate_without_yes_asks_the_same_question_and_a_no_writes_nothing(
        tmp_path: Path, engine_db: Path, pg_url: str) -> None:
    state = tmp_path / "state"
    env = tmp_path / ".env"
    env.write_bytes(f"DATABASE_URL=sqlite:///{engine_db}\nOPENAI_API_KEY=sk-test-0123456789abcdef\n".encode())
    env_before = env.read_bytes()
    code, said = await asyncio.to_thread(_on_a_terminal, ["migrate", "--source", f"sqlite:///{engine_db}",
                                                          "--target", pg_url, "--jobs", "3", "--env-file", str(env),
                                                          "--state-dir", str(state)], b"n\n")
    assert code == 3, said
    flat = " ".join(said.split())
    target = commands.parse_url(pg_url).masked()
    with sqlite3.connect(engine_db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        rows = sum(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names)
    assert f"Back up sqlite:///{engine_db} (only ever read)" in flat, said
    assert f"in {target} and copy" in flat and "3 tables at once. Move now?" in flat, said
    assert f"copy {rows:,} rows in {len(names)} tables" in flat, said
    assert "the move was not confirmed: nothing was written" in flat, said
    # With --env-file the switch follows the verification unasked: the question says so, the key masked.
    assert f"Once verified, DATABASE_URL in {env} is switched to the target; OPENAI_API_KEY (" in flat, said
    assert "moves into the target's settings" in flat and "0123456789abcdef" not in said, said
    assert await pg_counts(pg_url) == {} and env.read_bytes() == env_before


async def test_the_preflight_screen_offers_every_jobs_migrate_takes(tmp_path: Path, engine_db: Path,
                                                                    pg_url: str) -> None:
    """`wizard migrate --jobs` takes 1 to 16 (commands.JOBS); j and J step through the same, round."""
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "J", "J")  # 2 -> 1 -> the most
        assert "Jobs: 16 (j/J)" in screen_text(app), screen_text(app)
        assert "16 tables at once" in commands.move_question(app.move_options(), app.session.preflight)
        await press(pilot, "n", "y")
        assert app.session.log.state == "done", app.session.log.error
        started = app.session.run.started()
    assert started["jobs"] == 16 == commands.JOBS[-1]  # the run went with it
    assert await pg_counts(pg_url) == sqlite_counts(engine_db)


async def test_the_question_is_wrapped_at_word_breaks_to_an_80_column_terminal(tmp_path: Path, engine_db: Path,
                                                                               pg_url: str) -> None:
    """click's prompt is one line the terminal cuts wherever the width ends ("the engine\n's tables"): the
    question's lines are wrapped to the terminal first, only its last line asked."""
    code, said = await asyncio.to_thread(_on_a_terminal, ["migrate", "--source", f"sqlite:///{engine_db}",
                                                          "--target", pg_url, "--state-dir", str(tmp_path / "state")],
                                         b"n\n", 80)
    assert code == 3, said
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", said)
    asked = plain[plain.index("Back up"):plain.index("[y/N]")].splitlines()  # the question, as the terminal shows it
    assert max(map(len, asked)) <= 80, "\n".join(asked)
    assert any("the engine's tables" in line for line in asked), "\n".join(asked)
    assert await pg_counts(pg_url) == {}

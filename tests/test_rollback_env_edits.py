"""Rollback and the operator's own edits to .env since a move's switch: kept, or refused with nothing changed.

A real move (SQLite to PostgreSQL, `--env-file`) switches DATABASE_URL and moves OPENAI_API_KEY out of .env; the
operator then edits .env; `wizard rollback` is run as an operator runs it, and .env is read back byte for byte.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from move_helpers import sha256, tables_in
from test_cli_errors import wizard
from test_tui_journeys import _move_to_verify
from tui_support import make_app, press, screen_text
from wizard import sample
from wizard.envfile import database_url

# A comment, `export`, quotes, a blank line, and no newline at the end: every byte of it must come back.
ENV = (b"# the engine's settings\nexport LOG_LEVEL='info'\n\nDATABASE_URL=sqlite+aiosqlite:///engine.db\n"
       b"OPENAI_API_KEY=\"sk-test1234567890abcd\"  # the team's key\nWORKERS=4")


def _moved(tmp_path: Path, pg_url: str) -> Path:
    sample.build(tmp_path / "engine.db", executions=50, workflows=5, users=2)
    (tmp_path / ".env").write_bytes(ENV)
    moved = wizard("migrate", "--source", "sqlite:///engine.db", "--target", pg_url, "--env-file", ".env", "--yes",
                   cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr
    switched = (tmp_path / ".env").read_bytes()
    assert b"postgresql+asyncpg://" in switched and b"OPENAI_API_KEY" not in switched
    return tmp_path


def test_edits_made_to_env_since_the_switch_are_kept_and_only_the_switchs_lines_go_back(pg_url: str,
                                                                                         tmp_path: Path) -> None:
    folder = _moved(tmp_path, pg_url)
    env = folder / ".env"
    # The operator turns the log level up and adds a setting at the end (the file had no newline there).
    env.write_bytes(env.read_bytes().replace(b"LOG_LEVEL='info'", b"LOG_LEVEL='debug'") + b"\nNEW_SETTING=1\n")

    shown = wizard("rollback", "--last", cwd=folder)  # the plan, on no terminal: shown, refused, nothing changed
    assert shown.returncode == 3, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "1 put DATABASE_URL, OPENAI_API_KEY back in " in text, text
    assert "the edits made to it since the switch stay as they are" in text

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert f"put DATABASE_URL, OPENAI_API_KEY back in {env.absolute()} as before the run, and kept every line " \
           "edited since its switch as it is" in said, said
    assert env.read_bytes() == ENV.replace(b"LOG_LEVEL='info'", b"LOG_LEVEL='debug'") + b"\nNEW_SETTING=1\n"
    assert tables_in(pg_url) == []


def test_env_as_the_switch_left_it_is_restored_byte_for_byte(pg_url: str, tmp_path: Path) -> None:
    folder = _moved(tmp_path, pg_url)
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout and "byte for byte" in done.stdout
    assert (folder / ".env").read_bytes() == ENV


def test_a_database_url_the_operator_changed_since_the_switch_is_refused_with_nothing_changed(pg_url: str,
                                                                                             tmp_path: Path) -> None:
    folder = _moved(tmp_path, pg_url)
    env = folder / ".env"
    edited = re.sub(rb"(DATABASE_URL=\"[^\"]*)\"", rb"\1?command_timeout=60\"", env.read_bytes()) + b"\nNEW_SETTING=1"
    env.write_bytes(edited)
    file_before = sha256(folder / "engine.db")

    for args in ((), ("--yes",)):
        refused = wizard("rollback", "--last", *args, cwd=folder)
        assert refused.returncode == 3, refused.stderr
        said = refused.stderr.strip().splitlines()[-1]
        assert "was edited since the switch on the line(s) it wrote (DATABASE_URL)" in said, refused.stderr
        assert "nothing was undone" in said and "env.backup" in said and "Traceback" not in refused.stderr
        assert env.read_bytes() == edited
        assert sha256(folder / "engine.db") == file_before and "executions" in tables_in(pg_url)


async def test_ctrl_r_after_the_finish_screens_switch_keeps_the_operators_edits(tmp_path: Path, engine_db: Path,
                                                                                pg_url: str) -> None:
    env = tmp_path / ".env"
    before = b"# workflow engine\nLOG_LEVEL=info\n" + f'DATABASE_URL="sqlite+aiosqlite:///{engine_db}"\n'.encode() \
        + b"OPENAI_API_KEY=sk-test-0123456789abcdef\n"
    env.write_bytes(before)
    app = make_app(tmp_path / "state", env_file=env, source_text=database_url(env), target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _move_to_verify(pilot, app)
        await press(pilot, "n", "a", "y")  # Finish, switch .env
        assert b"OPENAI_API_KEY" not in env.read_bytes()
        env.write_bytes(env.read_bytes().replace(b"LOG_LEVEL=info", b"LOG_LEVEL=debug") + b"NEW_SETTING=1\n")
        await press(pilot, "ctrl+r")
        shown = " ".join(screen_text(app).split())
        assert "Roll back?" in shown and "put DATABASE_URL, OPENAI_API_KEY back in" in shown, shown
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)
    assert env.read_bytes() == before.replace(b"LOG_LEVEL=info", b"LOG_LEVEL=debug") + b"NEW_SETTING=1\n"
    assert await asyncio.to_thread(tables_in, pg_url) == []

"""A table of the move's target that its user can no longer read (given to another role since, ALTER TABLE ...
OWNER TO): what was written to it since cannot be measured, so the rollback is refused in one line, nothing
changed, by both faces: it stopped with asyncpg's InsufficientPrivilegeError, a traceback and exit 1 on the CLI,
'unexpected error' on the TUI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from move_helpers import execute
from test_tui_journeys import pg_counts, sqlite_counts
from tui_support import make_app, press, settle
from wizard import commands
from wizard.journal import load_run

WIZARD = str(Path(sys.executable).with_name("wizard"))


@pytest.fixture
def owned_db(pg_server: str) -> Iterator[tuple[str, str]]:
    """(the role's URL of a database it owns, the admin's URL of it)."""
    role = f"wizard_unread_{uuid.uuid4().hex[:8]}"
    execute(pg_server, f'CREATE ROLE "{role}" LOGIN', f'CREATE DATABASE "{role}" OWNER "{role}"')
    admin = make_url(pg_server).set(database=role)
    try:
        yield (admin.set(username=role).render_as_string(hide_password=False),
               admin.render_as_string(hide_password=False))
    finally:
        execute(pg_server, f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{role}"')


async def test_a_table_the_user_cannot_read_refuses_the_rollback_in_one_line(tmp_path: Path, engine_db: Path,
                                                                             owned_db: tuple[str, str]) -> None:
    target, admin = owned_db
    state = tmp_path / "state"
    await commands.migrate(commands.MoveOptions(source=commands.parse_url(f"sqlite:///{engine_db}"),
                                                target=commands.parse_url(target), state_dir=state, yes=True))
    admin_role = make_url(admin).username or "postgres"
    await asyncio.to_thread(execute, admin, f'ALTER TABLE users OWNER TO "{admin_role}"')
    journal = (load_run(state).folder / "journal.jsonl").read_bytes()

    said = await asyncio.to_thread(subprocess.run, [WIZARD, "rollback", "--last", "--yes", "--state-dir", str(state)],
                                   capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert said.returncode == 3, said.stderr
    assert "Traceback" not in said.stderr and "table users" in said.stderr and "GRANT SELECT ON users" in said.stderr

    app = make_app(state, source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+r")
        notices = [n.message for n in app._notifications]
        assert any("GRANT SELECT ON users" in n for n in notices), notices
        assert not any("unexpected error" in n for n in notices), notices
    assert await pg_counts(admin) == sqlite_counts(engine_db)  # nothing undone
    assert (load_run(state).folder / "journal.jsonl").read_bytes() == journal

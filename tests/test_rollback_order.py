"""Runs on one database are rolled back newest first: an older run's rollback while a later one stands is refused.

Two real `wizard upgrade` runs on one database (to 0002, then to head), then `wizard rollback` as an operator
runs it; the database is read back directly (the SQLite file's sha256, PostgreSQL's revision and rows).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_data import build_pg_1_0_0, columns, engine_rows, revision
from move_helpers import sha256
from test_cli_errors import wizard
from tui_support import make_app, press, screen_text, settle
from wizard import commands, sample
from wizard.journal import list_runs
from wizard.schema import head

pytestmark = pytest.mark.slow  # two runs and their rollbacks per case: `pytest -m slow` (CI runs it)


def _runs(folder: Path) -> list[str]:
    """The run ids, oldest first (by when each began: two begun within a second sort by chance by their ids)."""
    return [run.id for run in sorted(list_runs(folder / ".wizard"), key=lambda run: run.started()["ts"])]


def _two_upgrades(url: str, folder: Path) -> tuple[str, str]:
    for to in (("--to", "0002"), ()):
        up = wizard("upgrade", "--db", url, "--yes", *to, cwd=folder)
        assert up.returncode == 0, up.stderr
    older, newer = _runs(folder)
    return older, newer


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_older_upgrade_is_rolled_back_only_after_the_newer_one_on_its_database(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    path = sample.build(tmp_path / "engine.db", executions=60, workflows=5, users=2)
    url = f"sqlite:///{path}" if engine == "sqlite" else build_pg_1_0_0(request.getfixturevalue("pg_url"), path)
    before = sha256(path) if engine == "sqlite" else None
    rows_before = engine_rows(url)
    older, newer = _two_upgrades(url, tmp_path)
    upgraded = sha256(path) if engine == "sqlite" else engine_rows(url)

    for args in ((), ("--yes",)):  # the plan and the rollback alike: one line, exit 3, nothing changed
        refused = wizard("rollback", "--run", older, *args, cwd=tmp_path)
        assert refused.returncode == 3, refused.stderr
        said = refused.stderr.strip().splitlines()[-1]
        assert said.startswith(f"error: run {newer} (upgrade) changed "), refused.stderr
        assert f"after run {older} and is not rolled back: nothing was undone; roll back {newer} (upgrade) first " \
               f"(`wizard rollback --run {newer}`" in said, said
        assert "Traceback" not in refused.stderr
        assert revision(url) == head()
        assert (sha256(path) if engine == "sqlite" else engine_rows(url)) == upgraded

    newest = wizard("rollback", "--run", newer, "--yes", cwd=tmp_path)
    assert newest.returncode == 0, newest.stderr
    assert revision(url) == "0002"
    oldest = wizard("rollback", "--run", older, "--yes", cwd=tmp_path)
    assert oldest.returncode == 0, oldest.stderr
    assert revision(url) is None and "tags" not in columns(url, "workflows")  # 1.0.0 again
    assert engine_rows(url) == rows_before
    if engine == "sqlite":
        assert sha256(path) == before  # nothing written since: byte for byte as before both


def test_a_move_is_rolled_back_only_after_the_upgrade_of_its_target(pg_url: str, tmp_path: Path) -> None:
    sample.build(tmp_path / "engine.db", executions=60, workflows=5, users=2)
    (tmp_path / ".env").write_bytes(b"DATABASE_URL=sqlite+aiosqlite:///engine.db\n")
    moved = wizard("migrate", "--source", "sqlite:///engine.db", "--target", pg_url, "--env-file", ".env", "--to",
                   "0002", "--yes", cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr
    up = wizard("upgrade", "--db", pg_url, "--yes", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    move, upgrade = _runs(tmp_path)
    file_before = sha256(tmp_path / "engine.db")

    refused = wizard("rollback", "--run", move, "--yes", cwd=tmp_path)
    assert refused.returncode == 3, refused.stderr
    assert f"roll back {upgrade} (upgrade) first" in refused.stderr.strip().splitlines()[-1], refused.stderr
    assert revision(pg_url) == head() and sha256(tmp_path / "engine.db") == file_before

    assert wizard("rollback", "--run", upgrade, "--yes", cwd=tmp_path).returncode == 0
    assert revision(pg_url) == "0002"
    done = wizard("rollback", "--run", move, "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".env").read_bytes() == b"DATABASE_URL=sqlite+aiosqlite:///engine.db\n"
    assert sha256(tmp_path / "engine.db") == file_before


async def test_the_runs_screen_says_the_older_upgrade_waits_for_the_newer(tmp_path: Path) -> None:
    db = sample.build(tmp_path / "engine.db", executions=30, workflows=3, users=2)
    state = tmp_path / "state"
    await commands.upgrade(commands.parse_url(f"sqlite:///{db}"), "0002", state)
    await commands.upgrade(commands.parse_url(f"sqlite:///{db}"), None, state)
    older, newer = sorted(list_runs(state), key=lambda run: run.started()["ts"])
    upgraded = sha256(db)
    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter")  # the Runs screen, newest first
        await settle(pilot)
        await press(pilot, "down")
        assert app.screen.selected.id == older.id, screen_text(app)
        # What ctrl+r would do for it is the service's refusal (commands.undo_preview), and the key does not act for it
        shown = " ".join(screen_text(app).split())
        assert f"run {newer.id} (upgrade) changed " in shown and f"roll back {newer.id} (upgrade) first" in shown, shown
        assert app.screen.check_action("rollback_selected", ()) is False
    assert sha256(db) == upgraded and older.state() == newer.state() == "finished"

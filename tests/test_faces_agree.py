"""The two faces on the one command layer: each journey through the CLI and through the TUI (the Pilot, at
80x24), on the same source, ends the same. The move: the same journal steps, the same verification verdict,
the same rows in the target; and a re-verification after --on-orphans null (the CLI's `verify --run`, the
Verify screen's v) passes in both, the NULLed foreign keys counted in. The upgrade, and its rollback after the
engine wrote: the same journal, the same rows, the same values saved."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_data import write
from test_tui_journeys import pg_counts, sha256
from tui_support import make_app, press, screen_text, settle
from wizard import sample
from wizard.journal import load_run
from wizard.urls import parse_url
from wizard.verify.run import load_quarantine, verify

WIZARD = str(Path(sys.executable).with_name("wizard"))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([WIZARD, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=300)


def json_event(stdout: str, event: str) -> dict[str, Any]:
    (found,) = [d for d in map(json.loads, stdout.splitlines()) if d.get("event") == event]
    return found


def journal_steps(run_folder: Path) -> list[str]:
    """The steps the run's journal shows finished, in order."""
    records = [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if r["kind"] == "step_finished"]


def verdict(report: dict[str, Any]) -> tuple[bool, list[tuple]]:
    """A verification's verdict without the URLs (the two targets are two databases)."""
    keys = ("table", "status", "source_rows", "target_rows", "quarantined", "equal", "different", "only_source",
            "only_target")
    return report["ok"], [tuple(t[k] for k in keys) for t in report["tables"]]


@pytest.mark.slow  # over 15 s: run by `pytest -m slow`
async def test_the_move_through_the_cli_and_the_tui_ends_the_same(tmp_path: Path, pg_url: str,
                                                                  other_pg_url: str) -> None:
    db = sample.build_dirty(tmp_path / "dirty.db", executions=400)
    source, source_sha = f"sqlite:///{db}", sha256(db)

    # The CLI: migrate with --on-orphans null, then verify the target again with the run's inputs.
    cli_state = tmp_path / "cli-state"
    moved = await asyncio.to_thread(cli, "migrate", "--source", source, "--target", pg_url, "--on-orphans", "null",
                                    "--yes", "--state-dir", str(cli_state), "--json", cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr
    cli_run = load_run(cli_state, json_event(moved.stdout, "Summary")["run_id"])
    again = await asyncio.to_thread(cli, "verify", "--source", source, "--target", pg_url, "--run", cli_run.id,
                                    "--state-dir", str(cli_state), "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr
    cli_verdict = verdict(json_event(again.stdout, "VerifySummary"))

    # The TUI: the same journey by keys, the null policy chosen on the Pre-flight screen.
    app = make_app(tmp_path / "tui-state", source_text=source, target_text=other_pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        await press(pilot, "tab", "tab", "down", "enter")  # the checks, the scan, then the policy: null
        assert app.session.policy == "null", screen_text(app)
        await press(pilot, "n", "y")  # the move, on the question `wizard migrate` asks
        assert app.session.log.state == "done", app.session.log.error
        await press(pilot, "n", "n", "n")  # Schema, Copy, Verify: the move's own verification
        assert "Every row accounted for" in screen_text(app), screen_text(app)
        moved_verdict = verdict(app.session.verify.to_dict())
        await press(pilot, "v")  # verify again, as `wizard verify --run` does
        assert "Every row accounted for" in screen_text(app), screen_text(app)
        tui_verdict = verdict(app.session.verify.to_dict())
        tui_run = app.session.run

    assert journal_steps(tui_run.folder) == journal_steps(cli_run.folder)
    assert "switch" not in journal_steps(cli_run.folder)  # neither was given a .env
    assert cli_verdict == tui_verdict == moved_verdict
    assert cli_verdict[0] is True
    assert await pg_counts(pg_url) == await pg_counts(other_pg_url)
    assert sha256(db) == source_sha
    # The null policy did act, and a verification that did not count its NULLed keys in would differ:
    # what the Verify screen ran before it read the run's inputs in one place.
    assert list((tui_run.folder / "nulled").glob("*.jsonl"))
    quarantine_only = await verify(parse_url(source), parse_url(other_pg_url),
                                   quarantined=load_quarantine(tui_run.folder))
    assert not quarantine_only.ok


def rows_of(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of a SQLite file, in a fixed order."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}
    finally:
        conn.close()


def journal_undone(run_folder: Path) -> list[str]:
    records = [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]
    return [r["action"] for r in records if r["kind"] == "undo_done"]


async def test_an_upgrade_and_its_rollback_keeping_rows_written_since_end_the_same_through_both_faces(
        tmp_path: Path) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "tui").mkdir()
    a = sample.build(tmp_path / "cli" / "engine.db", executions=200, workflows=10, users=3)
    b = tmp_path / "tui" / "engine.db"
    shutil.copyfile(a, b)
    cli_state, tui_state = tmp_path / "cli-state", tmp_path / "tui-state"

    up = await asyncio.to_thread(cli, "upgrade", "--db", f"sqlite:///{a}", "--yes", "--state-dir", str(cli_state),
                                 cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    app = make_app(tui_state, source_text=f"sqlite:///{b}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "down", "enter", "a", "y")  # Upgrade in place, apply (it asks first)
        assert app.session.log.state == "done", app.session.log.error
    assert journal_steps(load_run(tui_state).folder) == journal_steps(load_run(cli_state).folder)
    assert rows_of(a) == rows_of(b) and rows_of(a)["alembic_version"] == [("0004",)]

    for path in (a, b):  # the engine, on each, writes the same
        url = f"sqlite:///{path}"
        await asyncio.to_thread(write, url, "INSERT INTO executions (id, workflow_id, status, state) SELECT 900 + id, "
                                "workflow_id, 'new', '{\"nodes\": [{\"id\": \"n\", \"v\": 1}]}' FROM executions "
                                "WHERE id <= 5")
        await asyncio.to_thread(write, url, "UPDATE workflows SET tags = '[\"t\"]' "
                                            "WHERE id = (SELECT min(id) FROM workflows)")

    back = await asyncio.to_thread(cli, "rollback", "--last", "--yes", "--state-dir", str(cli_state), cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    app = make_app(tui_state, source_text=f"sqlite:///{b}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter", "ctrl+r")  # Roll back a run; its confirmation
        shown = screen_text(app)
        assert "holds: executions +5, workflows 1 changed" in " ".join(shown.split()), shown
        await press(pilot, "y")
        assert "rolled back and checked" in screen_text(app), screen_text(app)

    cli_run, tui_run = load_run(cli_state), load_run(tui_state)
    assert journal_undone(cli_run.folder) == journal_undone(tui_run.folder) == ["downgrade"]
    assert rows_of(a) == rows_of(b) and "alembic_version" not in rows_of(a)  # 1.0.0 again, the 5 rows kept
    assert len(rows_of(a)["executions"]) == 205
    assert (cli_run.folder / "dropped" / "workflows.jsonl").read_text() == \
        (tui_run.folder / "dropped" / "workflows.jsonl").read_text()

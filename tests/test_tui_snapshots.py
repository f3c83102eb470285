"""Each screen at 80x24, as an operator over SSH sees it (pytest-textual-snapshot).

The screens draw fixed data here (events and reports as the services produce
them), so timings, temporary paths and run ids never change the picture; the
journey tests drive the same screens against real databases.
`pytest tests/test_tui_snapshots.py --snapshot-update` accepts a changed picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from textual.pilot import Pilot

from screens.confirm import ConfirmRollback
from screens.state import MOVE, UPGRADE, Journey
from tui_support import make_app
from wizard.events import Event, Progress, StepFinished, StepStarted, Warn
from wizard.urls import parse_url
from wizard.verify import ColumnDiff, RowDiff, TableVerdict, VerifyReport

TARGET = "postgresql://wizard:s3cret@db.example:5432/engine"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative paths only, so the pictures never show a temporary folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)


def at(journey: Journey | None, step: str | None, events: list[Event] = (), run_state: str = "running",
       **fields: Any) -> Callable[[Pilot], Any]:
    """A run_before that puts the app on `step` of `journey` with the run having said `events`.

    The app starts with no source (the Start screen reads none); `fields` set the session after.
    """

    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        await pilot.pause()
        session = app.session
        session.journey = journey
        for name, value in fields.items():
            setattr(session, name, value)
        for event in events:
            session.log.feed(event)
        session.log.state = run_state if events else session.log.state
        if step:
            app.go(step)
        await pilot.pause()
        await pilot.pause()

    return run_before


def test_start_without_a_source(snap_compare) -> None:
    assert snap_compare(make_app(Path("state")))


def test_connection(snap_compare) -> None:
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(MOVE, "connection", source_text="sqlite:///engine.db", target_text=TARGET))


BACKUP_EVENTS = [
    StepStarted("backup", "back up engine.db"),
    Progress("backup", "engine.db", 35_040, 35_040),
    StepFinished("backup", "backup proven: integrity ok", {
        "path": ".wizard/runs/20250101-000000-abcdef/backup/engine.db", "size": 143_491_072,
        "sha256": "9f2c1e0b7a6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a291807f6e5d4c3", "check": "integrity_check: ok",
    }),
    StepStarted("schema", "upgrade to 0001"),
]


def test_backup_done(snap_compare) -> None:
    assert snap_compare(make_app(Path("state")), run_before=at(MOVE, "backup", BACKUP_EVENTS))


COPY_EVENTS = BACKUP_EVENTS + [
    StepFinished("schema", "applied 0001"),
    StepStarted("copy", "copy 4 tables"),
    Progress("copy", "users", 20, 20, 2_000.0, 0.0),
    Progress("copy", "workflows", 200, 200, 4_000.0, 0.0),
    Progress("copy", "executions", 120_000, 200_000, 41_523.0, 1.93),
    Progress("copy", "settings", 0, 1),
    Warn("copy", "executions: 3 timestamps in ISO 8601 with 'T' normalised"),
]


def test_copy_running(snap_compare) -> None:
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(MOVE, "copy", COPY_EVENTS))


def _report() -> VerifyReport:
    differing = TableVerdict(
        "executions", 200_000, 200_000, 0, 199_998, 2, 0, 0, "differs",
        [RowDiff(17, [ColumnDiff("status", "completed", "failed")], "different"),
         RowDiff(42, [ColumnDiff("started_at", "2025-03-01 10:00:00.000001", "2025-03-01 10:00:00")], "different")],
    )
    return VerifyReport("sqlite:///engine.db", "postgresql://wizard:***@db.example:5432/engine", [
        TableVerdict("users", 20, 20, 0, 20, status="ok"),
        TableVerdict("workflows", 200, 200, 0, 200, status="ok"),
        differing,
        TableVerdict("settings", 1, 1, 0, 1, status="ok"),
    ], [])


def test_verify_with_a_difference_selected(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await at(MOVE, None, target=parse_url(TARGET))(pilot)
        app = pilot.app
        app.session.log.result = type("MoveResult", (), {"report_md": "report.md"})()
        app.session.log.state = "done"
        app.session.verify = _report()
        app.go("verify")
        await pilot.pause()
        await pilot.press("down", "down", "enter")
        await pilot.pause()

    assert snap_compare(make_app(Path("state")), run_before=run_before)


def test_rollback_confirmation(snap_compare) -> None:
    actions = [
        "drop the tables this run created in engine on db.example:5432: users, workflows, executions, settings",
        "restore .env from the backup (sha256 3f1a...)",
    ]

    async def run_before(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.push_screen(ConfirmRollback("20250101-000000-abcdef", "move", actions))
        await pilot.pause()

    assert snap_compare(make_app(Path("state")), run_before=run_before)


def test_upgrade_schema_review(snap_compare) -> None:
    from wizard.schema import SchemaState

    plan = type("PlanReport", (), {"schema": SchemaState(None, False, matches=["0001"])})()
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(UPGRADE, "schema", plan=plan, source_text="sqlite:///engine.db"))

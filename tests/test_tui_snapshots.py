"""Each screen at 80x24, as an operator over SSH sees it (pytest-textual-snapshot).

The screens draw fixed data here (events and reports as the services produce
them), so timings, temporary paths and run ids never change the picture; the
journey tests drive the same screens against real databases.
`pytest tests/test_tui_snapshots.py --snapshot-update` accepts a changed picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from textual.pilot import Pilot

from screens.confirm import ConfirmRollback
from screens.state import MOVE, UPGRADE, Journey
from tui_support import make_app
from wizard.events import Event, Progress, StepFinished, StepStarted, Warn
from wizard.urls import parse_url
from wizard.verify.run import ColumnDiff, RowDiff, TableVerdict, VerifyReport

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


def test_copy_running_at_120x40(snap_compare) -> None:
    """The room used: wider bars, and the run's steps above the log."""
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(MOVE, "copy", COPY_EVENTS), terminal_size=(120, 40))


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
        app.session.log.state = "done"
        app.session.verify = _report()
        app.session.verify_report = Path("verify.md")
        app.session.verify_report.write_text("# Verification report\n")
        app.go("verify")
        await pilot.pause()
        await pilot.press("down", "down", "enter")
        await pilot.pause()

    assert snap_compare(make_app(Path("state")), run_before=run_before)


@dataclass
class _Plan:
    """What ConfirmRollback reads of a wizard.rollback.run.RollbackPlan."""

    run: Any
    actions: list[str]
    said: list[str]

    def described(self) -> list[str]:
        return self.actions

    def lines(self) -> list[str]:
        return self.said

    def path(self) -> str:
        return self.said[-1]


def test_rollback_confirmation_with_rows_written_since(snap_compare) -> None:
    run = type("Run", (), {"id": "20250101-000000-abcdef", "journey": "move"})()
    keep = _Plan(run, [
        "carry the 53 row(s) written to database engine since the move back into /srv/engine/engine.db: a fresh "
        "backup of the file first, one SQLite transaction, then the file checked row by row against the target",
        "restore .env byte for byte from the backup (sha256 3f1a...)",
        "drop the 5 tables this move created in database engine: users, workflows, executions, settings",
    ], ["since the move finished, database engine holds: executions +50, workflows 3 changed",
        "the 53 row(s) written since are carried back into the SQLite file, and checked row by row, before .env "
        "points at it again"])
    restore = _Plan(run, keep.actions[1:], ["the 53 row(s) written since are saved to "
                                            ".wizard/runs/20250101-000000-abcdef/written-since first, then the "
                                            "backup is restored and the database loses them"])

    async def run_before(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.push_screen(ConfirmRollback(keep, restore))
        await pilot.pause()

    assert snap_compare(make_app(Path("state")), run_before=run_before)


def test_upgrade_schema_review(snap_compare) -> None:
    from wizard.schema import SchemaState

    plan = type("PlanReport", (), {"schema": SchemaState(None, False, matches=["0001"])})()
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(UPGRADE, "schema", plan=plan, source_text="sqlite:///engine.db"))


def _preflight():
    from wizard.move.preflight import Check, PreflightReport
    from wizard.move.scan import Finding

    return PreflightReport(
        checks=[
            Check("source", "pass", "engine.db opens read-only and passes PRAGMA quick_check"),
            Check("revision", "pass", "1.0.0, no revision recorded: its tables match revision 0001"),
            Check("target", "pass", "PostgreSQL 15.4 at db.example:5432/engine"),
            Check("privileges", "pass", "the user may create tables"),
            Check("target empty", "pass", "database engine holds none of the engine's tables"),
            Check("disk", "pass", "77 GB free in .wizard for a 137 MB backup"),
            Check("data", "warn", "3 row(s) PostgreSQL will not take as they are, in executions: abort stops on "
                                  "them; quarantine would set aside 3, null 2"),
        ],
        scan=[
            Finding("executions", "workflow_id", "foreign key points nowhere", 2, [17, 42]),
            Finding("executions", "state", "not valid JSON", 1, [99]),
            Finding("executions", "started_at", "ISO 8601 with 'T'", 12, [3, 4, 5], converted=True),
        ],
        affected={"abort": 3, "null": 2, "quarantine": 3},
        rows={"users": 20, "workflows": 200, "executions": 200_000, "settings": 1},
        source_revision="0001",
    )


def test_preflight_with_rows_to_decide_on(snap_compare) -> None:
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(MOVE, "preflight", preflight=_preflight(), target=parse_url(TARGET),
                                           source_text="sqlite:///engine.db"))


def test_move_schema_step(snap_compare) -> None:
    events = BACKUP_EVENTS + [Progress("schema", "revision 0001", 1, 1), StepFinished("schema", "applied 0001")]
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(MOVE, "schema", events, preflight=_preflight(), target=parse_url(TARGET),
                                           source_text="sqlite:///engine.db"))


def test_finish_before_the_switch(snap_compare) -> None:
    Path(".env").write_text(
        '# engine\nDATABASE_URL="sqlite+aiosqlite:///engine.db"\nOPENAI_API_KEY=sk-abcdefgh12345678\n')
    app = make_app(Path("state"))
    assert snap_compare(app, run_before=at(MOVE, "finish", env_file=Path(".env"), target=parse_url(TARGET),
                                           source_text="sqlite:///engine.db"))


def test_runs_with_an_upgrade_to_roll_back(snap_compare) -> None:
    import json

    folder = Path("state/runs/20250101-000000-abcdef")
    folder.mkdir(parents=True)
    Path("engine.db.backup").write_bytes(b"backup")
    record = {"kind": "sqlite", "source": "engine.db", "path": "engine.db.backup", "size": 143_491_072,
              "sha256": "9f2c1e0b7a6d5c4b3a29", "check": "integrity_check: ok"}
    lines = [
        {"ts": "2025-01-01T00:00:00.000000Z", "kind": "run_started", "journey": "upgrade", "db": "sqlite:///engine.db"},
        {"ts": "2025-01-01T00:00:01.000000Z", "kind": "step_finished", "step": "backup",
         "undo": {"action": "restore_database", "db": "sqlite:///engine.db", "backup": record}},
        {"ts": "2025-01-01T00:00:02.000000Z", "kind": "step_finished", "step": "schema",
         "undo": {"action": "downgrade", "db": "sqlite:///engine.db", "from": "0004", "to": "0001",
                  "drop_version_table": True}},
        {"ts": "2025-01-01T00:00:03.000000Z", "kind": "run_finished", "state": "finished"},
    ]
    (folder / "journal.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert snap_compare(make_app(Path("state")), run_before=at(None, "runs"))

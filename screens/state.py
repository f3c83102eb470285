"""What the wizard knows during one session: the journey, and what its run has reported so far.

Plain Python, no widgets: the app feeds service events in, screens read it to draw.
A screen that opens late (the operator pressed Next after the step ended) draws
the same thing as one that watched every event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.commands import DEFAULT_POLICY, DbUrl, Run
from wizard.events import Event, Progress, StepFailed, StepFinished, StepStarted, StopRequest, Warn
from wizard.secrets import mask

WAITING, RUNNING, DONE, FAILED, STOPPED = "waiting", "running", "done", "failed", "stopped"


@dataclass(frozen=True)
class Journey:
    key: str
    title: str
    steps: tuple[str, ...]  # screen names, in order


MOVE = Journey("move", "Move to PostgreSQL",
               ("connection", "preflight", "backup", "schema", "copy", "verify", "finish"))
# An upgrade checks itself (the revision recorded, in one transaction); a row-level comparison
# with its backup would differ wherever a data revision rewrote rows.
UPGRADE = Journey("upgrade", "Upgrade in place", ("schema", "backup", "finish"))
ROLLBACK = Journey("rollback", "Roll back a run", ("runs",))


@dataclass
class StepLog:
    """One service step as reported by its events (step names are the service's own)."""

    name: str
    title: str = ""
    state: str = WAITING
    summary: str = ""  # the last StepFinished's (a step may finish items one by one: revisions)
    data: dict[str, Any] = field(default_factory=dict)  # every StepFinished's data, merged
    progress: dict[str, Progress] = field(default_factory=dict)  # item -> latest
    warnings: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class RunLog:
    """Everything the journey's running service call has said, in order."""

    steps: dict[str, StepLog] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the live log, masked
    current: str = ""  # the step that started last
    state: str = WAITING  # RUNNING, DONE, FAILED, or STOPPED (at a checkpoint, resumable)
    error: str = ""
    result: Any = None

    def step(self, name: str) -> StepLog:
        return self.steps.setdefault(name, StepLog(name))

    def feed(self, event: Event) -> str:
        """Record one event; returns the step it belongs to."""
        log = self.step(event.step)
        if isinstance(event, Progress):
            log.progress[event.item] = event
            if log.state == WAITING:
                log.state = RUNNING
        elif isinstance(event, StepStarted):
            log.title, log.state, self.current = mask(event.title), RUNNING, event.step
            self.lines.append(f"> {log.title}")
        elif isinstance(event, StepFinished):
            log.summary = mask(event.summary)
            log.data.update(event.data)
            log.state = DONE
            self.lines.append(f"{'ok' if event.passed else 'failed'} {log.summary}")
        elif isinstance(event, Warn):
            log.warnings.append(mask(event.message))
            self.lines.append(f"warning {mask(event.message)}")
        elif isinstance(event, StepFailed):
            log.state, log.error = FAILED, mask(event.error)
            self.lines.append(f"failed {log.error}")
        return event.step

    def complete(self, name: str) -> bool:
        """The step finished and nothing more will come for it."""
        log = self.steps.get(name)
        if log is None or log.state != DONE:
            return False
        return self.state != RUNNING or self.current != name


@dataclass
class Session:
    """The operator's choices and the service's answers, shared by every screen."""

    state_dir: Path
    env_file: Path | None = None
    source_text: str | None = None  # as given; parsed by the screens that need it
    source_from_env: bool = False  # source_text is DATABASE_URL in env_file: read again when .env changes
    banner: str = ""  # said first on the Start screen (the demo says what it set up)
    target_text: str | None = None  # --target, prefilled on the Connection screen
    target: DbUrl | None = None  # set once the Connection screen's test passed
    journey: Journey | None = None
    resume_run: str | None = None  # the interrupted move the operator chose to resume
    plan: Any = None  # plan.PlanReport of the source
    preflight: Any = None  # preflight.PreflightReport
    verify: Any = None  # verify.VerifyReport of the journey's target
    verify_report: Path | None = None  # where it was written (report.md style)
    policy: str = DEFAULT_POLICY  # for rows PostgreSQL will not take as they are (commands.ORPHAN_POLICIES)
    jobs: int = 2  # tables copied, and indexes built, at once
    reflected: bool = False  # the source is another app's database: its tables copied as they are
    upgrade_to: str | None = None  # after the move, upgrade the target to this revision; None: stay
    rollback_db: DbUrl | None = None  # the database's full URL for a rollback, when its journal masked a password
    run: Run | None = None  # the run this journey started, once it exists
    last_run: Run | None = None  # what Ctrl+R rolls back: the journey's run, else the journal's newest
    runs_before: frozenset[str] = frozenset()  # run ids present before the journey began
    log: RunLog = field(default_factory=RunLog)
    stop: StopRequest = field(default_factory=StopRequest)
    changed: bool = False  # last_run has done something rollback would undo

    def move_to(self, checked: DbUrl | None = None) -> str:
        """Where a move goes, as the Start screen and the header say it: onto the target the Connection screen
        checked (`checked`, until Next makes it the session's); before, PostgreSQL, or MySQL too from a SQLite
        file (a MySQL source moves to PostgreSQL only)."""
        target = checked or self.target
        if target is not None:
            return "MySQL/MariaDB" if target.is_mysql else "PostgreSQL"
        from_sqlite = self.plan is not None and self.plan.source.engine.startswith("SQLite")
        return "PostgreSQL or MySQL" if from_sqlite else "PostgreSQL"

    def title(self, checked: DbUrl | None = None) -> str:
        """The header's: the journey, a move naming where it goes."""
        if self.journey is None:
            return "Engine migration wizard"
        return f"Move to {self.move_to(checked)}" if self.journey is MOVE else self.journey.title

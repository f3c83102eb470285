"""The typed messages workers post; only @on handlers turn them into widget changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class RunChanged(Message, bubble=False):
    """The journey's run reported something; `steps` are the service steps it touched.

    Posted at most four times a second (the app coalesces events), so a slow link
    is never flooded with redraws.
    """

    steps: frozenset[str]


@dataclass
class RunEnded(Message, bubble=False):
    """The journey's service call returned, failed or stopped at a checkpoint."""

    state: str
    error: str = ""


@dataclass
class Answered(Message, bubble=False):
    """A screen's read-only service call returned `value`, or raised with `error` (one line, masked)."""

    value: Any = None
    error: str = ""


class PlanAnswered(Answered, bubble=False):
    """plan.plan() of the source: engine, size, tables, revision."""


class TargetTested(Answered, bubble=False):
    """The connection test of a target: server version, may create tables, empty."""


class ChecksAnswered(Answered, bubble=False):
    """preflight.run_checks(): the checklist and the data scan."""


class SqlAnswered(Answered, bubble=False):
    """schema.upgrade_sql(): the SQL a schema step would run."""


class UpgradePlanned(Answered, bubble=False):
    """commands.upgrade_plan(): what an upgrade would do, read again before Apply asks."""


class VerifyAnswered(Answered, bubble=False):
    """verify.verify(): the table-by-table verdicts."""


class ReportWritten(Answered, bubble=False):
    """A verification's report was written (value: the Markdown file's path)."""


class EnvSwitched(Answered, bubble=False):
    """The .env was rewritten to the target (value: the before/after lines, and what was done)."""


class HealthAnswered(Answered, bubble=False):
    """The engine's /api/version answered (value: what it said)."""

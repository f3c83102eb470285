"""Fault tests record what each one survived; a whole, passing run of tests/faults started by
`python -m tests.faults.survives` hands those records to it, which writes README's "What it survives"
tables from them. A test run alone writes nothing outside its temporary folders."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest

from survives import ROWS_ENV

HERE = Path(__file__).resolve().parent
PREFIX = "tests/faults/"

_rows: list[dict] = []
_passed: set[str] = set()
_not_passed: set[str] = set()  # failed or skipped in any phase, or deselected


@pytest.fixture
def survived(request: pytest.FixtureRequest) -> Callable[..., None]:
    """One row of the README's tables, kept if the test passes:
    survived(fault=..., did=..., rows_lost=N), or survived(input=..., exit_code=N, message=..., changed=...)."""

    def record(**row: object) -> None:
        request.node.user_properties.append(("survived", row))

    return record


def pytest_deselected(items: list[pytest.Item]) -> None:
    _not_passed.update(i.nodeid for i in items if i.nodeid.startswith(PREFIX))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith(PREFIX):
        return
    if report.outcome != "passed":
        _not_passed.add(report.nodeid)
    elif report.when == "call":
        _passed.add(report.nodeid)
        _rows.extend(row for name, row in report.user_properties if name == "survived")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get(ROWS_ENV)  # set by `python -m tests.faults.survives` only
    if not out:
        return
    faults = [item for item in session.items if item.nodeid.startswith(PREFIX)]
    ran = {item.nodeid for item in faults}
    # Only a run of every fault test, each passing, may speak for the wizard: a run of some of the
    # files, or a -k or -m selection, hands over nothing.
    every_file = {item.path for item in faults} == set(HERE.glob("test_*.py"))
    if every_file and not _not_passed and ran == _passed:
        Path(out).write_text(json.dumps(_rows, default=str))

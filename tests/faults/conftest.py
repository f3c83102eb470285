"""Fault tests record what each one survived; a whole, passing run of tests/faults rewrites the
README's "What it survives" tables from those records, so the tables are never written by hand."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Callable

import pytest

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"
START, END = "<!-- survives:start -->", "<!-- survives:end -->"
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
    faults = [item for item in session.items if item.nodeid.startswith(PREFIX)]
    ran = {item.nodeid for item in faults}
    # Only a run of every fault test, each passing, may speak for the wizard: a run of some of the
    # files, or a -k or -m selection, writes nothing.
    every_file = {item.path for item in faults} == set(HERE.glob("test_*.py"))
    if not every_file or _not_passed or ran != _passed or not README.exists():
        return
    text = README.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        README.write_text(f"{before}{START}\n{render(_rows)}{END}{after}")


# A test's own folders (pytest's tmp_path, tempfile's) differ on every run: shown as <tmp>, so the
# tables change only when what the wizard did changes.
_TEMP_PATH = re.compile(r"(?:/private)?" + re.escape(tempfile.gettempdir()) + r"/[^\s:'\"`,;)]*")


def _cell(value: object) -> str:
    return _TEMP_PATH.sub("<tmp>", re.sub(r"\s+", " ", str(value))).replace("|", "\\|").strip()


def render(rows: list[dict]) -> str:
    lines = ["| fault | what the wizard did | rows lost |", "|---|---|---:|"]
    lines += [f"| {_cell(r['fault'])} | {_cell(r['did'])} | {r['rows_lost']} |" for r in rows if "fault" in r]
    lines += ["", "| bad input | exit | what the wizard said | changed |", "|---|---:|---|---|"]
    lines += [f"| {_cell(r['input'])} | {r['exit_code']} | {_cell(r['message'])} | {_cell(r['changed'])} |"
              for r in rows if "input" in r]
    return "\n".join(lines) + "\n"

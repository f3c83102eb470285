"""README's "What it survives" tables are exactly what the last whole, passing run of the fault tests recorded:
tests/faults/survived.json, written together with README's tables by `python -m tests.faults.survives`.
A hand edit of either shows here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

# Loaded by its path: tests/faults/ is not on sys.path unless its own tests are collected.
_spec = importlib.util.spec_from_file_location("survives", Path(__file__).with_name("faults") / "survives.py")
survives = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(survives)


def test_readme_shows_what_the_last_whole_run_of_the_fault_tests_recorded() -> None:
    rows = json.loads(survives.RECORDS.read_text())
    assert rows and all("fault" in r or "input" in r for r in rows)
    assert survives.readme_tables(survives.README.read_text()) == survives.render(rows)

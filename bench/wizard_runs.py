"""The wizard as a contender: the real console script, and the phase timings from its report."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from bench.pg import drop_database, fresh_database
from bench.sources import source_db, warm_page_cache

WIZARD = Path(sys.executable).with_name("wizard")  # the console script installed beside this Python


def source_url(source: Path | str) -> str:
    """A SQLite file's URL; a URL (a MySQL source) as it is."""
    return source if isinstance(source, str) else f"sqlite:///{source.resolve()}"


def migrate_command(source: Path | str, target_url: str, state_dir: Path) -> list[str]:
    return [str(WIZARD), "migrate", "--source", source_url(source), "--target", target_url,
            "--yes", "--on-orphans", "quarantine", "--state-dir", str(state_dir), "--json"]


def verify_command(source: Path, target_url: str, state_dir: Path) -> list[str]:
    return [str(WIZARD), "verify", "--source", f"sqlite:///{source.resolve()}", "--target", target_url,
            "--state-dir", str(state_dir), "--json"]


def report(state_dir: Path) -> dict:
    """The run's report.json (the newest run in the state directory), or {} when there is none."""
    reports = sorted(state_dir.glob("runs/*/report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text()) if reports else {}


def phases(report: dict) -> dict[str, float]:
    """Seconds per step of the run (preflight, backup, schema, copy, indexes, ...), as the report times them."""
    return {step: float(s) for step, s in (report.get("timings") or {}).items() if isinstance(s, (int, float))}


def phases_note(report: dict) -> str:
    return ", ".join(f"{step} {seconds:.2f}" for step, seconds in phases(report).items())


@contextlib.contextmanager
def moved(executions: int, admin_url: str, database: str, keep: bool = False) -> Iterator[tuple[Path, str, Path, dict]]:
    """The cached sample of that size, moved by `wizard migrate` into a fresh database: (source, target URL,
    state directory, the run's report.json); the database is dropped afterwards unless `keep`."""
    source = source_db(executions)
    warm_page_cache(source)
    target = fresh_database(admin_url, database)
    try:
        with tempfile.TemporaryDirectory() as folder:
            state = Path(folder)
            subprocess.run(migrate_command(source, target, state), check=True, stdout=subprocess.DEVNULL)
            yield source, target, state, report(state)
    finally:
        if not keep:
            drop_database(admin_url, database)

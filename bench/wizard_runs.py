"""The wizard as a contender: the real console script, and the phase timings from its report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

WIZARD = Path(sys.executable).with_name("wizard")  # the console script installed beside this Python


def migrate_command(source: Path, target_url: str, state_dir: Path) -> list[str]:
    return [str(WIZARD), "migrate", "--source", f"sqlite:///{source.resolve()}", "--target", target_url,
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

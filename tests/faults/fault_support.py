"""What every fault test ends with: the wizard run as an operator runs it, and a count of rows lost
that does not trust the wizard's own report (the source, the target and the quarantine, counted)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from engine_data import read
from wizard import sample
from wizard.db import quote

WIZARD = Path(sys.executable).with_name("wizard")
KILL_AT = Path(__file__).with_name("kill_at.py")


def wizard(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`wizard ARGS` in a process of its own, output captured as text."""
    return subprocess.run([str(WIZARD), *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def wizard_killed_at(spec: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`wizard ARGS`, killed with SIGKILL when it reaches `spec` (see kill_at.py); asserts it was."""
    proc = subprocess.run([sys.executable, str(KILL_AT), spec, "--", *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == -9, f"not killed at {spec} (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc


def small_engine_file(path: Path, *statements: str | tuple[str, tuple]) -> Path:
    """A small 1.0.0 engine database (wizard.sample: 2 users, 3 workflows, 20 executions) with `statements` (SQL,
    or SQL and its parameters) run on it in one transaction."""
    sample.build(path, executions=20, workflows=3, users=2)
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(*((statement,) if isinstance(statement, str) else statement))
        conn.commit()
    finally:
        conn.close()
    return path


def migrate(source: Path, target: str, state: Path, *extra: str) -> subprocess.CompletedProcess:
    """`wizard migrate --yes` of the SQLite file `source` to `target`, its runs kept in `state`."""
    return wizard("migrate", "--source", f"sqlite:///{source}", "--target", target, "--state-dir", str(state),
                  "--yes", *extra, cwd=source.parent)


def the_run(state: Path) -> Path:
    """The run folder of the one run in the state directory `state`."""
    (run,) = (Path(state) / "runs").iterdir()
    return run


def source_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {n: conn.execute(f"SELECT count(*) FROM {quote(n)}").fetchone()[0] for n in names}
    finally:
        conn.close()


def quarantined(run_folder: Path | None) -> dict[str, int]:
    if run_folder is None:
        return {}
    return {p.stem: sum(1 for line in p.read_text().splitlines() if line.strip())
            for p in sorted((Path(run_folder) / "quarantine").glob("*.jsonl"))}


def rows_lost(source: Path, target_url: str, run_folder: Path | None = None) -> int:
    """Source rows that are neither in the target nor in the run's quarantine (0, or the test fails
    first), after `wizard verify` has compared both sides row by row and exited 0."""
    args = ["verify", "--source", f"sqlite:///{source}", "--target", target_url, "--json"]
    if run_folder is not None:
        args += ["--state-dir", str(Path(run_folder).parent.parent), "--run", Path(run_folder).name]
    verified = wizard(*args)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    summary = json.loads(verified.stdout.splitlines()[-1])
    assert summary["ok"], summary["summary"]
    held = quarantined(run_folder)
    lost = 0
    for table, n in source_counts(source).items():
        in_target = read(target_url, f"SELECT count(*) FROM {quote(table)}")[0][0]  # PostgreSQL or MySQL
        lost += max(0, n - in_target - held.get(table, 0))
    return lost


def first_line(text: str) -> str:
    """The one line the wizard printed (stderr's last non-empty line for a headless error)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""

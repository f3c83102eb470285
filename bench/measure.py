"""Run a contender as a child process: wall time, and peak RSS of its whole process tree."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

POLL_SECONDS = 0.05  # spikes shorter than this can be missed; the figures are peaks of 20 samples/s


@dataclass
class Measured:
    wall: float  # seconds, process start to exit
    peak_rss: int  # bytes, the highest sum over the process and its descendants
    returncode: int
    stdout: Path
    stderr: Path
    cpu: float = 0.0  # user + sys seconds of the process and the descendants it waited for

    def tail(self, lines: int = 5) -> str:
        text = self.stderr.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            pass
    return total


def run(cmd: list[str], log_stem: Path, env: dict[str, str] | None = None) -> Measured:
    """Run `cmd` to its end; its stdout and stderr go to <log_stem>.out / .err."""
    log_stem.parent.mkdir(parents=True, exist_ok=True)
    out, err = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc))
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, peak, proc.returncode, out, err, cpu)


def wait_for_quiet(busy_percent: float = 15.0, patience: float = 120.0) -> bool:
    """Wait until the machine's CPUs are mostly idle (other work skews every figure); False if they never were."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if psutil.cpu_percent(interval=1.0) < busy_percent:
            return True
    return False

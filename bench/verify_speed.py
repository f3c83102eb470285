"""How fast verification is, next to the copy it checks.

    python -m bench.verify_speed --executions 200000 --repeat 5

Builds (or reuses) the cached sample of that size, moves it with `wizard migrate`
into a fresh database, then runs the row-level verification in this process
`--repeat` times and `wizard verify` once as a whole process. Prints the copy
phase's time (from the run's report.json) and the verification's, both as rows/s.
A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from pathlib import Path

from bench.pg import ADMIN_URL
from bench.wizard_runs import moved, phases, verify_command
from wizard.urls import parse_url
from wizard.verify.run import verify

DATABASE = "bench_verify_speed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="Keep the target database afterwards.")
    args = parser.parse_args()

    with moved(args.executions, args.admin_url, DATABASE, args.keep) as (source, target, state, run):
        copy_seconds = phases(run)["copy"]
        rows = run["totals"]["source_rows"]
        seconds = [_in_process(source, target) for _ in range(args.repeat)]
        began = time.monotonic()
        done = subprocess.run(verify_command(source, target, state), stdout=subprocess.DEVNULL)
        process_seconds = time.monotonic() - began
    best, median = min(seconds), statistics.median(seconds)
    print(json.dumps({
        "executions": args.executions, "rows": rows,
        "copy_seconds": copy_seconds, "copy_rows_per_second": round(rows / copy_seconds),
        "verify_seconds_best": round(best, 3), "verify_seconds_median": round(median, 3),
        "verify_rows_per_second_best": round(rows / best), "verify_rows_per_second_median": round(rows / median),
        "wizard_verify_process_seconds": round(process_seconds, 3), "wizard_verify_exit": done.returncode,
    }, indent=2))


def _in_process(source: Path, target: str) -> float:
    """The whole verification (schema part included), timed in this process."""
    began = time.monotonic()
    result = asyncio.run(verify(parse_url(f"sqlite:///{source}"), parse_url(target)))
    if not result.ok:
        raise SystemExit(f"the verification found differences: {result.summary()}")
    return time.monotonic() - began


if __name__ == "__main__":
    main()

"""What keeping a run's end state costs: recording it at the end of a move, and measuring against it before a
rollback.

    python -m bench.end_state --executions 1000000 --repeat 3

Moves the cached sample of that size with `wizard migrate` into a fresh database and reads the end state's
seconds from the run's report.json (the step that records every row's key and digest); then, in this process,
records it again and measures the target against it `--repeat` times (what `wizard rollback` does before it
asks). Prints the fastest and the median of each. A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from bench.pg import ADMIN_URL
from bench.wizard_runs import moved, phases
from wizard.rollback.since import measure, record_end_state
from wizard.urls import parse_url

DATABASE = "bench_end_state"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()

    with moved(args.executions, args.admin_url, DATABASE) as (_, target, state, run):
        steps = phases(run)
        folder = state / "scratch"
        folder.mkdir()
        db = parse_url(target)
        recorded, measured = [], []
        for _ in range(args.repeat):
            began = time.monotonic()
            asyncio.run(record_end_state(db, folder))
            recorded.append(time.monotonic() - began)
            began = time.monotonic()
            since = asyncio.run(measure(db, folder, "", "move"))
            measured.append(time.monotonic() - began)
            if since.any:
                raise SystemExit(f"the target changed while it was measured: {since.describe()}")
    print(json.dumps({
        "executions": args.executions, "rows": run["totals"]["source_rows"],
        "migrate_end_state_seconds": steps.get("end state"), "migrate_seconds_per_step": steps,
        "record_seconds_best": round(min(recorded), 3), "record_seconds_median": round(statistics.median(recorded), 3),
        "measure_seconds_best": round(min(measured), 3), "measure_seconds_median": round(statistics.median(measured), 3),
    }, indent=2))


if __name__ == "__main__":
    main()

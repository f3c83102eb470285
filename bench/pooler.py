"""`wizard migrate` straight to the server against through a transaction pooler in front of it.

    python -m bench.pooler --pooler 127.0.0.1:6450 [--executions 100000] [--repeat 3] [--routes direct,pooled]

Start the pooler yourself first (PgBouncer with pool_mode = transaction, its databases `*` pointing at the
server of --admin-url). Each run moves the cached sample into a fresh database, by that route; the table
gives the fastest whole migrate and the fastest copy step (from the run's report.json) per route.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.pg import drop_database, fresh_database
from bench.sources import source_db, warm_page_cache
from bench.wizard_runs import migrate_command, phases, report

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def one_move(source: Path, admin_url: str, pooler: str | None, name: str) -> tuple[float, float]:
    """(whole migrate, copy step) in seconds, moved into a fresh database `name`, through `pooler` if given."""
    target = fresh_database(admin_url, name)
    if pooler:
        host, port = pooler.rsplit(":", 1)
        target = make_url(target).set(host=host, port=int(port)).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            began = time.monotonic()
            subprocess.run(migrate_command(source, target, Path(folder)), check=True, stdout=subprocess.DEVNULL)
            whole = time.monotonic() - began
            return whole, phases(report(Path(folder)))["copy"]
    finally:
        drop_database(admin_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--pooler", required=True, help="HOST:PORT of the transaction pooler")
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--routes", default="direct,pooled")
    args = parser.parse_args()
    source = source_db(args.executions)
    warm_page_cache(source)
    routes = args.routes.split(",")
    best: dict[str, tuple[float, float]] = {}
    for i in range(args.repeat):
        for route in routes:
            whole, copy = one_move(source, args.admin_url, args.pooler if route == "pooled" else None,
                                   f"bench_pooler_{route}_{i}")
            was = best.get(route, (float("inf"), float("inf")))
            best[route] = (min(was[0], whole), min(was[1], copy))
    print(f"| route ({args.executions:,} executions) | wizard migrate (s) | copy step (s) |")
    print("|---|---:|---:|")
    for route in routes:
        print(f"| {route} | {best[route][0]:.2f} | {best[route][1]:.2f} |")


if __name__ == "__main__":
    main()

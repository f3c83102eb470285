"""`python -m bench.load --rows 500000,5000000`: peak memory of `wizard migrate` and `wizard verify` on a big table.

For each size: a cached engine database whose executions table holds that many rows (the
engine's 1.0.0 schema, made by wizard.sample with 1,000 workflows and 100 users, then the
executions appended in bulk with a small JSON state), then, into a fresh PostgreSQL
database, the real `wizard migrate --yes` and `wizard verify` as child processes, each
timed with the peak RSS of its process tree (bench/measure.py). Prints a Markdown table,
and how the peak at the largest size compares with the peak at the smallest.
A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench import measure, pg, sources, wizard_runs
from bench.__main__ import run_wizard
from bench.readme import MB, _size
from bench.sources import OUT, SEED, USERS, WORKFLOWS
from wizard import sample
from wizard.backup import human_size

BATCH = 100_000  # executions per executemany; the whole build is one transaction
FLAT = 1.10  # a peak at most this many times the smallest size's peak counts as flat
EPOCH = datetime(2025, 1, 1)
STATE = ('{{"nodes": {{"node_0": {{"status": "{status}", "duration_ms": {ms}}}}}, '
         '"variables": {{"input": "request-{i}", "attempt": {attempt}}}}}')
WHAT = ("executions with a small JSON state (~110 bytes against ~600 in wizard.sample's), "
        f"in the engine's 1.0.0 schema with {WORKFLOWS:,} workflows, {USERS} users and 1 settings row")


def source_path(executions: int) -> Path:
    return OUT / f"load-e{executions}-w{WORKFLOWS}-u{USERS}-s{SEED}.db"


def load_source(executions: int) -> tuple[Path, float | None]:
    """The cached database and the seconds its build took (None when it was already there)."""
    path = source_path(executions)
    if path.exists():
        return path, None
    OUT.mkdir(exist_ok=True)
    part = path.with_suffix(".db.part")  # a build cut short is never mistaken for a cached one
    part.unlink(missing_ok=True)
    began = time.perf_counter()
    sample.build(part, executions=0, workflows=WORKFLOWS, users=USERS, seed=SEED)
    _append_executions(part, executions)
    os.replace(part, path)
    return path, time.perf_counter() - began


def _timestamp(second: int, micro: int) -> str:
    """SQLAlchemy's spelling, 'YYYY-MM-DD HH:MM:SS.ffffff' (cheaper than strftime per row)."""
    day, rest = divmod(second, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{(EPOCH + timedelta(days=day)).date()} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{micro:06d}"


def _executions(first: int, last: int, workflow_ids: list[str]):
    """Rows first..last of the executions table, deterministic, as the engine writes them."""
    statuses, workflows = sample.STATUSES, len(workflow_ids)
    for i in range(first, last + 1):
        h = (i * 2654435761) & 0xFFFFFFFF  # a cheap, well-spread hash of the id
        status = statuses[h % 5]
        done = status in ("completed", "failed")
        started = i * 5 % (300 * 86400)
        yield (i, workflow_ids[h % workflows], status,
               STATE.format(status="failed" if status == "failed" else "completed", ms=h % 5000, i=i,
                            attempt=h % 3 + 1),
               "node timed out" if status == "failed" else None,
               _timestamp(started, h % 999_999 + 1),
               _timestamp(started + h % 600, (h >> 8) % 999_999 + 1) if done else None)


def _append_executions(path: Path, executions: int) -> None:
    """Executions appended in batches in one transaction, journal and fsync off, the
    table's indexes dropped for the load and built again after it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB, for the index builds
        workflow_ids = [r[0] for r in conn.execute("SELECT id FROM workflows ORDER BY id")]
        indexes = [(name, sql) for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='executions' AND sql IS NOT NULL")]
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for first in range(1, executions + 1, BATCH):
            last = min(first + BATCH - 1, executions)
            conn.executemany("INSERT INTO executions VALUES (?,?,?,?,?,?,?)", _executions(first, last, workflow_ids))
            print(f"  {last:,} of {executions:,} executions", file=sys.stderr, end="\r", flush=True)
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        print(file=sys.stderr)
    finally:
        conn.close()


def measure_size(executions: int, admin: str, keep: bool, patience: float) -> dict:
    src, built = load_source(executions)
    counts = sources.row_counts(src)
    sources.warm_page_cache(src)
    quiet = measure.wait_for_quiet(patience=patience)
    print(f"{executions:,} executions: wizard migrate, then wizard verify ...", file=sys.stderr, flush=True)
    figures = run_wizard(executions, src, counts, admin, keep, f"load-{executions}")
    return {"executions": executions, "rows": sum(counts.values()), "source_bytes": src.stat().st_size,
            "build_seconds": built, "quiet": quiet,
            "figures": [f for f in figures if f["name"] in ("wizard migrate", "wizard verify")]}


def render(results: list[dict]) -> str:
    smallest = {f["name"]: f["peak_rss"] for f in results[0]["figures"]}
    lines = ["| rows | source | command | wall (s) | rows/s | peak RSS (MB) | flat? |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in results:
        for f in r["figures"]:
            command = {"wizard migrate": "`wizard migrate --yes`", "wizard verify": "`wizard verify`"}[f["name"]]
            if not f["ok"]:
                command += f" FAILED ({f['note']})"
            base = smallest.get(f["name"])
            if r is results[0] or not base or not f["peak_rss"]:
                flat = "-" if len(results) > 1 else ""
            else:
                times = f["peak_rss"] / base
                flat = f"{times:.2f}x the peak at {_size(results[0]['executions'])}: " + (
                    "flat" if times <= FLAT else "grows")
            seconds = f"{f['seconds']:.1f}" + ("" if r["quiet"] else " (busy)")
            lines.append(f"| {_size(r['executions'])} executions ({r['rows']:,} rows) | "
                         f"{human_size(r['source_bytes'])} | {command} | {seconds} | "
                         f"{r['rows'] / f['seconds']:,.0f} | {f['peak_rss'] / MB:,.0f} | {flat} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="5000000", help="executions per source database, comma separated")
    parser.add_argument("--admin-url", default=pg.ADMIN_URL, help="a PostgreSQL URL allowed to create databases")
    parser.add_argument("--keep", action="store_true", help="keep the target databases for a look afterwards")
    parser.add_argument("--patience", type=float, default=60.0,
                        help="seconds to wait for an idle machine before each size (figures are marked busy after)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.rows.split(","))
    os.chdir(Path(__file__).resolve().parent.parent)
    results = [measure_size(n, args.admin_url, args.keep, args.patience) for n in sizes]
    (OUT / "load-results.json").write_text(json.dumps(results, indent=1))
    print(f"Command: `{shlex.join(['python', '-m', 'bench.load', *(argv if argv is not None else sys.argv[1:])])}`; "
          f"the source: {WHAT}.\n")
    print(render(results))
    migrate = ["wizard", *wizard_runs.migrate_command(Path("/SRC"), "URL", Path("STATE"))[1:]]
    verify = ["wizard", *wizard_runs.verify_command(Path("/SRC"), "URL", Path("STATE"))[1:]]
    print(f"\nThe commands: `{shlex.join(migrate)}`, then `{shlex.join(verify)}` on its target; peak RSS is the process and its children, sampled 20 times a second; "
          f"flat means at most {FLAT:.2f}x the smallest size's peak. (busy): the CPUs were never idle before the run.")
    for r in results:
        built = f"built in {r['build_seconds']:.0f} s" if r["build_seconds"] is not None else "cached"
        migrate = next((f for f in r["figures"] if f["name"] == "wizard migrate"), None)
        print(f"- {_size(r['executions'])}: source {built}; migrate {migrate['note'] if migrate else '-'}")


if __name__ == "__main__":
    main()

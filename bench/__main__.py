"""`python -m bench --sizes 100000,1000000 [--write-readme]`: every contender, one size after another.

For each size: the cached source database, then into a fresh PostgreSQL database each:
`wizard migrate` (and `wizard verify` on its target), pgloader, and the COPY floor.
With --mysql, the MySQL row instead (bench/mysql_move.py): SQLite -> MariaDB against mysqlimport,
MariaDB -> PostgreSQL against pgloader.
Logs, load files and results.json (results-mysql.json) go to bench/out/.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import psutil

from bench import mariadb, measure, mysql_move, pg, pgloader, readme, sources, wizard_runs
from bench.sources import OUT

ROOT = Path(__file__).resolve().parent.parent
LOGS = OUT / "logs"
CONTENDERS = ("wizard", "pgloader", "floor")


def figure(name: str, seconds: float | None, peak_rss: int | None, ok: bool, note: str = "") -> dict:
    return {"name": name, "seconds": seconds, "peak_rss": peak_rss, "ok": ok, "note": note}


def failed(name: str, m: measure.Measured, why: str) -> dict:
    print(f"  {name} failed ({why}); see {m.stderr}\n{m.tail()}", file=sys.stderr)
    return figure(name, m.wall, m.peak_rss, False, why)


def problem(m: measure.Measured, url: str, expected: dict[str, int]) -> str:
    """'' when the run exited 0 and the target holds every source row, else what went wrong."""
    if m.returncode != 0:
        return f"exit {m.returncode}"
    got = pg.row_counts(url, list(expected))
    return "; ".join(f"{t}: {got[t]} of {n} rows" for t, n in expected.items() if got[t] != n)


@contextlib.contextmanager
def target_db(admin: str, name: str, keep: bool) -> Iterator[str]:
    """A fresh database for one contender, dropped afterwards unless kept."""
    url = pg.fresh_database(admin, name)
    try:
        yield url
    finally:
        if not keep:
            pg.drop_database(admin, name)


def run_wizard(n: int, src: Path, counts: dict[str, int], admin: str, keep: bool, tag: str) -> list[dict]:
    state = OUT / "state" / f"wizard-{n}"
    shutil.rmtree(state, ignore_errors=True)
    with target_db(admin, f"bench_wizard_{n}", keep) as url:
        m = measure.run(wizard_runs.migrate_command(src, url, state), LOGS / f"{tag}-wizard-migrate")
        why = problem(m, url, counts)
        if why:
            out = [failed("wizard migrate", m, why)]
        else:
            report = wizard_runs.report(state)
            (LOGS / f"{tag}-wizard-report.json").write_text(json.dumps(report, indent=1, default=str))
            copy_seconds = wizard_runs.phases(report).get("copy")
            steps = "seconds per step: " + wizard_runs.phases_note(report)
            out = [figure("wizard migrate", m.wall, m.peak_rss, True, steps),
                   figure("wizard copy phase", copy_seconds, None, copy_seconds is not None,
                          "" if copy_seconds is not None else "no copy timing in report.json")]
            v = measure.run(wizard_runs.verify_command(src, url, state), LOGS / f"{tag}-wizard-verify")
            out.append(figure("wizard verify", v.wall, v.peak_rss, True) if v.returncode == 0
                       else failed("wizard verify", v, f"exit {v.returncode}"))
    shutil.rmtree(state, ignore_errors=True)  # it holds a backup as big as the source
    return out


def run_pgloader(n: int, src: Path, counts: dict[str, int], admin: str, keep: bool, tag: str) -> list[dict]:
    with target_db(admin, f"bench_pgloader_{n}", keep) as url:
        load = pgloader.load_file(src, url, LOGS / f"{tag}-pgloader.load")
        m = measure.run(pgloader.command(load), LOGS / f"{tag}-pgloader")
        why = problem(m, url, counts)
    return [failed("pgloader", m, why) if why else figure("pgloader", m.wall, m.peak_rss, True, "whole run")]


def run_floor(n: int, src: Path, counts: dict[str, int], admin: str, keep: bool, tag: str) -> list[dict]:
    with target_db(admin, f"bench_floor_{n}", keep) as url:
        m = measure.run([sys.executable, "-m", "bench.floor", str(src), url], LOGS / f"{tag}-floor")
        why = problem(m, url, counts)
    if why:
        return [failed("floor: asyncpg COPY", m, why)]
    seconds = json.loads(m.stdout.read_text())["copy_seconds"]
    return [figure("floor: asyncpg COPY", seconds, m.peak_rss, True, "COPY only; RSS holds every row")]


def best_of(runs: list[list[dict]]) -> list[dict]:
    """Per figure, the fastest of the repeated runs, with the highest peak RSS any of them had."""
    by_name: dict[str, list[dict]] = {}
    for figures in runs:
        for f in figures:
            by_name.setdefault(f["name"], []).append(f)
    best = []
    for same in by_name.values():
        ok = [f for f in same if f["ok"]] or list(same)
        fastest = min(ok, key=lambda f: f["seconds"] if f["seconds"] is not None else float("inf"))
        rss = [f["peak_rss"] for f in same if f["peak_rss"]]
        best.append({**fastest, "peak_rss": max(rss) if rss else None})
    return best


RUNNERS = {"wizard": run_wizard, "pgloader": run_pgloader, "floor": run_floor}


def measured(runners: dict[str, Callable[[str], list[dict]]], only: list[str], n: int, repeat: int) -> list[dict]:
    """Each contender `repeat` times, after waiting for a quiet machine; per figure the best of its runs."""
    out = []
    for contender in only:
        runs = []
        for i in range(repeat):
            print(f"{n:,} executions: {contender} ({i + 1} of {repeat}) ...", file=sys.stderr, flush=True)
            quiet = measure.wait_for_quiet()
            figures = runners[contender](f"{n}-run{i + 1}")
            runs.append([f if quiet else {**f, "note": f"{f['note']} (the machine was busy)".strip()}
                         for f in figures])
        for f in best_of(runs):
            out.append(f)
            shown = f"{f['seconds']:.2f} s" if f["seconds"] is not None else "-"
            rss = f"{f['peak_rss'] / 2**20:,.0f} MB" if f["peak_rss"] else "-"
            print(f"  {f['name']}: {shown}, peak RSS {rss}{'' if f['ok'] else ' FAILED'}", file=sys.stderr)
    return out


def wizard_commit() -> str:
    """The commit of the wizard measured, and whether its code had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "wizard", "migrations")
    return f"{sha} with uncommitted changes" if dirty else sha


def machine(admin: str) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return {"cpus": os.cpu_count(), "cpu": cpu, "ram_gib": psutil.virtual_memory().total / 2**30,
            "postgres": pg.server_version(admin), "pgloader": pgloader.version(), "python": platform.python_version(),
            "wizard": wizard_commit()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="executions per source database, comma separated")
    parser.add_argument("--only", help=f"contenders to run: {', '.join(CONTENDERS)}; with --mysql: "
                                       f"{', '.join(mysql_move.CONTENDERS)} (default: all)")
    parser.add_argument("--mysql", action="store_true",
                        help="the MySQL row instead: SQLite -> MariaDB against mysqlimport, MariaDB -> PostgreSQL "
                             "against pgloader")
    parser.add_argument("--mysql-url", default=mariadb.SERVER_URL,
                        help="with --mysql: a MariaDB/MySQL URL allowed to create databases")
    parser.add_argument("--admin-url", default=pg.ADMIN_URL, help="a PostgreSQL URL allowed to create databases")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is shown")
    parser.add_argument("--keep", action="store_true", help="keep the target databases for a look afterwards")
    parser.add_argument("--write-readme", action="store_true", help="rewrite README.md's table between the markers")
    parser.add_argument("--readme-from", type=Path, metavar="RESULTS_JSON",
                        help="run nothing: write README.md's table from a results.json (or results-mysql.json) "
                             "of an earlier run")
    args = parser.parse_args(argv)
    if args.readme_from:
        readme.write_run(ROOT / "README.md", json.loads(args.readme_from.read_text()))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    choices = mysql_move.CONTENDERS if args.mysql else CONTENDERS
    only = [c for c in (args.only or ",".join(choices)).split(",") if c]
    unknown = set(only) - set(choices)
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(sorted(unknown))}: choose from {', '.join(choices)}")
    LOGS.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    run = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(args.admin_url),
           "command": shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]),
           "results": [], "load": [os.getloadavg()[0]]}
    if args.mysql:
        run["kind"] = "mysql"
        run["machine"]["mariadb"] = mariadb.server_version(args.mysql_url)
    for n in sizes:
        src = sources.source_db(n)
        counts = sources.row_counts(src)
        sources.warm_page_cache(src)
        result = {"executions": n, "rows": sum(counts.values()), "source_bytes": src.stat().st_size, "figures": []}
        if args.mysql:
            with mysql_move.contenders(n, src, counts, args.mysql_url, args.admin_url, args.keep) as runners:
                result["figures"] = measured(runners, only, n, args.repeat)
        else:
            runners = {c: functools.partial(RUNNERS[c], n, src, counts, args.admin_url, args.keep) for c in only}
            result["figures"] = measured(runners, only, n, args.repeat)
        run["results"].append(result)
    run["load"].append(os.getloadavg()[0])
    (OUT / ("results-mysql.json" if args.mysql else "results.json")).write_text(json.dumps(run, indent=1))
    print(readme.render_run(run))
    if args.write_readme:
        readme.write_run(ROOT / "README.md", run)


if __name__ == "__main__":
    main()

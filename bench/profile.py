"""Where `wizard migrate` spends its time: py-spy samples of one run, summed by function.

`python -m bench.profile --size 100000` migrates the cached source into a fresh PostgreSQL database
(with --mysql-url, a fresh MariaDB/MySQL one) under `py-spy record` (every thread, 250 samples/s), keeps the raw stacks in
bench/out/profile-<size>.txt and prints the hottest functions, by self and by total time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import mariadb, pg, sources, wizard_runs
from bench.sources import OUT

PROJECT_DIRS = ("wizard", "migrations")
FRAME_LINE = re.compile(r":\d+\)$")  # 'func (file.py:123)' -> 'func (file.py)'


def summarise(raw: Path, top: int = 15) -> str:
    """Samples per thread, self samples per function and per line, total samples of the
    project's functions, as Markdown."""
    own: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith("thread ("):
            threads[frames.pop(0)] += n
        samples += n
        if frames:
            lines[frames[-1]] += n
        frames = [FRAME_LINE.sub(")", f) for f in frames]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            total[f] += n

    def table(counter: Counter[str]) -> list[str]:
        rows = ["| % of samples | function (file) |", "|---:|---|"]
        rows += [f"| {100 * c / samples:.1f} | `{f}` |" for f, c in counter.most_common(top)]
        return rows

    out = [f"{samples} samples (active, not idle) from {raw.name}", "", "Per thread:", ""]
    out += [f"- {t}: {100 * c / samples:.1f}%" for t, c in threads.most_common()]
    out += ["", "Self time (the function itself is running):", "", *table(own)]
    out += ["", "Hottest lines (self time):", "", *table(lines)]
    project = Counter({f: c for f, c in total.items() if any(f"({d}/" in f for d in PROJECT_DIRS)})
    out += ["", "Total time of the project's own functions (the function or what it calls):", "", *table(project)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="executions in the source database")
    parser.add_argument("--admin-url", default=pg.ADMIN_URL)
    parser.add_argument("--mysql-url", help="profile the move onto MariaDB/MySQL: a server URL allowed to create "
                                            "databases")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    src = sources.source_db(args.size)
    name = f"bench_profile_{args.size}"
    if args.mysql_url:
        url = mariadb.fresh_database(args.mysql_url, name)
    else:
        url = pg.fresh_database(args.admin_url, name)
    state = OUT / "state" / f"profile-{args.size}"
    shutil.rmtree(state, ignore_errors=True)
    raw = OUT / f"profile-{args.size}.txt"
    cmd = [spy, "record", "--threads", "--rate", "250", "--format", "raw", "--output", str(raw), "--",
           *wizard_runs.migrate_command(src, url, state)]
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        if args.mysql_url:
            mariadb.drop_database(args.mysql_url, name)
        else:
            pg.drop_database(args.admin_url, name)
    print(summarise(raw))


if __name__ == "__main__":
    main()

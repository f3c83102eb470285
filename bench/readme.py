"""The benchmark's results as Markdown, written into README.md between the bench markers."""

from __future__ import annotations

import re
from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
MYSQL_START, MYSQL_END = "<!-- bench-mysql:start -->", "<!-- bench-mysql:end -->"
MB = 1024 * 1024

# (label, numerator, denominator, target, how the target reads)
# The targets of issue 13 (issue 3's and 4's before it: copy 1.25, migrate 0.5, RSS 300 MB).
RATIOS = [
    ("wizard copy / floor", "wizard copy phase", "floor: asyncpg COPY", 1.15, "<= 1.15"),
    ("wizard migrate / pgloader", "wizard migrate", "pgloader", 0.6, "<= 0.6"),
    ("wizard verify / wizard copy", "wizard verify", "wizard copy phase", 1.0, "<= 1.0"),
]
RSS_LIMIT = 200 * MB
# Issue 14's target: the wizard's move onto MariaDB within 1.5x of LOAD DATA (mysqlimport) of the same rows; held
# to its copy step (what mysqlimport does) and, stricter, to the whole migrate. No target for the move off MariaDB.
MYSQL_RATIOS = [
    ("wizard copy / mysqlimport, SQLite -> MariaDB", "wizard copy phase SQLite -> MariaDB", "mysqlimport", 1.5,
     "<= 1.5"),
    ("wizard migrate / mysqlimport, SQLite -> MariaDB", "wizard migrate SQLite -> MariaDB", "mysqlimport", 1.5,
     "<= 1.5"),
    ("wizard migrate / pgloader, MariaDB -> PostgreSQL", "wizard migrate MariaDB -> PostgreSQL",
     "pgloader MariaDB -> PostgreSQL", None, "no target set"),
    ("wizard copy / pgloader, MariaDB -> PostgreSQL", "wizard copy phase MariaDB -> PostgreSQL",
     "pgloader MariaDB -> PostgreSQL", None, "no target set"),
]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _size(executions: int) -> str:
    return f"{executions // 1000:,}k" if executions < 1_000_000 else f"{executions / 1_000_000:g}M"


def figure(result: dict, name: str) -> dict | None:
    return next((f for f in result["figures"] if f["name"] == name), None)


def ratio(result: dict, top: str, bottom: str) -> float | None:
    a, b = figure(result, top), figure(result, bottom)
    if not a or not b or not a["ok"] or not b["ok"] or not a["seconds"] or not b["seconds"]:
        return None
    return a["seconds"] / b["seconds"]


INTRO = """\
`bench/` times, in one run and each into a fresh PostgreSQL database, `wizard migrate`
(the whole command, and its copy step from `report.json`), `wizard verify` on the result,
pgloader 3.6 (Debian's package, given `batch rows = 10000` and `prefetch rows = 10000`:
with its defaults it runs out of heap on the 1M database), and a floor: asyncpg binary
COPY of rows already read and converted in memory. To run it: `apt-get install pgloader`,
`pip install -e '.[bench]'`, then the command below; bench/README.md says what each figure
covers and how pgloader's schema differs. Each figure is the fastest of the repeated runs.
The wizard's whole migrate does what pgloader does not: pre-flight checks with a scan of
every row, a verified backup of the source, and a row-level verification at the end; its
seconds per step are in the note. Steps overlap, so they add up to more than the whole: the
checks run beside the backup, the rows are verified while the indexes build, and the backup's
integrity_check runs beside the copy (backup_check is only the wait for it before the switch);
bench/README.md says which steps cannot overlap and what they cost."""


def _measured_on(run: dict, servers: str) -> str:
    m = run["machine"]
    return (f"Measured {run['date']} on {m['cpus']} cores ({m['cpu']}), {m['ram_gib']:.0f} GiB RAM, "
            f"{servers}, Python {m['python']}; source and target on the same machine, the source file warm in the "
            "page cache."
            + (f" The machine was shared: load average {run['load'][0]:.1f} when the run began, "
               f"{run['load'][1]:.1f} when it ended ({m['cpus']} cores)." if run.get("load") else ""))


def _figures(run: dict) -> list[str]:
    """The command, then one line per figure: its time, rows/s, peak RSS, CPU seconds (when measured) and note."""
    cpu = any("cpu" in f for r in run["results"] for f in r["figures"])
    lines = [
        f"Command: `{run['command']}` (wizard at commit {run['machine']['wizard']})",
        "",
        "| source | contender | time (s) | rows/s | peak RSS (MB) |" + (" CPU (s) |" if cpu else "") + " note |",
        "|---|---|---:|---:|---:|" + ("---:|" if cpu else "") + "---|",
    ]
    for result in run["results"]:
        mb = result["source_bytes"] / MB
        where = f"{_size(result['executions'])} executions, {result['rows']:,} rows, {mb:,.0f} MB"
        for f in result["figures"]:
            rate = result["rows"] / f["seconds"] if f["ok"] and f["seconds"] else None
            rss = f["peak_rss"] / MB if f["peak_rss"] else None
            seconds = f["seconds"] if f["ok"] else None
            lines.append(f"| {where} | {f['name']} | {_num(seconds, '.2f')} | {_num(rate, ',.0f')} | "
                         f"{_num(rss, ',.0f')} |" + (f" {_num(f.get('cpu'), '.2f')} |" if cpu else "")
                         + f" {f['note'] or ('' if f['ok'] else 'failed')} |")
            where = ""
    return lines


def _ratios(run: dict, ratios: list[tuple[str, str, str, float | None, str]]) -> list[str]:
    """One line per ratio, a column per size: its value, and met or missed when it has a target."""
    sizes = run["results"]
    lines = ["| target | " + " | ".join(_size(r["executions"]) for r in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for label, top, bottom, limit, reads in ratios:
        cells = []
        for r in sizes:
            value = ratio(r, top, bottom)
            verdict = "" if limit is None else (" met" if value is not None and value <= limit else " missed")
            cells.append("-" if value is None else f"{value:.2f}{verdict}")
        lines.append(f"| {label} ({reads}) | " + " | ".join(cells) + " |")
    return lines


MYSQL_INTRO = """\
`python -m bench --mysql` times, in one run, two moves. SQLite -> MariaDB: `wizard migrate`
into an empty utf8mb4 database (the whole command, and its copy step from `report.json`)
against `mysqlimport --local` of the same rows, read and converted by the wizard's rules and
written as one tab-separated file per table before the clock starts, into the tables the
wizard creates (so that figure is LOAD DATA LOCAL alone: no reading, converting, checks,
checkpoints or verification). MariaDB -> PostgreSQL: `wizard migrate` off the database
mysqlimport loaded, against pgloader 3.6 reading the same database (Debian's package, with
`bench/pgloader-mysql.load`). Each contender writes into a fresh database, and its row counts
are checked against the source afterwards. bench/README.md says what each figure covers."""


def render(run: dict) -> str:
    m = run["machine"]
    lines = [INTRO, "", _measured_on(run, f"PostgreSQL {m['postgres']}, pgloader {m['pgloader']}"), "",
             *_figures(run), "", *_ratios(run, RATIOS)]
    sizes = run["results"]
    cells = []
    for r in sizes:
        f = figure(r, "wizard migrate")
        rss = f["peak_rss"] if f and f["ok"] else None
        cells.append("-" if rss is None else f"{rss / MB:,.0f} MB {'met' if rss < RSS_LIMIT else 'missed'}")
    lines.append(f"| wizard migrate peak RSS (< {RSS_LIMIT // MB} MB, flat across sizes) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_mysql(run: dict) -> str:
    m = run["machine"]
    servers = f"MariaDB {m['mariadb']}, PostgreSQL {m['postgres']}, pgloader {m['pgloader']}"
    return "\n".join([MYSQL_INTRO, "", _measured_on(run, servers), "", *_figures(run), "",
                      *_ratios(run, MYSQL_RATIOS)])


def render_run(run: dict) -> str:
    return render_mysql(run) if run.get("kind") == "mysql" else render(run)


def write_run(readme: Path, run: dict) -> None:
    """The run's table into README.md between its markers (the MySQL row's own, or the PostgreSQL table's)."""
    markers = (MYSQL_START, MYSQL_END) if run.get("kind") == "mysql" else (START, END)
    write(readme, render_run(run), *markers)


def write(readme: Path, table: str, start: str = START, end: str = END) -> None:
    """Replace what is between the markers; add the markers at the end when there are none."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{start}\n{table}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, count=1, flags=re.S)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    readme.write_text(text)

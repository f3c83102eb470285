"""The MySQL row of `python -m bench --mysql`: SQLite -> MariaDB against mysqlimport, MariaDB -> PostgreSQL
against pgloader.

Per size, before any clock starts, every row of the cached SQLite source is read, converted by the
wizard's own rules (wizard.move.normalize, as the PostgreSQL floor does) and written as one tab-separated
file per table in the form LOAD DATA reads (wizard.mysql.copy's). Then, each into a fresh database:

- mysqlimport: those files, parents first, by `mysqlimport --local --ignore-foreign-keys` into the tables
  the wizard creates at the source's revision (indexes and all, as the wizard's copy loads into them);
  what is timed is the mysqlimport process. Its database is kept as the MariaDB source of the next two.
- wizard SQLite -> MariaDB: `wizard migrate` into an empty utf8mb4 database.
- wizard MariaDB -> PostgreSQL: `wizard migrate` off that MariaDB source.
- pgloader MariaDB -> PostgreSQL: pgloader with bench/pgloader-mysql.load, off the same source.

After each, the target's row counts are checked against the SQLite source's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy.engine import make_url

from bench import mariadb, measure, pg, wizard_runs
from bench.sources import OUT
from wizard import schema
from wizard.db import connect, quote, write_transaction
from wizard.move import normalize
from wizard.move.tables import open_readonly, read_tables
from wizard.mysql.copy import _field as tsv_field
from wizard.urls import parse_url

CONTENDERS = ("mysqlimport", "wizard", "wizard-off", "pgloader")
PGLOADER_TEMPLATE = Path(__file__).with_name("pgloader-mysql.load")
LOGS = OUT / "logs"
FETCH = 10_000

Figure = dict
Runner = Callable[[str], list[Figure]]


def _with_schema(server: str, name: str) -> str:
    """A fresh database holding the engine's tables at the baseline revision, made as the wizard makes them."""
    url = mariadb.fresh_database(server, name)

    async def go() -> None:
        async with connect(parse_url(url)) as conn:
            async with write_transaction(conn):
                await schema.upgrade(conn, schema.history()[0].id)

    asyncio.run(go())
    return url


def export(source: Path, server: str, scratch: str, folder: Path) -> list[Path]:
    """Every source row, converted, as `<table>.tsv` in the target table's column order; parents first."""
    _with_schema(server, scratch)
    try:
        lite = open_readonly(source)
        try:
            files = []
            for table in read_tables(lite):
                kinds = {c.name: c.kind for c in table.columns}
                order = mariadb.columns(server, scratch, table.target)
                if sorted(order) != sorted(kinds):
                    raise SystemExit(f"{table.name}: the source's columns {sorted(kinds)} are not the target's {order}")
                rows = lite.execute(f"SELECT {', '.join(map(quote, order))} FROM {quote(table.name)} "
                                    f"ORDER BY {', '.join(map(quote, table.key))}")
                path = folder / f"{table.target}.tsv"
                with open(path, "w", encoding="utf-8") as f:
                    while chunk := rows.fetchmany(FETCH):
                        f.write("".join("\t".join(tsv_field(normalize.convert(kinds[c], v)[0])
                                                  for c, v in zip(order, r)) + "\n" for r in chunk))
                files.append(path)
            return files
        finally:
            lite.close()
    finally:
        mariadb.drop_database(server, scratch)


def mysqlimport_command(url: str, files: list[Path]) -> tuple[list[str], dict[str, str]]:
    """The command, and its environment: the password (if any) goes by MYSQL_PWD, never on the command line."""
    u = make_url(url)
    cmd = ["mysqlimport", "--local", "--ignore-foreign-keys", "--default-character-set=utf8mb4",
           f"--host={u.host or '127.0.0.1'}", f"--port={u.port or 3306}", f"--user={u.username or 'root'}",
           u.database, *map(str, files)]
    return cmd, ({"MYSQL_PWD": u.password} if u.password else {})


def mysqlimport_warnings(stdout: str) -> int:
    """The warnings mysqlimport reports per file (LOAD DATA turns a value it altered into one)."""
    return sum(int(w) for w in re.findall(r"Warnings: (\d+)", stdout))


def pgloader_load_file(source_url: str, target_url: str, dest: Path) -> Path:
    dest.write_text(PGLOADER_TEMPLATE.read_text().format(source=source_url, target=target_url,
                                                         database=make_url(source_url).database))
    return dest


def _wrong_counts(got: dict[str, int], expected: dict[str, int]) -> str:
    return "; ".join(f"{t}: {got[t]} of {n} rows" for t, n in expected.items() if got[t] != n)


def _failed(name: str, m: measure.Measured, why: str) -> Figure:
    print(f"  {name} failed ({why}); see {m.stderr}\n{m.tail()}", file=sys.stderr, flush=True)
    return {"name": name, "seconds": m.wall, "peak_rss": m.peak_rss, "cpu": m.cpu, "ok": False, "note": why}


def _figure(name: str, seconds: float | None, m: measure.Measured | None, note: str = "") -> Figure:
    """A figure; `m`, the process measured, gives its peak RSS and CPU seconds (None: a step inside one)."""
    return {"name": name, "seconds": seconds, "peak_rss": m.peak_rss if m else None, "cpu": m.cpu if m else None,
            "ok": seconds is not None, "note": note}


def _wizard_figures(label: str, m: measure.Measured, why: str, state: Path, tag: str) -> list[Figure]:
    if why:
        return [_failed(f"wizard migrate {label}", m, why)]
    report = wizard_runs.report(state)
    (LOGS / f"{tag}-report.json").write_text(json.dumps(report, indent=1, default=str))
    copy = wizard_runs.phases(report).get("copy")
    return [_figure(f"wizard migrate {label}", m.wall, m,
                    "seconds per step: " + wizard_runs.phases_note(report)),
            _figure(f"wizard copy phase {label}", copy, None, "" if copy is not None else "no copy timing in report.json")]


class MySQLRow:
    """One size's contenders of the MySQL row; the MariaDB source of the moves off MySQL is the database
    mysqlimport loaded last (loaded once, untimed, when mysqlimport is not among the contenders)."""

    def __init__(self, executions: int, source: Path, counts: dict[str, int], files: list[Path], server: str,
                 admin: str, keep: bool) -> None:
        self.n, self.source, self.counts, self.files = executions, source, counts, files
        self.server, self.admin, self.keep = server, admin, keep
        self.mariadb_source: str | None = None
        self.prefix = f"bench_mysql_{executions}"

    def runners(self) -> dict[str, Runner]:
        return {"mysqlimport": self.mysqlimport, "wizard": self.wizard_onto, "wizard-off": self.wizard_off,
                "pgloader": self.pgloader}

    def _import(self, tag: str) -> tuple[measure.Measured, str, str]:
        url = _with_schema(self.server, f"{self.prefix}_import")
        cmd, env = mysqlimport_command(url, self.files)
        m = measure.run(cmd, LOGS / f"{tag}-mysqlimport", env)
        why = f"exit {m.returncode}" if m.returncode else ""
        warned = mysqlimport_warnings(m.stdout.read_text())
        why = why or (f"{warned} warnings: values altered" if warned else "")
        why = why or _wrong_counts(mariadb.row_counts(self.server, f"{self.prefix}_import", list(self.counts)),
                                   self.counts)
        return m, url, why

    def mysqlimport(self, tag: str) -> list[Figure]:
        m, url, why = self._import(tag)
        self.mariadb_source = None if why else url
        if why:
            return [_failed("mysqlimport", m, why)]
        return [_figure("mysqlimport", m.wall, m, "LOAD DATA LOCAL of files written before the clock; "
                                                            "RSS is the client's (the server loads)")]

    def _source_url(self, tag: str) -> str:
        if self.mariadb_source is None:
            m, url, why = self._import(f"{tag}-source")
            if why:
                raise SystemExit(f"the MariaDB source could not be loaded: {why}; see {m.stderr}")
            self.mariadb_source = url
        return self.mariadb_source

    def wizard_onto(self, tag: str) -> list[Figure]:
        name = f"{self.prefix}_wizard"
        url = mariadb.fresh_database(self.server, name)
        state = OUT / "state" / f"mysql-onto-{self.n}"
        shutil.rmtree(state, ignore_errors=True)
        try:
            m = measure.run(wizard_runs.migrate_command(self.source, url, state), LOGS / f"{tag}-wizard-onto")
            why = f"exit {m.returncode}" if m.returncode else _wrong_counts(
                mariadb.row_counts(self.server, name, list(self.counts)), self.counts)
            return _wizard_figures("SQLite -> MariaDB", m, why, state, f"{tag}-wizard-onto")
        finally:
            shutil.rmtree(state, ignore_errors=True)  # it holds a backup as big as the source
            if not self.keep:
                mariadb.drop_database(self.server, name)

    def wizard_off(self, tag: str) -> list[Figure]:
        source = self._source_url(tag)
        name = f"bench_wizard_off_mysql_{self.n}"
        url = pg.fresh_database(self.admin, name)
        state = OUT / "state" / f"mysql-off-{self.n}"
        shutil.rmtree(state, ignore_errors=True)
        try:
            m = measure.run(wizard_runs.migrate_command(source, url, state), LOGS / f"{tag}-wizard-off")
            why = f"exit {m.returncode}" if m.returncode else _wrong_counts(
                pg.row_counts(url, list(self.counts)), self.counts)
            return _wizard_figures("MariaDB -> PostgreSQL", m, why, state, f"{tag}-wizard-off")
        finally:
            shutil.rmtree(state, ignore_errors=True)
            if not self.keep:
                pg.drop_database(self.admin, name)

    def pgloader(self, tag: str) -> list[Figure]:
        source = self._source_url(tag)
        name = f"bench_pgloader_mysql_{self.n}"
        url = pg.fresh_database(self.admin, name)
        try:
            load = pgloader_load_file(source, url, LOGS / f"{tag}-pgloader-mysql.load")
            m = measure.run(["pgloader", str(load)], LOGS / f"{tag}-pgloader-mysql")
            why = f"exit {m.returncode}" if m.returncode else _wrong_counts(
                pg.row_counts(url, list(self.counts)), self.counts)
            return [_failed("pgloader MariaDB -> PostgreSQL", m, why) if why else
                    _figure("pgloader MariaDB -> PostgreSQL", m.wall, m, "whole run")]
        finally:
            if not self.keep:
                pg.drop_database(self.admin, name)

    def close(self) -> None:
        if not self.keep:
            mariadb.drop_database(self.server, f"{self.prefix}_import")


@contextlib.contextmanager
def contenders(executions: int, source: Path, counts: dict[str, int], server: str, admin: str,
               keep: bool) -> Iterator[dict[str, Runner]]:
    """The runners of one size, its rows exported first; the files and databases removed afterwards."""
    folder = OUT / f"mysql-export-{executions}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    row = None
    try:
        print(f"{executions:,} executions: exporting the rows for mysqlimport ...", file=sys.stderr, flush=True)
        files = export(source, server, f"bench_mysql_{executions}_scratch", folder)
        row = MySQLRow(executions, source, counts, files, server, admin, keep)
        yield row.runners()
    finally:
        if row is not None:
            row.close()
        shutil.rmtree(folder, ignore_errors=True)

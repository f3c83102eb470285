"""The move SQLite -> MariaDB/MySQL: the wizard's copy against a LOAD DATA floor of the same rows.

    python -m bench.mysql_move [--executions N] [--server mysql://root@127.0.0.1:3306/mysql]

Each contender gets a fresh utf8mb4 database at the engine's revision 0001 (the wizard makes its own;
the floor's is made the same way). The floor reads each table from the same SQLite file, writes it
as a tab-separated file and loads it with one `LOAD DATA LOCAL INFILE` per 10,000 rows (one file for
a whole table loses the connection with aiomysql's 16 MB packets, bench.mysql_driver), no checks,
no conversions, no checkpoints, no verification: what the copy step cannot beat. The wizard's copy
step's seconds come from its report.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import aiomysql
from sqlalchemy.engine import make_url

from bench.sources import source_db, warm_page_cache
from bench.wizard_runs import WIZARD, phases, report
from wizard import schema
from wizard.db import connect, write_transaction
from wizard.urls import parse_url

SERVER = "mysql://root@127.0.0.1:3306/mysql"
TABLES = ("users", "workflows", "executions", "settings")  # parents first
CHUNK = 10_000


def _field(value: Any) -> str:
    """A value as LOAD DATA's default format reads it (\\N is NULL; backslash, tab and newline escaped)."""
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


async def _admin(server: str, sql: str) -> None:
    u = make_url(server)
    conn = await aiomysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                                  autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


def _database(server: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server, f"DROP DATABASE IF EXISTS `{name}`"))


async def _floor(source: Path, url: str, folder: Path) -> float:
    async with connect(parse_url(url)) as conn:
        async with write_transaction(conn):
            await schema.upgrade(conn, "0001")
    u = make_url(url)
    conn = await aiomysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                                  db=u.database, local_infile=True, charset="utf8mb4")
    lite = sqlite3.connect(source)
    began = time.monotonic()
    try:
        async with conn.cursor() as cur:
            await cur.execute("SET SESSION foreign_key_checks = 0")
            for table in TABLES:
                rows = lite.execute(f"SELECT * FROM {table}")
                columns = ", ".join(f"`{d[0]}`" for d in rows.description)
                while chunk := rows.fetchmany(CHUNK):
                    part = folder / f"{table}.tsv"
                    part.write_text("".join("\t".join(map(_field, r)) + "\n" for r in chunk), encoding="utf-8")
                    await cur.execute(f"LOAD DATA LOCAL INFILE '{part}' INTO TABLE `{table}` CHARACTER SET utf8mb4 "
                                      f"({columns})")
                    await conn.commit()
        return time.monotonic() - began
    finally:
        lite.close()
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--server", default=SERVER)
    args = parser.parse_args()
    source = source_db(args.executions)
    warm_page_cache(source)
    with tempfile.TemporaryDirectory() as folder:
        for url in _database(args.server):
            floor = asyncio.run(_floor(source, url, Path(folder)))
        for url in _database(args.server):
            state = Path(folder) / "state"
            began = time.monotonic()
            done = subprocess.run([str(WIZARD), "migrate", "--source", f"sqlite:///{source.resolve()}", "--target",
                                   url, "--yes", "--on-orphans", "quarantine", "--state-dir", str(state), "--json"],
                                  capture_output=True, text=True)
            total = time.monotonic() - began
            if done.returncode != 0:
                raise SystemExit(f"wizard migrate failed: {done.stderr.strip().splitlines()[-1:]}")
            copy = phases(report(state)).get("copy", 0.0)
    print(f"{args.executions:,} executions, SQLite -> {make_url(args.server).host}:")
    print(f"  LOAD DATA floor (per {CHUNK:,} rows): {floor:.2f} s")
    print(f"  wizard copy step: {copy:.2f} s ({copy / floor:.2f}x the floor); whole wizard migrate: {total:.2f} s")


if __name__ == "__main__":
    main()

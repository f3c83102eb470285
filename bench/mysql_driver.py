"""asyncmy against aiomysql, the evidence for the wizard's MySQL driver: a large batch insert and LOAD DATA.

    python -m bench.mysql_driver [--rows 200000] [--repeat 3] [--url mysql://root@127.0.0.1:3306/test]

For each driver, into a fresh table shaped like the engine's executions (a BIGINT id, text, a JSON
document of about 600 bytes, DATETIME(6)): the rows by `executemany` of one INSERT (both drivers
rewrite it into multi-row INSERTs), in chunks of 5,000, each chunk committed; the same rows by one
`LOAD DATA LOCAL INFILE` from a tab-separated file; and by one such LOAD DATA per 5,000-row chunk, each
committed (the time to write each chunk's file included). Prints the fastest of `--repeat` runs, and what
failed. Nothing here is a test: no figure is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from sqlalchemy.engine import make_url

CHUNK = 5000
TABLE = "bench_driver_rows"
CREATE = (f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, status VARCHAR(32) NOT NULL, state LONGTEXT, "
          "started_at DATETIME(6)) CHARACTER SET utf8mb4")
INSERT = f"INSERT INTO {TABLE} (id, status, state, started_at) VALUES (%s, %s, %s, %s)"


def make_rows(n: int) -> list[tuple[Any, ...]]:
    start = datetime(2025, 1, 1)
    state = json.dumps({"nodes": {f"node_{j}": {"status": "completed", "duration_ms": j * 37,
                                               "output": {"result": "value-12345", "tokens": 321}}
                                  for j in range(4)}, "variables": {"input": "request-1", "attempt": 1}})
    return [(i, "completed", state, start + timedelta(seconds=i, microseconds=i % 10**6)) for i in range(1, n + 1)]


def write_tsv(rows: list[tuple[Any, ...]], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3].isoformat(sep=' ')}\n")


async def _connect(driver: str, kw: dict[str, Any]) -> Any:
    if driver == "asyncmy":
        import asyncmy
        return await asyncmy.connect(**kw, local_infile=True)
    import aiomysql
    return await aiomysql.connect(**kw, local_infile=True)


async def _reset(conn: Any) -> None:
    async with conn.cursor() as cur:
        await cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await cur.execute(CREATE)
    await conn.commit()


async def _count(conn: Any) -> int:
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT count(*) FROM {TABLE}")
        return (await cur.fetchone())[0]


async def by_executemany(conn: Any, rows: list[tuple[Any, ...]], _tsv: str) -> None:
    async with conn.cursor() as cur:
        for i in range(0, len(rows), CHUNK):
            await cur.executemany(INSERT, rows[i:i + CHUNK])
            await conn.commit()


async def by_load_data(conn: Any, _rows: list[tuple[Any, ...]], tsv: str) -> None:
    async with conn.cursor() as cur:
        await cur.execute(f"LOAD DATA LOCAL INFILE '{tsv}' INTO TABLE {TABLE} CHARACTER SET utf8mb4 "
                          "FIELDS TERMINATED BY '\\t' (id, status, state, started_at)")
    await conn.commit()


async def by_load_data_chunks(conn: Any, rows: list[tuple[Any, ...]], tsv: str) -> None:
    """One LOAD DATA per chunk of rows, each committed: how a move would checkpoint it."""
    for i in range(0, len(rows), CHUNK):
        part = f"{tsv}.{i}"
        write_tsv(rows[i:i + CHUNK], part)
        await by_load_data(conn, [], part)
        os.unlink(part)


async def timed(driver: str, kw: dict[str, Any], how: Callable[..., Awaitable[None]],
                rows: list[tuple[Any, ...]], tsv: str) -> tuple[float | None, str]:
    conn = await _connect(driver, kw)
    try:
        await _reset(conn)
        began = time.perf_counter()
        try:
            await how(conn, rows, tsv)
        except Exception as exc:  # noqa: BLE001 (the failure is the finding)
            return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        took = time.perf_counter() - began
        got = await _count(conn)
        return took, "" if got == len(rows) else f"{got} rows, not {len(rows)}"
    finally:
        conn.close()  # a failed LOAD DATA can leave the connection unusable: the next run resets the table


async def main(url: str, n: int, repeat: int) -> None:
    u = make_url(url)
    kw = {"host": u.host or "127.0.0.1", "port": u.port or 3306, "user": u.username or "root",
          "password": u.password or "", "db": u.database or "test", "charset": "utf8mb4"}
    rows = make_rows(n)
    with tempfile.TemporaryDirectory() as folder:
        tsv = os.path.join(folder, "rows.tsv")
        write_tsv(rows, tsv)
        print(f"{n:,} rows, {os.path.getsize(tsv) / 1e6:.0f} MB as TSV; fastest of {repeat}")
        for driver in ("asyncmy", "aiomysql"):
            for name, how in (("executemany", by_executemany), ("LOAD DATA LOCAL INFILE", by_load_data),
                              ("LOAD DATA, per chunk", by_load_data_chunks)):
                results = [await timed(driver, kw, how, rows, tsv) for _ in range(repeat)]
                times = [t for t, _ in results if t is not None]
                errors = sorted({e for _, e in results if e})
                shown = f"{min(times):6.2f} s  {n / min(times):>9,.0f} rows/s" if times else "    failed"
                print(f"{driver:9} {name:23} {shown}  {'; '.join(errors)}")
    conn = await _connect("aiomysql", kw)
    async with conn.cursor() as cur:
        await cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mysql://root@127.0.0.1:3306/test")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.rows, args.repeat))

"""The floor: asyncpg binary COPY of rows already read and converted, into the wizard's schema.

`python -m bench.floor SOURCE.db TARGET_URL` creates the engine's tables at the source's
revision on the (empty) target, drops the non-unique indexes and foreign keys as the wizard
does for its load, reads and converts every source row into memory, and only then starts the clock:
the time printed (JSON on stdout) is the COPY alone, the least any copy can take.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import asyncpg
from sqlalchemy import MetaData, inspect

from wizard import schema
from wizard.move import normalize
from wizard.db import connect, quote
from wizard.urls import parse_url

# What the wizard loads without and builds afterwards (wizard.move.target_schema): non-unique
# indexes and foreign keys.
DEFERRED = """
SELECT format('DROP INDEX %s', x.indexrelid::regclass) FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
WHERE c.relnamespace = 'public'::regnamespace AND NOT x.indisprimary AND NOT x.indisunique
UNION ALL
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', k.conrelid::regclass, k.conname) FROM pg_constraint k
WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace
"""

Layout = list[tuple[str, list[tuple[str, str]], list[str]]]  # table, (column, kind), primary key


async def create_target(target_url: str) -> Layout:
    """The engine's tables at the baseline revision, loaded as the wizard loads them; tables parents first."""
    target = parse_url(target_url, "target")
    async with connect(target) as conn:
        async with conn.begin():
            await schema.upgrade(conn, schema.history()[0].id)

        def layout(sync_conn) -> Layout:
            meta = MetaData()
            meta.reflect(sync_conn, only=list(schema.ENGINE_TABLES))
            insp = inspect(sync_conn)
            return [
                (t.name, [(c.name, normalize.kind_of(c.type)) for c in t.columns],
                 insp.get_pk_constraint(t.name)["constrained_columns"])
                for t in meta.sorted_tables
            ]

        out = await conn.run_sync(layout)
    pg = await asyncpg.connect(**target.pg_connect_kwargs())
    try:
        for (ddl,) in await pg.fetch(DEFERRED):
            await pg.execute(ddl)
    finally:
        await pg.close()
    return out


def read_converted(source: Path, layout: Layout) -> dict[str, list[tuple]]:
    """Every source row, converted by the wizard's own rules, in primary-key order."""
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    rows: dict[str, list[tuple]] = {}
    try:
        for table, columns, pk in layout:
            kinds = [kind for _, kind in columns]
            cols = ", ".join(quote(c) for c, _ in columns)
            order = ", ".join(quote(c) for c in pk)
            rows[table] = [
                tuple(normalize.convert(kind, v)[0] for kind, v in zip(kinds, row))
                for row in conn.execute(f"SELECT {cols} FROM {quote(table)} ORDER BY {order}")
            ]
    finally:
        conn.close()
    return rows


async def copy(target_url: str, layout: Layout, rows: dict[str, list[tuple]]) -> float:
    pg = await asyncpg.connect(**parse_url(target_url, "target").pg_connect_kwargs())
    try:
        start = time.perf_counter()
        for table, columns, _ in layout:
            await pg.copy_records_to_table(table, records=rows[table], columns=[c for c, _ in columns])
        return time.perf_counter() - start
    finally:
        await pg.close()


def main(source: str, target_url: str) -> None:
    layout = asyncio.run(create_target(target_url))
    rows = read_converted(Path(source), layout)
    seconds = asyncio.run(copy(target_url, layout, rows))
    print(json.dumps({"copy_seconds": seconds, "rows": sum(len(r) for r in rows.values())}))


if __name__ == "__main__":
    main(*sys.argv[1:3])

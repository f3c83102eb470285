"""Streaming rewrite of a JSON column, in primary-key batches, for the data revisions.

A table is never loaded whole: each batch is read by keyset pagination and its
changed rows written back with one executemany. Progress goes to the callable
the wizard puts in `config.attributes["progress"]` (revision, done, total); a
plain `alembic upgrade` has none and runs silently.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import sqlalchemy as sa
from alembic import context, op

BATCH_ROWS = 2000


def rewrite_json_column(
    revision: str,
    table: str,
    pk: str,
    column: str,
    transform: Callable[[Any], Any],
) -> dict[str, int]:
    """Apply `transform` to every parsed value of `column`; write back the rows it changed.

    `transform` returns the value itself when it has nothing to do, a new object otherwise.

    Returns counts: rows seen, rows changed, rows skipped because their text is not JSON
    (left exactly as they were, and reported, never replaced).
    """
    if context.is_offline_mode():
        op.execute(f"-- {revision}: rewrites {table}.{column} row by row in batches (runs online only)")
        return {"rows": 0, "changed": 0, "invalid_json": 0}
    bind = op.get_bind()
    progress = context.config.attributes.get("progress") or (lambda *_: None)
    src = sa.table(table, sa.column(pk), sa.column(column))
    dst = sa.table(table, sa.column(pk), sa.column(column, sa.JSON))
    total = bind.execute(sa.select(sa.func.count()).select_from(src)).scalar_one()
    counts = {"rows": 0, "changed": 0, "invalid_json": 0}
    update = (
        sa.update(dst)
        .where(dst.c[pk] == sa.bindparam("_pk"))
        .values({column: sa.bindparam("_value", type_=sa.JSON)})
    )
    last = None
    progress(revision, 0, total)
    while True:
        query = sa.select(src.c[pk], src.c[column]).order_by(src.c[pk]).limit(BATCH_ROWS)
        if last is not None:
            query = query.where(src.c[pk] > last)
        rows = bind.execute(query).all()
        if not rows:
            break
        changes = []
        for key, raw in rows:
            if raw is None:
                continue
            try:
                value = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
            except ValueError:
                counts["invalid_json"] += 1
                continue
            new = transform(value)
            if new is not value:
                changes.append({"_pk": key, "_value": new})
        if changes:
            bind.execute(update, changes)
        counts["rows"] += len(rows)
        counts["changed"] += len(changes)
        last = rows[-1][0]
        progress(revision, counts["rows"], total)
    report = context.config.attributes.get("report")
    if report is not None:
        report[revision] = counts
    return counts

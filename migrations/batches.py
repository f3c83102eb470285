"""Streaming rewrite of a JSON column, in primary-key batches, for the data revisions.

A table is never loaded whole: each batch is read by keyset pagination and its
changed rows written back with one executemany. Progress goes to the callable
the wizard puts in `config.attributes["progress"]` (revision, done, total); a
plain `alembic upgrade` has none and runs silently. The same reading, writing
nothing, previews a revision on the database's own rows (`wizard upgrade --sql`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from alembic import context, op

BATCH_ROWS = 2000


@dataclass(frozen=True)
class JsonRewrite:
    """What a data revision does to one JSON column. `up` (the upgrade) and `down` (the downgrade) map a parsed
    value to its new one, or return the value itself when they have nothing to do."""

    table: str
    pk: str
    column: str
    up: Callable[[Any], Any]
    down: Callable[[Any], Any]


def _changed_batches(bind: Any, rewrite: JsonRewrite, transform: Callable[[Any], Any],
                     counts: dict[str, int]) -> Iterator[list[tuple[Any, Any, Any]]]:
    """The rows `transform` changes, one list of (key, value, new value) per batch of BATCH_ROWS rows read by
    keyset pagination (a table is never loaded whole); `counts` kept up to date as they go."""
    src = sa.table(rewrite.table, sa.column(rewrite.pk), sa.column(rewrite.column))
    last = None
    while True:
        # As text: a driver that parses json itself (asyncpg) would raise on a value Python cannot read, past the
        # try below that leaves such a value as it is.
        query = (sa.select(src.c[rewrite.pk], sa.cast(src.c[rewrite.column], sa.Text))
                 .order_by(src.c[rewrite.pk]).limit(BATCH_ROWS))
        if last is not None:
            query = query.where(src.c[rewrite.pk] > last)
        rows = bind.execute(query).all()
        if not rows:
            return
        changed = []
        for key, raw in rows:
            if raw is None:
                continue
            try:
                value = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
            except (ValueError, RecursionError):  # not JSON, or nested past what Python reads (about 1,000 deep)
                counts["invalid_json"] += 1
                continue
            new = transform(value)
            if new is not value:
                changed.append((key, value, new))
        counts["rows"] += len(rows)
        counts["changed"] += len(changed)
        last = rows[-1][0]
        yield changed


def rewrite_json_column(revision: str, rewrite: JsonRewrite, down: bool = False) -> dict[str, int]:
    """Apply `rewrite.up` (`down`: `rewrite.down`) to every parsed value of its column; write back the rows it
    changed.

    Returns counts: rows seen, rows changed, rows skipped because their text is not JSON, or JSON nested deeper
    than Python reads (left exactly as they were, and reported, never replaced).
    """
    if context.is_offline_mode():
        # `wizard upgrade --sql` hands in what this revision would do to the rows the database holds now.
        said = context.config.attributes.get("previews", {}).get(revision)
        op.get_context().impl.static_output(said or f"-- {revision}: rewrites {rewrite.table}.{rewrite.column} "
                                                     "row by row in batches (runs online only)")
        return {"rows": 0, "changed": 0, "invalid_json": 0}
    bind = op.get_bind()
    progress = context.config.attributes.get("progress") or (lambda *_: None)
    dst = sa.table(rewrite.table, sa.column(rewrite.pk), sa.column(rewrite.column, sa.JSON))
    total = _count(bind, rewrite)
    counts = {"rows": 0, "changed": 0, "invalid_json": 0}
    update = (
        sa.update(dst)
        .where(dst.c[rewrite.pk] == sa.bindparam("_pk"))
        .values({rewrite.column: sa.bindparam("_value", type_=sa.JSON)})
    )
    progress(revision, 0, total)
    for changed in _changed_batches(bind, rewrite, rewrite.down if down else rewrite.up, counts):
        if changed:
            bind.execute(update, [{"_pk": key, "_value": new} for key, _, new in changed])
        progress(revision, counts["rows"], total)
    report = context.config.attributes.get("report")
    if report is not None:
        report[revision] = counts
    return counts


def preview_json_column(bind: Any, rewrite: JsonRewrite, progress: Callable[[int, int], None]
                        ) -> tuple[dict[str, int], tuple[Any, Any, Any] | None]:
    """What the upgrade would do to the rows `bind` holds now, writing nothing: the counts rewrite_json_column
    would return, and the first row it would change (key, value, new value), if any. `progress(done, total)`
    after each batch."""
    total = _count(bind, rewrite)
    counts = {"rows": 0, "changed": 0, "invalid_json": 0}
    example = None
    for changed in _changed_batches(bind, rewrite, rewrite.up, counts):
        example = example or (changed[0] if changed else None)
        progress(counts["rows"], total)
    return counts, example


def _count(bind: Any, rewrite: JsonRewrite) -> int:
    return bind.execute(sa.select(sa.func.count()).select_from(sa.table(rewrite.table))).scalar_one()

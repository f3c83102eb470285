"""The rows written to a move's target since its end state, read back from the target by their keys.

The keys are those wizard.rollback.since measured (JSON arrays of the key's values): PostgreSQL's made by
json_build_array on the server, MySQL's by wizard.mysql.rows.key_text; each is matched the way it was made.
The values come as the target's driver gives them: the caller spells them for the database they go into.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from wizard import schema
from wizard.db import connect, quote
from wizard.errors import Refused, StepError
from wizard.mysql.rows import rows_by_key
from wizard.pg import connect_pg
from wizard.rollback.since import Since
from wizard.urls import DbUrl

Shapes = dict[str, tuple[list[str], list[str]]]  # table -> (its key's columns, the columns to read)
Written = dict[str, list[tuple[str, tuple]]]  # table -> (key, the values of its columns)


async def read_written(target: DbUrl, since: Since, shapes: Shapes) -> Written:
    """Per table with rows added or changed since: (key, values of the shape's columns) of each of them, read in
    one snapshot. StepError when one is not there (the target changed while the rollback read it); Refused when
    the engine changed the target's schema since (_refuse_a_schema_changed_since) or PostgreSQL holds a date no
    source can (_refuse_unreadable_times)."""
    await _refuse_a_schema_changed_since(target)
    out = await (_mysql if target.is_mysql else _pg)(target, since, shapes)
    for t in since.tables:
        if len(out.get(t.table, [])) != len(t.added) + len(t.changed):
            raise StepError(f"{t.table} in the target changed while the rollback read it: stop the engine, "
                            f"then roll back again")
    return out


async def _refuse_a_schema_changed_since(target: DbUrl) -> None:
    """A newer engine migrates its database itself: at a revision this wizard does not know, or with columns its
    recorded revision has not, the rows written since may hold values the source has no column for (carried
    back, they were lost, or the check after the carry-back failed). Refused before anything changes."""
    async with connect(target, readonly=True) as conn:
        state = await schema.inspect_schema(conn)
    if state.empty:
        return  # another app's tables, moved as they were (--reflected)
    if state.recorded and state.revision not in {r.id for r in schema.history()}:
        why = f"records revision {state.revision}, which this wizard's history does not know"
    elif state.differences:
        why = f"is {state.describe()}"
    else:
        return
    raise Refused(f"database {target.database} {why}: the engine changed its schema since the move, and rows "
                  f"written since may hold values the source has no column for; nothing was changed: take the "
                  f"database back to the revision the move left with the engine's own migrations, then roll back "
                  f"again, or roll back with --restore-backup (it saves the rows written since in the run folder)")


async def _pg(target: DbUrl, since: Since, shapes: Shapes) -> Written:
    pg = await connect_pg(target, "wizard rollback: carry back")
    out: Written = {}
    try:
        async with pg.transaction(readonly=True, isolation="repeatable_read"):
            for t in since.tables:
                wanted = t.added + t.changed
                if not wanted:
                    continue
                key, columns = shapes[t.table]
                key_sql = f"json_build_array({', '.join(quote(k) for k in key)})::text"
                await _refuse_unreadable_times(pg, t.table, key_sql, columns, wanted)
                records = await pg.fetch(f"SELECT {key_sql}, {', '.join(quote(c) for c in columns)} "
                                         f"FROM {quote(t.table)} WHERE {key_sql} = ANY($1::text[])", wanted)
                out[t.table] = [(r[0], tuple(list(r.values())[1:])) for r in records]
    finally:
        await pg.close()
    return out


async def _refuse_unreadable_times(pg: Any, table: str, key_sql: str, columns: list[str], wanted: list[str]) -> None:
    """A date or timestamp written since that is infinite, BC or past the year 9999: the driver cannot read it
    (BC raised OverflowError, a traceback) or reads infinity as 9999-12-31 23:59:59.999999, and no source the
    move came from spells it. Refused before anything changes, naming the rows."""
    times = [r[0] for r in await pg.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped "
        "AND atttypid IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)", quote(table))
        if r[0] in columns]
    if not times:
        return
    fits = " AND ".join(f"({quote(c)} IS NULL OR (isfinite({quote(c)}) AND {quote(c)} BETWEEN '0001-01-01' AND "
                        f"'9999-12-31 23:59:59.999999'))" for c in times)
    odd = [r[0] for r in await pg.fetch(f"SELECT {key_sql} FROM {quote(table)} WHERE {key_sql} = ANY($1::text[]) "
                                        f"AND NOT ({fits}) ORDER BY 1 LIMIT 5", wanted)]
    if odd:
        raise Refused(f"{table} {', '.join(odd)}: a date or time written since is infinite, BC or past the year "
                      f"9999 ({', '.join(times)}), which the source cannot hold; nothing was changed: set it to a "
                      f"real date in the target, or pass --restore-backup (the rows written since are saved first)")


async def _mysql(target: DbUrl, since: Since, shapes: Shapes) -> Written:
    out: Written = {}
    async with connect(target) as conn:
        async with conn.begin():  # one snapshot (InnoDB's REPEATABLE READ)
            for t in since.tables:
                if t.added or t.changed:
                    key, columns = shapes[t.table]
                    out[t.table] = await rows_by_key(conn, t.table, key, columns, t.added + t.changed)
                    await _refuse_zero_dates(conn, t.table, columns, out[t.table])
    return out


async def _refuse_zero_dates(conn: Any, table: str, columns: list[str], rows: list[tuple[str, tuple]]) -> None:
    """A zero date written since ('0000-00-00', or a zero month or day, which MariaDB takes without NO_ZERO_DATE):
    the driver hands it over as text, carried back it differed from the target (the file restored, exit 1), and
    the engine could not read it as a date. Refused before anything changes, naming the rows, as
    _refuse_unreadable_times refuses what PostgreSQL holds and no source spells."""
    times = {r[0] for r in await conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = :t "
        "AND data_type IN ('date', 'datetime', 'timestamp')"), {"t": table})}
    at = [i for i, c in enumerate(columns) if c in times]
    odd = sorted(k for k, values in rows if any(isinstance(values[i], str) for i in at))
    if odd:
        raise Refused(f"{table} {', '.join(odd[:5])}: a date or time written since is a zero date or has a zero "
                      f"month or day ({', '.join(c for c in columns if c in times)}), which the source cannot hold; "
                      f"nothing was changed: set it to a real date or NULL in the target, or pass --restore-backup "
                      f"(the rows written since are saved first)")

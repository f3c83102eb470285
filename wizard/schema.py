"""The engine's schema history: which revision a database is at, and moving it along.

Alembic is used as a library (its `command` module, the connection handed in
through `Config.attributes`), so the wizard runs revisions inside a transaction
it owns and reports progress per revision and per batch.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import migrations
from migrations.batches import JsonRewrite, preview_json_column
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, UniqueConstraint, create_engine, event, inspect, text
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType, TypeEngine

from wizard.errors import BadInput
from wizard.events import Emit, Progress, StepFinished, StepStarted, ignore
from wizard.urls import DbUrl, parse_url

MIGRATIONS_DIR = Path(migrations.__file__).parent
ENGINE_TABLES = ("users", "workflows", "executions", "settings")
VERSION_TABLE = "alembic_version"


def alembic_config(db: DbUrl | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db is not None:
        # ConfigParser interpolates '%'; a password may hold one.
        cfg.set_main_option("sqlalchemy.url", db.sync_str().replace("%", "%%"))
    return cfg


@dataclass(frozen=True)
class Revision:
    id: str
    description: str


@functools.cache
def history() -> tuple[Revision, ...]:
    """Every known revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    revs = list(script.walk_revisions("base", "heads"))
    revs.reverse()
    return tuple(Revision(r.revision, (r.doc or "").strip().splitlines()[0]) for r in revs)


def head() -> str:
    return history()[-1].id


def resolve_revision(rev: str | None) -> str:
    """'head', a full id or a unique prefix; BadInput for anything else."""
    if rev is None or rev == "head":
        return head()
    ids = [r.id for r in history()]
    matches = [i for i in ids if i == rev] or [i for i in ids if i.startswith(rev)]
    if len(matches) != 1:
        raise BadInput(f"revision '{rev}' is not in the engine's history: known are {', '.join(ids)} and head")
    return matches[0]


def between(current: str | None, target: str) -> list[Revision]:
    """The revisions after `current` up to and including `target` (empty when at or past it)."""
    ids = [r.id for r in history()]
    start = ids.index(current) + 1 if current else 0
    end = ids.index(target) + 1
    return list(history()[start:end])


# --- what each revision looks like, for recognising databases with no alembic_version ---

Shape = dict[str, frozenset[str]]  # table -> column names

# Alembic's `context` and `op` are module-level proxies that each command installs and removes: two
# commands at once in one process (the TUI's SQL preview beside the move's schema step) tear each
# other's down mid-run. Every command here runs under this lock.
ALEMBIC_LOCK = threading.Lock()


@contextlib.contextmanager
def _empty_sqlite() -> Iterator[tuple[Connection, Callable[[str], None]]]:
    """An empty in-memory SQLite and a function that upgrades it to a revision of the history, under the lock."""
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as conn, ALEMBIC_LOCK:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            yield conn, lambda revision: command.upgrade(cfg, revision)
    finally:
        engine.dispose()


@functools.cache
def expected_shapes() -> dict[str, Shape]:
    """The engine's tables and columns at each revision, got by applying it to an empty SQLite."""
    shapes: dict[str, Shape] = {}
    with _empty_sqlite() as (conn, upgrade):
        for rev in history():
            upgrade(rev.id)
            shapes[rev.id] = _shape(inspect(conn))
    return shapes


@functools.cache
def named_indexes(revision: str) -> frozenset[str]:
    """The indexes the engine's schema at `revision` creates under names of its own (ix_...): PostgreSQL
    names its other relations (sequences, keys) itself, around the names already taken."""
    with _empty_sqlite() as (conn, upgrade):
        upgrade(revision)
        insp = inspect(conn)
        return frozenset(i["name"] for t in insp.get_table_names() for i in insp.get_indexes(t)
                         if i.get("name") and not i["name"].startswith("sqlite_autoindex"))


@functools.cache
def indexed_columns(revision: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per engine table, the column sets of every index the engine's schema at `revision` builds (its primary key,
    its UNIQUE constraints, its other indexes)."""
    with _empty_sqlite() as (conn, upgrade):
        upgrade(revision)
        insp = inspect(conn)
        out = {}
        for t in insp.get_table_names():
            sets = [tuple(insp.get_pk_constraint(t)["constrained_columns"])]
            sets += [tuple(u["column_names"]) for u in insp.get_unique_constraints(t)]
            sets += [tuple(i["column_names"]) for i in insp.get_indexes(t) if None not in i["column_names"]]
            out[t] = tuple(dict.fromkeys(s for s in sets if s))
        return out


@functools.cache
def _history_columns(revision: str) -> dict[str, dict[str, Column]]:
    """The engine's columns at `revision`, table -> column, as the history declares them.

    Read from the history itself, run offline for MySQL (`upgrade_sql`, which touches no database): each
    column as Alembic attaches it to the table it creates or adds it to, in this thread only. Alembic's
    stand-ins for the columns of an index or a constraint have no type (NullType) and are passed over. A
    revision that changed a column in place (alter_column) would not show here: none does."""
    found: dict[str, dict[str, Column]] = {}
    here = threading.get_ident()

    def attached(column: Column, table: Any) -> None:
        if threading.get_ident() == here and not isinstance(column.type, NullType):
            found.setdefault(table.name, {})[column.name] = column

    event.listen(Column, "after_parent_attach", attached)
    try:
        upgrade_sql(parse_url("mysql:///engine"), None, revision)
    finally:
        event.remove(Column, "after_parent_attach", attached)
    return found


@functools.cache
def mysql_types(revision: str) -> dict[str, dict[str, TypeEngine]]:
    """The engine's columns at `revision`, table -> column -> the type it has on MySQL and MariaDB (a
    with_variant's MySQL type: VARCHAR(255), LONGTEXT, JSON)."""
    dialect = mysql.dialect()
    return {t: {c: col.type.dialect_impl(dialect) for c, col in cols.items()}
            for t, cols in _history_columns(revision).items()}


@functools.cache
def types(revision: str) -> dict[str, dict[str, TypeEngine]]:
    """The engine's columns at `revision`, table -> column -> the type the history declares."""
    return {t: {c: col.type for c, col in cols.items()} for t, cols in _history_columns(revision).items()}


@functools.cache
def foreign_keys(revision: str) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Per engine table, the foreign keys the history declares at `revision`: (column, parent, parent's column)."""
    return {t: tuple((c, *fk.target_fullname.rsplit(".", 1)) for c, col in cols.items() for fk in col.foreign_keys)
            for t, cols in _history_columns(revision).items()}


@functools.cache
def unique_keys(revision: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per engine table, the column sets the history holds unique at `revision`: its primary key, then each UNIQUE."""
    out = {}
    for t, cols in _history_columns(revision).items():
        tables = {id(c.table): c.table for c in cols.values()}.values()  # a column a revision added has a table of its own
        out[t] = tuple(dict.fromkeys(tuple(c.name for c in k.columns) for table in tables
                                     for k in (table.primary_key, *table.constraints)
                                     if k.columns and (k is table.primary_key or isinstance(k, UniqueConstraint))))
    return out


@functools.cache
def not_null(revision: str) -> dict[str, frozenset[str]]:
    """Per engine table, the columns the history makes NOT NULL at `revision` (its primary key's too)."""
    return {t: frozenset(c for c, col in cols.items() if not col.nullable)
            for t, cols in _history_columns(revision).items()}


def _shape(insp: Any) -> Shape:
    return {
        t: frozenset(c["name"] for c in insp.get_columns(t))
        for t in insp.get_table_names()
        if t in ENGINE_TABLES
    }


@dataclass
class SchemaState:
    revision: str | None  # what alembic_version records, None when it has no row or no table
    recorded: bool  # alembic_version exists and names a revision
    matches: list[str] = field(default_factory=list)  # revisions whose tables these tables match
    # Against the closest revision when none match; against the recorded one when its tables are not that one's.
    differences: list[str] = field(default_factory=list)
    other_tables: list[str] = field(default_factory=list)  # tables the engine's history does not know
    empty: bool = False  # none of the engine's tables

    @property
    def effective(self) -> str | None:
        """The revision the database is at, recorded or recognised."""
        if self.recorded:
            return self.revision
        return self.matches[0] if self.matches else None

    def describe(self) -> str:
        if self.empty:
            return "empty: none of the engine's tables"
        if self.recorded:
            return f"at revision {self.revision}" + (
                f" by its alembic_version, but its tables are not that revision's: {'; '.join(self.differences)}"
                if self.differences else "")
        if self.matches:
            same = ", ".join(self.matches)
            return (
                f"1.0.0, no revision recorded: its tables match revision {same.split(', ')[0]}"
                if self.matches[0] == history()[0].id
                else f"no revision recorded: its tables match revision(s) {same}"
            )
        return "no revision recorded, and its tables match no known revision: " + "; ".join(self.differences)


async def inspect_schema(conn: AsyncConnection) -> SchemaState:
    def run(sync_conn: Any) -> SchemaState:
        insp = inspect(sync_conn)
        tables = insp.get_table_names()
        revision = None
        if VERSION_TABLE in tables:
            revision = sync_conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        shape = _shape(insp)
        other = sorted(t for t in tables if t not in ENGINE_TABLES and t != VERSION_TABLE)
        state = SchemaState(revision, revision is not None, other_tables=other, empty=not shape)
        if state.empty:
            return state
        matches = [rev for rev, expected in expected_shapes().items() if expected == shape]
        state.matches = matches
        if state.recorded and revision in expected_shapes() and revision not in matches:
            state.differences = _differences(shape, revision)
        elif not matches:
            state.differences = _differences(shape)
        return state

    return await conn.run_sync(run)


def _differences(shape: Shape, revision: str | None = None) -> list[str]:
    """What differs from `revision` (None: the closest known one, which it names first), table by table."""
    def distance(expected: Shape) -> int:
        return sum(len(expected.get(t, frozenset()) ^ shape.get(t, frozenset())) for t in set(expected) | set(shape))

    if revision is None:
        rev, expected = min(expected_shapes().items(), key=lambda kv: distance(kv[1]))
        out = [f"closest is {rev}"]
    else:
        rev, expected, out = revision, expected_shapes()[revision], []
    for t in ENGINE_TABLES:
        want, have = expected.get(t), shape.get(t)
        if want is None and have is None:
            continue
        if have is None:
            out.append(f"table {t} is missing")
        elif want is None:
            out.append(f"table {t} is not in {rev}")
        else:
            if want - have:
                out.append(f"{t} lacks {', '.join(sorted(want - have))}")
            if have - want:
                out.append(f"{t} has extra {', '.join(sorted(have - want))}")
    return out


# --- applying revisions ---


def _run_alembic(sync_conn: Any, emit: Emit, step_name: str, stamp: str | None, target: str, down: bool = False) -> dict:
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    report: dict[str, Any] = {}
    cfg.attributes["report"] = report
    cfg.attributes["progress"] = lambda rev, done, total: emit(Progress(step_name, f"revision {rev}", done, total))

    def applied(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        verb = "recorded" if step.is_stamp else "applied" if step.is_upgrade else "reverted"
        emit(StepFinished(step_name, f"{verb} {step.up_revision_id}", {"revision": step.up_revision_id}))

    cfg.attributes["on_version_apply"] = applied
    with ALEMBIC_LOCK:
        if stamp:
            command.stamp(cfg, stamp)
        if down:
            command.downgrade(cfg, target)
        else:
            command.upgrade(cfg, target)
    return report


async def upgrade(conn: AsyncConnection, target: str, emit: Emit = ignore, stamp: str | None = None,
                  step: str = "schema") -> dict:
    """Apply revisions up to `target` on `conn`, inside the caller's transaction.

    `stamp` records a baseline first (a 1.0.0 database), only when the operator agreed.
    Returns per-revision counts from the data revisions.
    """
    emit(StepStarted(step, f"upgrade to {target}"))
    return await conn.run_sync(_run_alembic, emit, step, stamp, target)


async def downgrade(conn: AsyncConnection, target: str | None, emit: Emit = ignore, step: str = "schema") -> dict:
    emit(StepStarted(step, f"downgrade to {target or 'base'}"))
    return await conn.run_sync(_run_alembic, emit, step, None, target or "base", True)


def rewrites(revisions: list[Revision]) -> dict[str, JsonRewrite]:
    """The data revisions among `revisions`, each with what it does to its JSON column (its REWRITE)."""
    script = ScriptDirectory.from_config(alembic_config())
    found = {r.id: getattr(script.get_revision(r.id).module, "REWRITE", None) for r in revisions}
    return {rev: rewrite for rev, rewrite in found.items() if rewrite is not None}


@dataclass
class RewritePreview:
    """What a data revision would do to the rows a database holds now."""

    rewrite: JsonRewrite
    counts: dict[str, int]  # rows, changed, invalid_json
    example: tuple[Any, Any, Any] | None  # the first row it would change: key, value, new value


async def preview_rewrites(conn: AsyncConnection, revisions: list[Revision], emit: Emit = ignore
                           ) -> dict[str, RewritePreview]:
    """What each data revision among `revisions` would do to the rows `conn` holds now; reads only, every row
    (its progress reported as the step "preview")."""
    found = rewrites(revisions)

    def scan(sync_conn: Any) -> dict[str, RewritePreview]:
        return {rev: RewritePreview(rewrite, *preview_json_column(
                    sync_conn, rewrite, lambda done, total, rev=rev: emit(Progress("preview", f"revision {rev}", done,
                                                                                   total))))
                for rev, rewrite in found.items()}

    return await conn.run_sync(scan)


def upgrade_sql(db: DbUrl, current: str | None, target: str, stamp: str | None = None,
                previews: dict[str, str] | None = None, mariadb: bool = False) -> str:
    """The SQL Alembic would run, from offline mode; touches no database.

    `stamp` first records that baseline (a 1.0.0 database), as `upgrade(stamp=...)` does. `previews`: the
    comment that stands for a data revision's rewrite (which runs online only), by revision. `mariadb`: a
    MySQL URL's server is MariaDB (offline, the URL alone cannot say; 0001's collation differs).
    """
    buf = io.StringIO()
    cfg = Config(output_buffer=buf)
    cfg.attributes["previews"] = previews or {}
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["mariadb"] = mariadb
    cfg.set_main_option("sqlalchemy.url", db.sync_str().replace("%", "%%"))
    with ALEMBIC_LOCK:
        if stamp:
            command.stamp(cfg, stamp, sql=True)
        command.upgrade(cfg, f"{current}:{target}" if current else target, sql=True)
    return buf.getvalue()

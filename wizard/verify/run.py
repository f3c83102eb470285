"""Row-level verification: the target holds the source, row by row, named by primary key.

`verify(source, target)` reads both (writes neither), compares every table in
primary-key order, streaming, in constant memory (wizard.verify.rows, with the
rows from wizard.verify.sides), and checks the target's schema against its
revision (wizard.verify.schema). A source value is read by the verifier's own
route (wizard.verify.values), never by the copy's rules, the kind always from the
target column's type: a rule of the copy that is wrong shows as a difference. Directions: SQLite to PostgreSQL, SQLite to
MySQL, MySQL to PostgreSQL, and two databases of the same engine (a backup against the original, before and after
an in-place upgrade).
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable

from wizard import schema
from wizard.db import connect
from wizard.errors import BadInput, Interrupted
from wizard.events import Emit, StepFailed, StepFinished, StepStarted, StopRequest, Warn, ignore
from wizard.journal import file_table
from wizard.move.pgnames import pg_name, renamed
from wizard.mysql.scratch import sweep_on
from wizard.urls import DbUrl
from wizard.verify.rows import STEP, ColumnDiff, RowDiff, TableVerdict, compare_table
from wizard.verify.schema import FAIL, INTERNAL_TABLES, WARN, SchemaFinding, TableShape, check_schema, reflect
from wizard.verify.sides import open_side

__all__ = ["ColumnDiff", "RowDiff", "TableVerdict", "SchemaFinding", "VerifyReport", "verify", "verify_run",
           "load_quarantine", "load_nulled", "load_changed"]


@dataclass
class VerifyReport:
    source: str  # masked URLs
    target: str
    tables: list[TableVerdict]
    schema: list[SchemaFinding]
    elapsed: float = 0.0
    rows_per_second: float | None = None  # source rows compared per second of the row-level part

    @property
    def ok(self) -> bool:
        return all(t.status == "ok" for t in self.tables) and not any(f.status == FAIL for f in self.schema)

    def summary(self) -> str:
        if self.ok:
            equal, held = sum(t.equal for t in self.tables), sum(t.quarantined for t in self.tables)
            return (f"verified: {len(self.tables)} tables, {equal:,} rows equal"
                    + (f", {held:,} in quarantine" if held else "") + ", schema as its revision")
        parts = [f"{t.table} {t.status}" for t in self.tables if t.status != "ok"]
        fails = sum(f.status == FAIL for f in self.schema)
        if fails:
            parts.append(f"{fails} schema finding{'s' if fails > 1 else ''}")
        return "differences found: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary(), **asdict(self)}


def load_quarantine(run_folder: Path) -> dict[str, set]:
    """The primary keys the copy put in quarantine, per table, from <run>/quarantine/<table>.jsonl.

    A `pk` is the source's raw key value, a list of them for a composite key, the rowid for a
    table with no primary key; a BLOB key is written as '\\x' and its hex.
    """
    return {table: set(records) for table, records in _side_file(run_folder, "quarantine").items()}


def load_nulled(run_folder: Path) -> dict[str, dict[Any, frozenset[str]]]:
    """The rows whose dangling foreign keys the copy set to NULL (--on-orphans null), per table:
    key -> those columns, from <run>/nulled/<table>.jsonl."""
    return {
        table: {pk: frozenset(r.get("columns") or ()) for pk, r in records.items()}
        for table, records in _side_file(run_folder, "nulled").items()
    }


def load_changed(run_folder: Path) -> dict[str, dict[Any, dict]]:
    """The rows the run changed on purpose after the copy (the settings move), per table: key ->
    its record ("columns" changed, "reason"), from <run>/changed/<table>.jsonl."""
    return _side_file(run_folder, "changed")


def _side_file(run_folder: Path, kind: str) -> dict[str, dict[Any, dict]]:
    """table -> key -> record, from the copy's JSON-lines side files of one kind."""
    out: dict[str, dict[Any, dict]] = {}
    for path in sorted((Path(run_folder) / kind).glob("*.jsonl")):
        records = out.setdefault(file_table(path), {})
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                pk = record["pk"]
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from an interrupted copy
            if isinstance(pk, list):
                pk = pk[0] if len(pk) == 1 else tuple(pk)
            records[pk] = record
            if isinstance(pk, str) and pk.startswith("\\x"):  # how the copy writes a BLOB key
                with contextlib.suppress(ValueError):
                    records[bytes.fromhex(pk[2:])] = record
    return out


def under_source_names(source: dict[str, TableShape], target: dict[str, TableShape]) -> dict[str, TableShape]:
    """The target's tables, those a move named otherwise (a name over 63 bytes: wizard.move.pgnames) shown under
    their source table's name and column names, so each is compared with the table it came from."""
    out = dict(target)
    for name, shape in source.items():
        columns = renamed(shape.names)
        if pg_name(name) in out and (pg_name(name) != name or columns):
            out[name] = out.pop(pg_name(name)).under(name, {v: k for k, v in columns.items()})
    return out


def _tables(asked: list[str] | None, source: dict[str, TableShape], target: dict[str, TableShape]) -> list[str]:
    if asked:
        unknown = [t for t in asked if t not in source and t not in target]
        if unknown:
            raise BadInput(f"table {', '.join(unknown)} is in neither database: the source has {', '.join(source)}")
        return list(asked)
    return [t for t in source if t not in INTERNAL_TABLES]


async def verify(source: DbUrl, target: DbUrl, emit: Emit = ignore, quarantined: dict[str, set] | None = None,
                 tables: list[str] | None = None, max_keys: int = 100, stop: StopRequest | None = None,
                 nulled: dict[str, dict[Any, frozenset[str]]] | None = None,
                 changed: dict[str, dict[Any, dict]] | None = None,
                 schema_ready: Awaitable[Any] | None = None, run_folder: Path | None = None) -> VerifyReport:
    """Compare `target` with `source` row by row, and `target`'s schema with its revision.

    Reads both, writes neither. `quarantined` holds the keys the copy left out on purpose
    (load_quarantine); they count as quarantined, not as missing. `nulled` holds the foreign
    keys it set to NULL on purpose (load_nulled); NULL there is what the source should become.
    `changed` holds the rows the run changed on purpose after the copy (load_changed).
    `schema_ready`: what the schema check waits for while the rows are compared (a move builds the
    target's indexes meanwhile); the rows need only the columns and keys, there from the start.
    `run_folder`: the run verifying; on a MySQL target the scratch databases its killed runs left are dropped
    first (wizard.mysql.scratch), the only thing written.
    """
    started = time.monotonic()
    quarantined, nulled, changed = quarantined or {}, nulled or {}, changed or {}
    async with connect(source, readonly=True) as conn:
        s_shapes = await reflect(conn)
        s_revision = (await schema.inspect_schema(conn)).effective
    async with connect(target, readonly=True) as conn:
        # Started once both sides answered: a source or target that cannot be used is one line, nothing else.
        emit(StepStarted(STEP, f"verify {target.masked()} against {source.masked()}"))
        if target.is_mysql and run_folder is not None:
            swept = await sweep_on(target, run_folder)
            if swept:
                emit(Warn(STEP, swept))
        t_shapes, findings = await _target_schema(conn, source, target, s_shapes, s_revision, emit,
                                                  schema_ready is None, run_folder)
    names = _tables(tables, s_shapes, t_shapes)
    verdicts = []
    rows_started = time.monotonic()
    async with open_side(source, nul_free=target.kind == "postgresql") as s_side, \
            open_side(target, render=source.is_sqlite) as t_side, _no_gc_pauses():
        for name in names:
            if stop is not None and stop.is_set():
                raise Interrupted(f"verification stopped ({stop.reason}): nothing was written; run it again to verify")
            v = await compare_table(name, s_shapes.get(name), t_shapes.get(name), s_side, t_side,
                                    quarantined.get(name, set()), nulled.get(name, {}), max_keys, emit, stop,
                                    changed.get(name, {}))
            if v.status != "ok":
                emit(Warn(STEP, f"{name}: {_describe(v)}"))
            verdicts.append(v)
    rows_seconds = time.monotonic() - rows_started
    if schema_ready is not None:
        await schema_ready
        async with connect(target, readonly=True) as conn:
            _, findings = await _target_schema(conn, source, target, s_shapes, s_revision, emit, True, run_folder)
    rows = sum(v.source_rows for v in verdicts)
    report = VerifyReport(source.masked(), target.masked(), verdicts, findings, time.monotonic() - started,
                          rows / rows_seconds if rows_seconds > 0 else None)
    data = {"ok": report.ok, "rows": rows, "rows_per_second": report.rows_per_second}
    emit(StepFinished(STEP, report.summary(), data) if report.ok else StepFailed(STEP, report.summary()))
    return report


async def _target_schema(conn: Any, source: DbUrl, target: DbUrl, s_shapes: dict[str, TableShape],
                         s_revision: str | None, emit: Emit, check: bool,
                         run_folder: Path | None) -> tuple[dict[str, TableShape], list[SchemaFinding]]:
    """The target's tables as the rows are compared under (the source's names), and, when `check`, what its
    schema has that its revision does not (each failure said as a warning)."""
    t_shapes = await reflect(conn)
    if source.is_sqlite and not target.is_sqlite:
        t_shapes = under_source_names(s_shapes, t_shapes)
    if not check:
        return t_shapes, []
    t_revision = (await schema.inspect_schema(conn)).effective
    findings = await check_schema(conn, s_shapes, t_shapes, run_folder)
    if s_revision and t_revision and s_revision != t_revision:
        findings.insert(0, SchemaFinding("", "revision", WARN, (
            f"the source is at revision {s_revision} and the target at {t_revision}: the revisions between "
            "them change columns and rows, so the rows they touched differ from the source")))
    for f in findings:
        if f.status == FAIL:
            emit(Warn(STEP, f"schema: {f.detail}"))
    return t_shapes, findings


async def verify_run(source: DbUrl, target: DbUrl, run_folder: Path | None, emit: Emit = ignore,
                     tables: list[str] | None = None, stop: StopRequest | None = None,
                     schema_ready: Awaitable[Any] | None = None) -> VerifyReport:
    """verify() with what the run in `run_folder` did on purpose counted in: its quarantine, the foreign keys
    it set to NULL and the rows it changed after the copy. The one place a verification's inputs are read
    (the move, a re-verification, a carry-back); without a run folder, nothing is expected to differ."""
    if run_folder is None:
        return await verify(source, target, emit, tables=tables, stop=stop, schema_ready=schema_ready)
    return await verify(source, target, emit, load_quarantine(run_folder), tables, stop=stop,
                        nulled=load_nulled(run_folder), changed=load_changed(run_folder), schema_ready=schema_ready,
                        run_folder=run_folder)


@contextlib.asynccontextmanager
async def _no_gc_pauses() -> AsyncIterator[None]:
    """The cyclic collector off while rows stream through: every row is a tuple it would scan
    again and again (a quarter of the time on a million rows), and rows hold no cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _describe(v: TableVerdict) -> str:
    if v.status == "missing":
        return v.note or "missing"
    parts = [f"{n:,} {what}" for n, what in ((v.different, "different"), (v.only_source, "only in the source"),
                                             (v.only_target, "only in the target")) if n]
    return ", ".join(parts + ([v.note] if v.note else []))

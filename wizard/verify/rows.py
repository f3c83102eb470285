"""One table, row by row: both sides merged in key order, each pair of rows compared field by field.

Fields are compared one by one, never concatenated, so ('ab','c') cannot equal
('a','bc') and NULL cannot equal 'NULL'. A pair of rows first gets an exact
whole-row test: for a SQLite source, PostgreSQL renders its values in SQLite's
own spelling (timestamps as SQLAlchemy writes them, booleans as 0/1; see
wizard.verify.sides), so a clean row is a plain tuple comparison. Only a row that fails
it is compared field by field, each source field read by the verifier's own
route (wizard.verify.values, not the copy's rules), and
only a row that differs is kept, up to `max_keys` per table, masked.

Keys are checked a chunk at a time: when a chunk's keys are all of the kind's
plain type, strictly increasing and none in quarantine (the usual case), the
chunk is taken as it is; otherwise row by row, where a key that cannot be
placed (NULL, refused by the rules, twice, out of order after conversion) is a
difference with its reason. Rows whose keys agree are compared in lockstep.

A table with no primary key is compared as a multiset (an order-free sum of row
digests): equal or not, but its differing rows cannot be named.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import contains, lt
from typing import Any, Callable

from wizard.errors import Interrupted, StepError
from wizard.events import Emit, ProgressMeter, StopRequest
from wizard.move.normalize import BOOLEAN, INTEGER, JSON
from wizard.move.tables import rowid_name
from wizard.verify.schema import TableShape
from wizard.verify.show import shown_key, shown_pair
from wizard.verify.sides import Unorderable, key_type

STEP = "verify"


@dataclass
class ColumnDiff:
    column: str
    source: Any  # the compared form, masked and cut (wizard.verify.show)
    target: Any
    detail: str | None = None  # the rule a source value broke, or where two JSON values part


@dataclass
class RowDiff:
    pk: Any
    columns: list[ColumnDiff]
    kind: str  # different | only_source | only_target
    reason: str | None = None


@dataclass
class TableVerdict:
    table: str
    source_rows: int = 0
    target_rows: int = 0
    quarantined: int = 0
    equal: int = 0
    different: int = 0
    only_source: int = 0
    only_target: int = 0
    status: str = "ok"  # ok | differs | missing
    diffs: list[RowDiff] = field(default_factory=list)  # the first max_keys
    columns: dict[str, int] = field(default_factory=dict)  # differing rows per column
    note: str | None = None
    seconds: float = 0.0


# --- the exact tests ---


def _row_test(source: Any, target: Any, flagged: bool) -> Callable[[Any, Any], bool]:
    """A whole-row test, true only when every field is surely equal in its compared form.

    SQLite against a PostgreSQL that renders like SQLite (PgSide): Python's == on the
    tuples, exact under the row's lane flag (SqliteSide.lane_flag, its last field);
    same engine: equal values of the same types, which the same rules convert alike.
    """
    if source.is_sqlite and not target.is_sqlite:
        if flagged:
            return lambda s, t: s[-1] and s[:-1] == t[:]
        return lambda s, t: s == t[:]
    return lambda s, t: s[:] == t[:] and tuple(map(type, s)) == tuple(map(type, t))


def _same(a: Any, b: Any) -> bool:
    """The same value of the same type: for two raw fields, surely equal once converted (PostgreSQL's
    renderings for a SQLite source have SQLite's types: text timestamps, 0/1 booleans); for two
    compared forms, equal."""
    return a is b or (type(a) is type(b) and a == b)


@dataclass(frozen=True)
class _Column:
    name: str
    index: int
    kind: str
    source: Callable[[Any], Any]  # the side's value -> the compared form
    target: Callable[[Any], Any]


def _compared_forms(s_side: Any, t_side: Any, t_shape: TableShape, column: str, kind: str
                    ) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """How each side's value of a column becomes the compared form. JSON from SQLite into a column that keeps it
    as written (PostgreSQL's json, not jsonb or MySQL's JSON, which reorder keys): its key order and whether a
    number is whole count, as the copy passes the text as it is and the engine reads both."""
    if (kind == JSON and s_side.is_sqlite and getattr(t_side, "keeps_json_text", False)
            and t_shape.column(column).type.upper() == "JSON"):
        return s_side.json_kept, t_side.json_kept
    return s_side.value(kind), t_side.value(kind)


# --- the merge ---

_START = object()


class _Stream:
    """One side's rows in key order, a chunk at a time: `rows[i]` has key `keys[i]`.

    Rows that cannot take their place are handed to `misfit`, quarantined ones to `quarantined`.
    """

    def __init__(self, reader: Any, key: Callable[[tuple], Any], plain: type | None, npk: int, quarantine: set,
                 misfit: Callable[[tuple, str], None], quarantined: Callable[[], None]) -> None:
        self.reader = reader
        self.key = key
        self.plain = plain  # the keys' type when one column's plain values are the keys
        self.npk = npk
        self.quarantine = quarantine
        self.misfit = misfit
        self.quarantined = quarantined
        self.rows: list = []
        self.keys: list = []
        self.i = 0
        self.count = 0
        self.exhausted = False
        self.last: Any = _START

    async def ensure(self) -> bool:
        """True when rows[i] is there to take (reading on as needed); False at the end."""
        while self.i >= len(self.rows):
            if self.exhausted:
                return False
            chunk = await self.reader.next()
            self.count += len(chunk)
            if not chunk:
                self.exhausted = True
                return False
            keys = self._plain_keys(chunk)
            if keys is None:
                chunk, keys = self._one_by_one(chunk)
            elif keys:
                self.last = keys[-1]
            self.rows, self.keys, self.i = chunk, keys, 0
        return True

    def _plain_keys(self, chunk: list) -> list | None:
        """The chunk's keys when they need nothing (the usual case), else None."""
        if self.plain is None:
            return None
        keys = [r[0] for r in chunk]
        if set(map(type, keys)) != {self.plain}:
            return None
        if self.plain is str and any(map(contains, keys, repeat("\x00"))):
            return None
        if not all(map(lt, keys, islice(keys, 1, None))) or (self.last is not _START and not keys[0] > self.last):
            return None
        if self.quarantine and not self.quarantine.isdisjoint(keys):
            return None
        return keys

    def _one_by_one(self, chunk: list) -> tuple[list, list]:
        rows, keys = [], []
        for row in chunk:
            if self.quarantine and (row[0] if self.npk == 1 else tuple(row[: self.npk])) in self.quarantine:
                self.quarantined()
                continue
            try:
                k = self.key(row)
            except Unorderable as exc:
                self.misfit(row, str(exc))
                continue
            if self.last is not _START:
                try:
                    in_order = k > self.last
                except TypeError:
                    in_order = False
                if not in_order:
                    self.misfit(row, "its primary key appears twice after conversion" if k == self.last
                                else "its primary key sorts out of place after conversion")
                    continue
            self.last = k
            rows.append(row)
            keys.append(k)
        return rows, keys


class _Tally:
    """Counts and the first `max_keys` differences of one table."""

    def __init__(self, verdict: TableVerdict, columns: list[_Column], npk: int, max_keys: int, quarantine: set,
                 nulled: dict[Any, frozenset[str]], same: Callable[[Any, Any], bool],
                 changed: dict[Any, dict] | None = None) -> None:
        self.v = verdict
        self.columns = columns
        self.npk = npk
        self.max_keys = max_keys
        self.quarantine = quarantine
        self.nulled = nulled
        self.same = same
        self.changed = changed or {}  # key -> the run's record of a change it made on purpose
        self.changed_rows = 0
        self.column_counts: Counter = Counter()

    def _add(self, diff: RowDiff) -> None:
        if len(self.v.diffs) < self.max_keys:
            self.v.diffs.append(diff)

    def _raw_key(self, row: Any) -> Any:
        return row[0] if self.npk == 1 else tuple(row[: self.npk])

    def lockstep(self, src: _Stream, tgt: _Stream) -> None:
        """Compare rows while both sides' keys agree, up to the end of either chunk."""
        i, j = src.i, tgt.i
        n = min(len(src.rows) - i, len(tgt.rows) - j)
        same, equal, taken = self.same, 0, 0
        for s, t, a, b in zip(islice(src.rows, i, i + n), islice(tgt.rows, j, j + n),
                              islice(src.keys, i, i + n), islice(tgt.keys, j, j + n)):
            if a != b:
                break
            taken += 1
            if same(s, t):
                equal += 1
            else:
                self.pair(a, s, t)
        self.v.equal += equal
        src.i += taken
        tgt.i += taken

    def pair(self, key: Any, s: Any, t: Any) -> None:
        """The full comparison of two rows with the same key."""
        bad = []
        cleared = self.nulled and (self.nulled.get(key) or self.nulled.get(self._raw_key(s))) or ()
        change = self._change(key, s)
        if change is not None:
            self.changed_rows += 1
        for col in self.columns:
            a, b = s[col.index], t[col.index]
            # Equal raw booleans are no proof: MySQL's TINYINT(1) holds a 2 as SQLite does, and 2 means nothing.
            if ((col.kind != BOOLEAN and _same(a, b)) or (b is None and col.name in cleared)
                    or (change and col.name in change["columns"])):
                continue
            ca, cb = col.source(a), col.target(b)
            if not _same(ca, cb):
                bad.append((col, ca, cb))
        if not bad:
            self.v.equal += 1
            return
        self.v.different += 1
        for col, _, _ in bad:
            self.column_counts[col.name] += 1
        if len(self.v.diffs) < self.max_keys:
            shown = [ColumnDiff(c.name, *shown_pair(c.name, c.kind, ca, cb)) for c, ca, cb in bad]
            self.v.diffs.append(RowDiff(shown_key(key), shown, "different"))

    def only_source(self, key: Any) -> None:
        self.v.only_source += 1
        self._add(RowDiff(shown_key(key), [], "only_source"))

    def _change(self, key: Any, row: Any) -> dict | None:
        return self.changed and (self.changed.get(key) or self.changed.get(self._raw_key(row))) or None

    def only_target(self, key: Any, row: Any) -> None:
        if self._change(key, row) is not None:  # a row the run made on purpose (the settings move)
            self.changed_rows += 1
            return
        self.v.only_target += 1
        held = self._raw_key(row) in self.quarantine or key in self.quarantine
        self._add(RowDiff(shown_key(key), [], "only_target",
                          "the copy put it in quarantine, yet it is in the target" if held else None))

    def source_misfit(self, row: Any, why: str) -> None:
        self.v.different += 1
        self._add(RowDiff(shown_key(self._raw_key(row)), [], "different", f"cannot be matched: {why}"))

    def target_misfit(self, row: Any, why: str) -> None:
        self.v.only_target += 1
        self._add(RowDiff(shown_key(self._raw_key(row)), [], "only_target", f"cannot be matched: {why}"))

    def quarantined(self) -> None:
        self.v.quarantined += 1


async def _merge(src: _Stream, tgt: _Stream, tally: _Tally, meter: ProgressMeter, stop: StopRequest | None,
                 table: str) -> None:
    s_live, t_live = await src.ensure(), await tgt.ensure()
    seen = 0
    while s_live or t_live:
        if s_live and t_live:
            a, b = src.keys[src.i], tgt.keys[tgt.i]
            try:
                if a == b:
                    tally.lockstep(src, tgt)
                elif a < b:
                    tally.only_source(a)
                    src.i += 1
                else:
                    tally.only_target(b, tgt.rows[tgt.i])
                    tgt.i += 1
            except TypeError:
                raise StepError(f"{table}: the source's primary key {a!r} and the target's {b!r} cannot be "
                                "ordered together: their types differ") from None
        elif s_live:
            tally.only_source(src.keys[src.i])
            src.i += 1
        else:
            tally.only_target(tgt.keys[tgt.i], tgt.rows[tgt.i])
            tgt.i += 1
        if src.i >= len(src.rows):
            s_live = await src.ensure()
            meter.advance(src.count - seen)
            seen = src.count
            if stop is not None and stop.is_set():
                raise Interrupted(f"verification stopped ({stop.reason}) in table {table}: nothing was written; "
                                  "run it again to verify")
        if tgt.i >= len(tgt.rows):
            t_live = await tgt.ensure()


async def _multiset(side: Any, shape: TableShape, columns: list[str], kinds: list[str], skip: set = frozenset(),
                    nulled: dict[Any, frozenset[str]] | None = None) -> tuple[int, int, int]:
    """(rows, rows skipped, an order-free digest of the rest) for a table with no primary key.

    `skip` and `nulled` are keyed by SQLite rowid (the copy's key for such tables): rows it put
    in quarantine, and columns it set to NULL."""
    values = [side.value(k) for k in kinds]
    by_rowid = bool(skip or nulled) and side.is_sqlite
    reader = await (side.reader(shape, [rowid_name(columns), *columns], [INTEGER, *kinds], 0) if by_rowid else
                    side.reader(shape, columns, kinds, 0))
    total, skipped, digest = 0, 0, 0
    try:
        while rows := await reader.next():
            total += len(rows)
            for row in rows:
                if by_rowid:
                    if row[0] in skip:
                        skipped += 1
                        continue
                    cleared = nulled.get(row[0], ()) if nulled else ()
                    row = tuple(None if c in cleared else v for c, v in zip(columns, row[1:]))
                canon = tuple(f(v) for f, v in zip(values, row))
                h = hashlib.blake2b(repr(canon).encode(), digest_size=8).digest()
                digest = (digest + int.from_bytes(h, "big")) % 2**64
    finally:
        await reader.close()
    return total, skipped, digest


def _row_key(fns: list[Callable[[Any], Any]]) -> Callable[[tuple], Any]:
    if len(fns) == 1:
        f = fns[0]
        return lambda row: f(row[0])
    return lambda row: tuple(f(row[i]) for i, f in enumerate(fns))


async def compare_table(name: str, s_shape: TableShape | None, t_shape: TableShape | None, s_side: Any, t_side: Any,
                        quarantine: set, nulled: dict[Any, frozenset[str]], max_keys: int, emit: Emit,
                        stop: StopRequest | None, changed: dict[Any, dict] | None = None) -> TableVerdict:
    """One table's verdict. `quarantine`: source keys the copy left out; `nulled`: source key ->
    the columns the copy set to NULL (its null policy), which must be NULL in the target;
    `changed`: key -> a change the run made on purpose after the copy (its "columns" are not
    compared; a row only in the target is the run's own), named in the verdict's note."""
    started = time.monotonic()
    v = TableVerdict(name)
    if s_shape is None or t_shape is None:
        v.status = "missing"
        if s_shape is None:
            v.target_rows = v.only_target = await t_side.count(name) or 0
            v.note = "not in the source"
        else:
            v.source_rows = await s_side.count(name) or 0
            v.quarantined = len(quarantine)
            v.only_source = max(0, v.source_rows - v.quarantined)
            v.note = "missing in the target"
        v.seconds = time.monotonic() - started
        return v
    common = [c for c in t_shape.names if c in s_shape.names]
    pk = list(t_shape.pk) if t_shape.pk and all(c in common for c in t_shape.pk) else []
    columns = pk + [c for c in common if c not in pk]
    kinds = [t_shape.column(c).kind for c in columns]
    one_sided = sorted(set(s_shape.names) ^ set(t_shape.names))
    if one_sided:
        only_s = [c for c in one_sided if c in s_shape.names]
        only_t = [c for c in one_sided if c in t_shape.names]
        v.note = "; ".join(filter(None, [only_s and "columns only in the source: " + ", ".join(only_s),
                                         only_t and "columns only in the target: " + ", ".join(only_t)]))
    if not pk:
        v.source_rows, v.quarantined, s_digest = await _multiset(s_side, s_shape, columns, kinds, quarantine, nulled)
        v.target_rows, _, t_digest = await _multiset(t_side, t_shape, columns, kinds)
        same = s_digest == t_digest and v.source_rows - v.quarantined == v.target_rows
        v.equal = v.target_rows if same else 0
        v.note = "; ".join(filter(None, [v.note, "no primary key: compared as a whole, differing rows cannot be named"]))
        v.status = "ok" if same and not one_sided else "differs"
        v.seconds = time.monotonic() - started
        return v
    cols = [_Column(c, i, k, *_compared_forms(s_side, t_side, t_shape, c, k))
            for i, (c, k) in enumerate(zip(columns, kinds)) if i >= len(pk)]
    flag = s_side.lane_flag(columns, kinds) if s_side.is_sqlite and not t_side.is_sqlite else None
    same = _row_test(s_side, t_side, flag is not None)
    tally = _Tally(v, cols, len(pk), max_keys, quarantine, nulled, same, changed)
    key_kinds = kinds[: len(pk)]
    plain = key_type(key_kinds[0]) if len(pk) == 1 else None
    meter = ProgressMeter(emit, STEP, name, await s_side.count(name))
    s_reader = await (s_side.reader(s_shape, columns, kinds, len(pk), flag) if flag else
                      s_side.reader(s_shape, columns, kinds, len(pk)))
    try:
        t_reader = await t_side.reader(t_shape, columns, kinds, len(pk))
        try:
            src = _Stream(s_reader, _row_key([s_side.key(k) for k in key_kinds]), plain, len(pk), quarantine,
                          tally.source_misfit, tally.quarantined)
            tgt = _Stream(t_reader, _row_key([t_side.key(k) for k in key_kinds]), plain, len(pk), set(),
                          tally.target_misfit, tally.quarantined)
            await _merge(src, tgt, tally, meter, stop, name)
        finally:
            await t_reader.close()
    finally:
        await s_reader.close()
    meter.finish()
    v.source_rows, v.target_rows = src.count, tgt.count
    v.columns = dict(tally.column_counts.most_common())
    if tally.changed_rows:
        reasons = sorted({r.get("reason", "") for r in tally.changed.values()})
        columns_shown = sorted({c for r in tally.changed.values() for c in r.get("columns", ())})
        v.note = "; ".join(filter(None, [v.note, f"{tally.changed_rows} row(s) changed on purpose ({'; '.join(reasons)}): "
                                                  f"{', '.join(columns_shown)} not compared"]))
    v.status = "differs" if v.different or v.only_source or v.only_target or one_sided else "ok"
    v.seconds = time.monotonic() - started
    return v

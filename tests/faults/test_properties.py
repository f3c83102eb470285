"""Property tests of the rules the copy and the verifier share (wizard/move/normalize.py), and of masking
(wizard/secrets.py, wizard/urls.py): for any value hypothesis can think of, not only the ones we did.

normalize's invariants, as its docstrings and README state them: every spelling of one instant is the same
UTC timestamp (microseconds kept); the documented boolean spellings, in any case, and nothing else; NUL bytes
removed and nothing else changed; JSON compared parsed, by exact number, whatever its key order or spacing, and
NaN refused; numbers by value; and the copy's fast path (an SQLite expression, run here in a real SQLite) never
passes a value that convert() would change or refuse. Masking: for any password, a URL's masked form, text
holding the URL, and a run's journal never show it; the sync and async spellings of a URL parse alike.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from wizard.move import normalize as n
from wizard.journal import new_run
from wizard.verify.values import NoMeaning, expected
from wizard.secrets import MASK, mask
from wizard.urls import parse_url

def verifier(kind: str, value: Any) -> Any:
    """A source value as the verifier reads it (wizard/verify/values.py, not the rules), in the compared form."""
    return n.canonical(kind, expected(kind, value))


BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- timestamps: one instant, many spellings ---

# Years 2..9998: every offset of +-14 h keeps the local time a valid datetime too.
instants = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31, 23, 59, 59, 999999))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


def _clock(t: datetime, micro: str) -> str:
    return t.strftime("%H:%M:%S") + micro


def _fraction(t: datetime, digits: int) -> str:
    """The microseconds with `digits` digits (when that holds them exactly), or ''."""
    text = f"{t.microsecond:06d}"
    if text[digits:].strip("0"):
        return "." + text
    return "." + text[:digits] if digits else ""


def _offset(delta: timedelta, colon: bool) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}{':' if colon else ''}{m:02d}"


@BOUNDED
@given(instants, offsets, st.integers(min_value=0, max_value=6), st.booleans(), st.booleans())
def test_every_spelling_of_an_instant_is_the_same_utc_timestamp(utc: datetime, delta: timedelta, digits: int,
                                                                colon: bool, pad: bool) -> None:
    local = utc + delta
    micro = _fraction(utc, digits)
    day, lday = utc.date().isoformat(), local.date().isoformat()  # strftime's %Y does not pad year 999
    spellings = {
        f"{day} {_clock(utc, '.' + f'{utc.microsecond:06d}')}": None,  # SQLAlchemy's own: no conversion
        f"{day} {_clock(utc, micro)}": None,
        f"{day}T{_clock(utc, micro)}": n.TS_ISO_T,
        f"{day}T{_clock(utc, micro)}Z": n.TS_OFFSET,
        f"{day} {_clock(utc, micro)}Z": n.TS_OFFSET,
        f"{lday}T{_clock(local, micro)}{_offset(delta, colon)}": n.TS_OFFSET,
        f"{lday} {_clock(local, micro)}{_offset(delta, colon)}": n.TS_OFFSET,
    }
    target = n.canonical(n.TIMESTAMP, utc)  # what PostgreSQL gives back for the value the copy wrote
    for spelling, made in spellings.items():
        spelled = f"  {spelling}\t" if pad else spelling
        assert n.convert(n.TIMESTAMP, spelled) == (utc, made), spelled
        assert verifier(n.TIMESTAMP, spelled) == target, spelled
    # A datetime that carries its zone, as a driver may give it, is the same instant too.
    aware = local.replace(tzinfo=timezone(delta))
    assert n.convert(n.TIMESTAMP, aware) == (utc, None)
    assert n.canonical(n.TIMESTAMP, aware) == target


@BOUNDED
@given(instants, instants)
def test_timestamps_compare_to_the_microsecond(a: datetime, b: datetime) -> None:
    assert (n.canonical(n.TIMESTAMP, a) == n.canonical(n.TIMESTAMP, b)) == (a == b)
    assert n.canonical(n.TIMESTAMP, a) == a.isoformat(sep=" ", timespec="microseconds")


@BOUNDED
@given(st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats()),
       st.sampled_from([n.TIMESTAMP, n.DATE]))
@example(20200101, n.DATE)  # a date's digits, once read as epoch seconds and cut to 1970-08-22
@example(1_700_000_000, n.TIMESTAMP)
def test_a_number_in_a_timestamp_or_date_column_is_never_guessed(number: int | float, kind: str) -> None:
    """Epoch seconds, a Julian day (SQLite's own reading of a number) or a date's digits: no rule can know."""
    rule = n.NUMBER_IN_TIMESTAMP if kind == n.TIMESTAMP else n.NUMBER_IN_DATE
    with pytest.raises(n.BadValue, match=re.escape(rule)):
        n.convert(kind, number)
    with pytest.raises(n.BadValue):
        n.convert(kind, str(number))  # nor as text


@BOUNDED
@given(instants, st.text("123456789", min_size=1, max_size=3), st.text("0", max_size=3))
def test_digits_past_the_microsecond_are_refused_unless_zeros(t: datetime, more: str, zeros: str) -> None:
    spelled = t.isoformat(sep=" ", timespec="microseconds")
    with pytest.raises(n.BadValue, match=re.escape(n.SUB_MICROSECOND)):
        n.convert(n.TIMESTAMP, spelled + more + zeros)
    assert n.convert(n.TIMESTAMP, spelled + "0" + zeros) == (t, n.TS_ZEROS)


@BOUNDED
@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)), instants, offsets)
def test_dates_and_a_timestamp_given_as_a_date(d: date, utc: datetime, delta: timedelta) -> None:
    text = d.isoformat()
    assert n.convert(n.DATE, text) == (d, None)
    assert n.convert(n.DATE, d) == (d, None)
    assert n.convert(n.TIMESTAMP, text) == (datetime(d.year, d.month, d.day), n.TS_DATE_ONLY)
    # A timestamp in a date column: the date of its UTC instant when that is midnight, counted; a time of
    # day would be lost, so it is refused.
    local = utc + delta
    spelled = f"{local.date().isoformat()}T{local.strftime('%H:%M:%S.%f')}{_offset(delta, True)}"
    if utc.time() == datetime.min.time():
        assert n.convert(n.DATE, spelled) == (utc.date(), n.DATE_AT_MIDNIGHT)
    else:
        with pytest.raises(n.BadValue, match="a timestamp with a time of day in a date column"):
            n.convert(n.DATE, spelled)
    midnight = datetime(d.year, d.month, d.day).isoformat(sep=" ")
    assert n.convert(n.DATE, midnight) == (d, n.DATE_AT_MIDNIGHT)


@BOUNDED
@given(st.text(max_size=40))
def test_text_that_is_not_a_timestamp_is_refused_by_its_rule(text: str) -> None:
    try:
        value, made = n.convert(n.TIMESTAMP, text)
    except n.BadValue as exc:
        assert exc.rule in ("text that is not a timestamp in a timestamp column", n.SUB_MICROSECOND)
        return
    assert isinstance(value, datetime) and value.tzinfo is None  # whatever it took, a naive UTC timestamp


# --- booleans ---

TRUE = ("t", "true")  # README's spellings, and no others: not 'yes', 'on', 'y' or '1 '
FALSE = ("f", "false")
blanks = st.text(" \t", max_size=3)


@st.composite
def any_case(draw: st.DrawFn, word: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in word)


@BOUNDED
@given(st.sampled_from(TRUE + FALSE).flatmap(any_case), blanks, blanks)
def test_every_documented_boolean_spelling_in_any_case(spelling: str, before: str, after: str) -> None:
    expected = spelling.lower() in TRUE
    assert n.convert(n.BOOLEAN, before + spelling + after) == (expected, n.BOOL_TEXT)
    assert verifier(n.BOOLEAN, before + spelling + after) == n.canonical(n.BOOLEAN, expected)


@BOUNDED
@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.binary(max_size=8),
                 st.sampled_from(["yes", "no", "on", "off", "y", "n", "1", " 0", "YES", "tru", "fals"])))
def test_anything_else_in_a_boolean_column_is_refused(value: Any) -> None:
    if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
        assert n.convert(n.BOOLEAN, value) == (bool(value), None)  # the engine's own spelling
        return
    assume(not (isinstance(value, str) and value.strip().lower() in TRUE + FALSE))
    with pytest.raises(n.BadValue, match="a value that is not a boolean in a boolean column"):
        n.convert(n.BOOLEAN, value)


# --- text: NUL bytes removed, nothing else changed ---

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
with_nuls = st.lists(st.one_of(texts, st.just("\x00")), max_size=6).map("".join)


@BOUNDED
@given(with_nuls)
def test_nul_bytes_are_removed_and_nothing_else(text: str) -> None:
    expected = "".join(c for c in text if c != "\x00")
    made = n.NUL_REMOVED if "\x00" in text else None
    assert n.convert(n.TEXT, text) == (expected, made)
    from_blob = n.TEXT_FROM_BLOB + (f"; {n.NUL_REMOVED}" if made else "")
    assert n.convert(n.TEXT, text.encode("utf-8")) == (expected, from_blob)  # TEXT stored as a BLOB: counted
    assert n.convert(n.TEXT, expected) == (expected, None)  # what the copy made needs nothing more
    assert verifier(n.TEXT, text) == n.canonical(n.TEXT, expected)


@BOUNDED
@given(st.binary(min_size=1, max_size=20))
def test_bytes_that_are_not_utf8_are_refused_not_mangled(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(n.BadValue, match="bytes that are not UTF-8 text in a text column"):
            n.convert(n.TEXT, data)
        return
    assert n.convert(n.TEXT, data)[0] == text.replace("\x00", "")


@BOUNDED
@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_a_number_in_a_text_column_keeps_its_value(number: int | float) -> None:
    text, made = n.convert(n.TEXT, number)
    assert made == n.TEXT_FROM_NUMBER
    assert type(number)(text) == number


# --- JSON: parsed, exact numbers, key order and spacing do not matter ---

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         texts)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts.filter(lambda k: len(k) < 12), inner, max_size=4)),
    max_leaves=20)


def shuffled(value: Any, rnd: Any) -> Any:
    """The same JSON value, every object's keys in another order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: shuffled(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rnd) for v in value]
    return value


@BOUNDED
@given(json_values, st.randoms(use_true_random=False), st.booleans(), st.sampled_from([None, 0, 2]))
def test_json_is_compared_parsed_whatever_its_spelling(value: Any, rnd: Any, ascii_only: bool,
                                                       indent: int | None) -> None:
    plain = json.dumps(value)
    other = json.dumps(shuffled(value, rnd), ensure_ascii=ascii_only, indent=indent)
    dumped = n.dump_json(n.parse_json(plain))
    assert n.dump_json(n.parse_json(other)) == dumped
    assert n.canonical(n.JSON, other) == n.canonical(n.JSON, plain) == dumped
    assert n.dump_json(n.parse_json(dumped)) == dumped  # the compared form is a fixed point
    # The copy keeps the text as it was written (PostgreSQL's json does too) and only checks it.
    assert n.convert(n.JSON, other) == (other, None)
    assert verifier(n.JSON, other) == n.canonical(n.JSON, plain)


def _ref(value: Any) -> Any:
    """An independent canonical form: numbers by exact Decimal value, bool apart from numbers."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    if isinstance(value, list):
        return ("list", tuple(_ref(v) for v in value))
    return ("object", tuple(sorted((k, _ref(v)) for k, v in value.items())))


@BOUNDED
@given(json_values, json_values)
def test_different_json_values_compare_different(a: Any, b: Any) -> None:
    same = n.dump_json(n.parse_json(json.dumps(a))) == n.dump_json(n.parse_json(json.dumps(b)))
    assert same == (_ref(a) == _ref(b)), (a, b)


@st.composite
def exact_numbers(draw: st.DrawFn) -> tuple[Decimal, list[str]]:
    """A finite number, and several JSON spellings of exactly that value (some no float or int() holds)."""
    digits = draw(st.text("0123456789", min_size=1, max_size=draw(st.sampled_from([3, 20, 40, 400]))))
    digits = digits.lstrip("0") or "0"
    exponent = draw(st.one_of(st.integers(-30, 30), st.integers(-6000, 6000)))
    negative = draw(st.booleans()) and digits != "0"
    sign = "-" if negative else ""
    value = Decimal(f"{sign}{digits}e{exponent}")
    zeros = "0" * draw(st.integers(0, 3))
    spellings = [f"{sign}{digits}e{exponent}", f"{sign}{digits}E+{exponent}" if exponent >= 0 else
                 f"{sign}{digits}E{exponent}",
                 f"{sign}{digits[0]}.{digits[1:] + zeros or '0'}e{exponent + len(digits) - 1}"]
    if -60 <= exponent <= 60:
        spellings.append(f"{sign}{format(value.copy_abs(), 'f')}")  # plain digits (abs() would round to 28)
    return value, spellings


@BOUNDED
@given(exact_numbers(), st.booleans())
@example((Decimal("0.1000000000000000001"), ["0.1000000000000000001", "1000000000000000001e-19"]), False)
@example((Decimal("1" + "0" * 5000), ["1" + "0" * 5000, "1e5000", "1.0e5000"]), True)
def test_json_numbers_by_exact_value(number: tuple[Decimal, list[str]], in_object: bool) -> None:
    value, spellings = number
    dumps = set()
    for s in spellings:
        text = f'{{"n": {s}}}' if in_object else f"[{s}]"
        dumped = n.dump_json(n.parse_json(text))
        inner = dumped[5:-1] if in_object else dumped[1:-1]
        assert Decimal(inner) == value, (s, dumped)  # no rounding, no overflow to inf
        dumps.add(dumped)
    assert len(dumps) == 1, dumps
    # One unit in the last digit more is another number, and compares so.
    exponent = value.as_tuple().exponent
    with localcontext() as exact:
        exact.prec = 10_000  # no rounding: the sum has at most one digit more than the value
        nudged = Decimal((0, (1,), exponent)) + value
    text = format(nudged, "f") if abs(exponent) < 60 else str(nudged)
    assert n.dump_json(n.parse_json(f"[{text}]")) != n.dump_json(n.parse_json(f"[{spellings[0]}]"))


@BOUNDED
@given(json_values, st.sampled_from(["NaN", "Infinity", "-Infinity"]))
def test_nan_and_infinity_are_not_json(value: Any, constant: str) -> None:
    text = json.dumps([value, constant]).replace(f'"{constant}"', constant, 1)
    for check in (n.parse_json, lambda t: n.convert(n.JSON, t)):
        with pytest.raises(n.BadValue, match="text that is not valid JSON in a JSON column"):
            check(text)


@BOUNDED
@given(json_values, st.lists(st.integers(min_value=0, max_value=10_000), max_size=4))
def test_nul_bytes_in_json_text_are_removed_and_it_is_still_the_same_json(value: Any, at: list[int]) -> None:
    text = json.dumps(value)
    dirty = text
    for i in sorted({i % (len(text) + 1) for i in at}, reverse=True):
        dirty = dirty[:i] + "\x00" + dirty[i:]
    assert n.convert(n.JSON, dirty) == (text, n.NUL_REMOVED if at else None)


# --- numbers by value ---

@st.composite
def long_decimals(draw: st.DrawFn) -> Decimal:
    """More significant digits than Decimal's default context keeps (28): PostgreSQL's numeric keeps them all."""
    digits = draw(st.text("0123456789", min_size=1, max_size=60)).lstrip("0") or "0"
    return Decimal(f"{'-' if draw(st.booleans()) else ''}{digits}e{draw(st.integers(-40, 40))}")


@BOUNDED
@given(long_decimals(), long_decimals(), st.integers(0, 3), blanks)
@example(Decimal("1.00000000000000000000000000001"), Decimal("1"), 0, "")
@example(Decimal("-0"), Decimal("0"), 0, "")
def test_numeric_values_compare_by_value_to_the_last_digit(a: Decimal, b: Decimal, zeros: int, pad: str) -> None:
    assert (n.canonical(n.NUMERIC, a) == n.canonical(n.NUMERIC, b)) == (a == b)
    # The same number stored as text (trailing zeros, blanks) in SQLite: what the copy sends, compared alike.
    text = pad + format(a, "f") + ("0" * zeros if "." in format(a, "f") else "") + pad
    value, made = n.convert(n.NUMERIC, text)
    assert value == a and made == n.NUMBER_AS_TEXT
    assert verifier(n.NUMERIC, text) == n.canonical(n.NUMERIC, a)
    assert Decimal(n.canonical(n.NUMERIC, a)) == a


@BOUNDED
@given(st.sampled_from([n.SMALLINT, n.INTEGER, n.BIGINT, n.FLOAT, n.NUMERIC]),
       st.text(st.characters(categories=("Nd",)), min_size=1, max_size=4), st.sampled_from(["", "_0", "_000"]))
@example(n.BIGINT, "1", "_000")
@example(n.BIGINT, "١٢٣", "")  # Arabic-Indic digits: Python's int() reads them, PostgreSQL does not
def test_only_ascii_digits_are_numbers(kind: str, digits: str, tail: str) -> None:
    text = digits + tail
    if text.isascii() and not tail:
        assert n.convert(kind, text)[1] == n.NUMBER_AS_TEXT
        return
    with pytest.raises(n.BadValue):
        n.convert(kind, text)


@BOUNDED
@given(st.sampled_from([n.FLOAT, n.NUMERIC, n.BIGINT]),
       st.sampled_from(["nan", "NaN", "inf", "-Infinity", "infinity", "1e999", "0x10", "1_0.5", "١.٥", "+-1", ""]))
def test_text_that_python_reads_as_a_number_but_postgresql_does_not_is_refused(kind: str, text: str) -> None:
    assume((kind, text) != (n.NUMERIC, "1e999"))  # numeric holds it: a 1 and 999 zeros
    with pytest.raises(n.BadValue):
        n.convert(kind, text)


@BOUNDED
@given(st.sampled_from([n.SMALLINT, n.INTEGER, n.BIGINT]), st.integers(), blanks)
def test_whole_numbers_in_range_go_as_they_are_and_out_of_range_are_refused(kind: str, value: int, pad: str) -> None:
    low, high = n.INT_RANGES[kind]
    if low <= value <= high:
        assert n.convert(kind, value) == (value, None)
        assert n.convert(kind, f"{pad}{value}{pad}") == (value, n.NUMBER_AS_TEXT)
        if abs(value) < 2**53:  # a REAL that holds a whole number exactly
            assert n.convert(kind, float(value)) == (value, None)
    else:
        for v in (value, str(value)):
            with pytest.raises(n.BadValue, match=f"a number out of range for {kind}"):
                n.convert(kind, v)


# --- the fast path never disagrees with convert() ---

FAST_KINDS = [n.TEXT, n.JSON, n.TIMESTAMP, n.DATE, n.BOOLEAN, n.BIGINT, n.INTEGER, n.SMALLINT, n.FLOAT, n.BYTES]
looks_like = st.one_of(
    instants.map(lambda t: t.isoformat(sep=" ", timespec="microseconds")),
    instants.map(lambda t: t.isoformat(sep=" ", timespec="microseconds").replace("-", "/", 1)),
    st.dates().map(date.isoformat),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6})?\Z"),
    json_values.map(json.dumps),
    st.sampled_from(["NaN", "[1,]", "{'a': 1}", "{a:1}", '{"a":1}', " 1", "1e999", "-0", "0x10", "true", "null",
                     '"a\tb"', '["\x01"]', "'x'", "[.5]", "[5.]", "+1"]),  # JSON5 and raw control characters
)
sqlite_values = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                          st.floats(allow_nan=False), texts, with_nuls, looks_like, st.binary(max_size=12))


@pytest.fixture(scope="module")
def sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")  # a real SQLite: the copy's expression is SQLite's to judge
    n.add_sql_functions(conn)
    conn.execute("CREATE TABLE t (c)")  # no declared type: each value keeps the storage class it was given
    yield conn
    conn.close()


def check_fast_path(sqlite: sqlite3.Connection, value: Any) -> list[str]:
    """For each kind whose fast path takes `value` (clean_sql, judged by SQLite), convert() must pass it as the
    fast path does; the kinds it was checked for."""
    sqlite.execute("DELETE FROM t")
    sqlite.execute("INSERT INTO t VALUES (?)", (value,))
    stored = sqlite.execute("SELECT c FROM t").fetchone()[0]
    clean = sqlite.execute(f"SELECT {', '.join(n.clean_sql(k, 'c') for k in FAST_KINDS)} FROM t").fetchone()
    checked = [kind for kind, is_clean in zip(FAST_KINDS, clean) if is_clean and stored is not None]
    for kind in checked:
        fast = n.fast(kind)
        assert n.convert(kind, stored) == (fast(stored) if fast else stored, None), (kind, stored)
    return checked


@settings(max_examples=300, deadline=None)
@given(value=sqlite_values)
def test_the_fast_path_takes_only_values_convert_passes_unchanged(sqlite: sqlite3.Connection, value: Any) -> None:
    check_fast_path(sqlite, value)


def test_the_fast_path_check_runs_for_every_kind(sqlite: sqlite3.Connection) -> None:
    """The property above compares only values the fast path takes: here, one such value of every kind is
    compared, so the comparison is shown to run, not skipped for every value hypothesis draws."""
    values = ["text", '{"a": 1}', "2024-01-01 10:00:00.000000", "2024-01-01", 1, 7, b"\x00\x01", 1.5]
    checked = {kind for value in values for kind in check_fast_path(sqlite, value)}
    assert checked == set(FAST_KINDS), set(FAST_KINDS) - checked


@BOUNDED
@given(st.binary(min_size=1, max_size=12))
@example(b"\xff")
@example(b"a\xed\xa0\x80")  # a lone surrogate, as UTF-8 bytes
def test_text_that_is_not_utf8_is_never_clean(sqlite: sqlite3.Connection, data: bytes) -> None:
    sqlite.execute("DELETE FROM t")
    sqlite.execute("INSERT INTO t VALUES (CAST(? AS TEXT))", (data,))
    clean = sqlite.execute(f"SELECT {n.clean_sql(n.TEXT, 'c')}, {n.clean_sql(n.JSON, 'c')} FROM t").fetchone()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert clean == (0, 0)


# --- the verifier's own reading agrees with the rules, value by value ---

ALL_KINDS = FAST_KINDS + [n.NUMERIC]


@st.composite
def spelled_instants(draw: st.DrawFn) -> str:
    utc, delta = draw(instants), draw(offsets)
    local, micro = utc + delta, _fraction(utc, draw(st.integers(0, 9)))
    sep, zone = draw(st.sampled_from([" ", "T"])), draw(st.sampled_from(["", "Z", _offset(delta, True),
                                                                          _offset(delta, False)]))
    when = local if zone not in ("", "Z") else utc
    return f"{when.date().isoformat()}{sep}{_clock(when, micro)}{zone}"


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(sqlite_values, spelled_instants(), st.sampled_from(
    [" 12 ", "1_000", "١٢٣", "nan", "T", "yes", "2024-01-01 00:00:00.9999999", "2024-01-01T10:00+05:75", 9e999])))
def test_the_verifier_reads_every_value_as_the_rules_do(value: Any) -> None:
    """wizard/verify/values.py is written apart from the rules, so that a wrong rule shows; on every value the
    rules get right, it must say the same: the same value, or no meaning where the rules refuse."""
    for kind in ALL_KINDS:
        try:
            converted, _ = n.convert(kind, value)
        except n.BadValue:
            with pytest.raises(NoMeaning):
                expected(kind, value)
            continue
        assert n.canonical(kind, expected(kind, value)) == n.canonical(kind, converted), (kind, value)


# --- URLs and masking ---

names = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=10)
passwords = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=24)
frames = st.sampled_from(["{}", "could not connect to {} (timeout)", "'{}'", '{{"url": "{}", "mail": "a@b.c"}}',
                          "resume with: wizard migrate --target {} --resume", "DATABASE_URL={}\nDEBUG=1"])


def pg_url(password: str, user: str, host: str, db: str, driver: str) -> URL:
    return URL.create(driver, username=user, password=password, host=host, port=5432, database=db)


def _encoded(password: str) -> set[str]:
    return {password, quote(password, safe=""), quote(password)}


@BOUNDED
@given(passwords, names, names, names, st.sampled_from(["postgresql", "postgresql+asyncpg"]), frames)
@example("s3cret pass", "app", "db", "engine", "postgresql", "{}")
@example("p@ss:w/rd", "app", "db", "engine", "postgresql+asyncpg", "could not connect to {} (timeout)")
def test_a_url_with_any_password_is_masked_everywhere_it_is_shown(password: str, user: str, host: str, db: str,
                                                                  driver: str, frame: str) -> None:
    url = pg_url(password, user, host, db, driver)
    text = url.render_as_string(hide_password=False)  # as the wizard writes it (.env) and an operator copies it
    skeleton = url.render_as_string(hide_password=True)
    assume(not any(p in frame.format(skeleton) for p in _encoded(password)))
    parsed = parse_url(text)
    assert parsed.url.password == password
    assert parsed.masked() == str(parsed) == url.set(drivername="postgresql").render_as_string(hide_password=True)
    assert mask(text) == skeleton
    said = mask(frame.format(text))
    assert said == frame.format(skeleton), said  # the password, and only it, replaced
    assert not any(p in said for p in _encoded(password))


raw_passwords = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="@/"), min_size=1,
            max_size=24),  # blanks and quotes and all; '/' ends a URL's authority (RFC 3986)
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="/'\""),
            min_size=1, max_size=24).map(lambda p: p[: len(p) // 2] + "@" + p[len(p) // 2:]),  # a raw '@'
)


@BOUNDED
@given(raw_passwords, names, names, names, frames)
@example("my pass word", "app", "db", "engine", "could not connect to {} (timeout)")
@example("p@ss", "app", "db", "engine", "{}")
def test_a_password_typed_raw_into_a_url_is_masked_in_any_text(password: str, user: str, host: str, db: str,
                                                               frame: str) -> None:
    """As an operator types it in .env or on the command line, not percent-encoded: the masking of free text
    (every line the wizard prints, every journal record) still finds it."""
    text = f"postgresql://{user}:{password}@{host}:5432/{db}"
    said = mask(frame.format(text))
    assume(password not in frame.format(f"postgresql://{user}:{MASK}@{host}:5432/{db}"))
    assert password not in said, said
    assert f"postgresql://{user}:{MASK}@{host}:5432/{db}" in said


@BOUNDED
@given(passwords, st.sampled_from(["PGPASSWORD", "DB_PASSWORD", "OPENAI_API_KEY", "SECRET_TOKEN"]),
       st.sampled_from(["{}", "'{}'", '"{}"']))
def test_a_secret_assignment_is_masked_quoted_or_not(password: str, name: str, quoting: str) -> None:
    assume(quoting != "{}" or not re.search(r"[\s'\"]", password))  # unquoted, a value ends at a blank
    assume(quoting != "'{}'" or "'" not in password)
    assume(quoting != '"{}"' or '"' not in password)
    line = f"export {name}={quoting.format(password)}\nDEBUG=1"
    said = mask(line)
    assume(password not in f"export {name}={MASK}\nDEBUG=1")
    assert password not in said and said == f"export {name}={MASK}\nDEBUG=1"


@FEW
@given(passwords, names, names, names)
@example("s3cret pass", "app", "db", "engine")
def test_a_journal_record_never_holds_the_password(password: str, user: str, host: str, db: str) -> None:
    url = pg_url(password, user, host, db, "postgresql+asyncpg")
    text = url.render_as_string(hide_password=False)
    skeleton = url.render_as_string(hide_password=True)
    written = ["move", skeleton, "--target", f"could not connect to {skeleton}: failed", "copy", MASK,
               "journey", "target", "argv", "step", "error", "action", "db", "password", "nested", "url"]
    assume(not any(p in s for s in written for p in _encoded(password)))
    with tempfile.TemporaryDirectory() as folder:
        run = new_run(Path(folder), "move", target=text, argv=["--target", text])
        run.step_failed("copy", f"could not connect to {text}: failed")
        run.append("undo", action={"db": text, "password": password, "nested": [{"url": text}]})
        raw = run.journal_path.read_bytes()
        records = run.records()
    assert text.encode() not in raw and text.encode("unicode_escape") not in raw
    strings: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ("ts", "run_id", "pid", "kind"):  # the journal's own: a clock, an id
                    strings.append(k)
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            strings.append(value)

    walk(records)
    for p in _encoded(password):
        assert not any(p in s for s in strings), (p, records)
    assert records[0]["target"] == skeleton and records[0]["argv"] == ["--target", skeleton]
    assert records[-1]["action"] == {"db": skeleton, "password": MASK, "nested": [{"url": skeleton}]}


@BOUNDED
@given(passwords, names, names, names, st.one_of(st.none(), st.integers(1, 65535)),
       st.sampled_from(["postgresql", "postgresql+asyncpg", "postgresql+psycopg2", "postgres"]))
def test_sync_and_async_spellings_of_a_postgresql_url_parse_alike(password: str, user: str, host: str, db: str,
                                                                   port: int | None, driver: str) -> None:
    base = URL.create("postgresql", username=user, password=password, host=host, port=port, database=db)
    spelled = base.set(drivername=driver).render_as_string(hide_password=False)
    a, b = parse_url(base.render_as_string(hide_password=False)), parse_url(spelled)
    assert a == b and a.kind == b.kind == "postgresql"
    assert (a.sync_str(), a.async_str(), a.masked(), a.pg_connect_kwargs()) == \
           (b.sync_str(), b.async_str(), b.masked(), b.pg_connect_kwargs())
    assert parse_url(a.async_str()) == parse_url(a.sync_str()) == a  # round trip through .env and back
    assert a.pg_connect_kwargs()["password"] == password


paths = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="/\\?#%"),
                         min_size=1, max_size=10).filter(lambda s: s not in (".", "..")), min_size=1, max_size=4)


@BOUNDED
@given(paths, st.booleans(), st.sampled_from(["sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"]))
def test_sync_and_async_spellings_of_a_sqlite_url_parse_alike(parts: list[str], absolute: bool, driver: str) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    assume(path.strip() == path and path != ":memory:")
    a, b = parse_url(f"sqlite:///{path}"), parse_url(f"{driver}:///{path}")
    assert a == b and a.is_sqlite and a.sqlite_path == b.sqlite_path == Path(path)
    assert parse_url(a.async_str()) == parse_url(a.sync_str()) == a
    assert a.masked() == b.masked() and parse_url(a.masked()) == a  # no password: the masked form names the file

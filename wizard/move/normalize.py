"""The value rules, defined once: what the copy does to a SQLite value on its way to
PostgreSQL; and `canonical`, the form in which the verifier compares two values.

`convert(kind, value)` returns the value PostgreSQL gets and the name of the
conversion it made (None when the value went as it was), or raises BadValue
with the rule it broke. The copy and the scan count the names per column.

The rules are strict: each accepts only spellings whose meaning is certain and
that PostgreSQL itself reads the same way (ASCII digits, no '1_000', no 'nan',
no 'yes'); a rule that would lose information (cut digits, drop a time of day,
guess that a number is epoch seconds) refuses instead, and the policy decides.
The verifier does not call these rules: it checks the target against the source
by a route of its own (wizard.verify.values), so a wrong rule shows.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy.types as sat

# Column kinds, from the target column's type.
TIMESTAMP, DATE, BOOLEAN, JSON, BIGINT, INTEGER, SMALLINT, FLOAT, NUMERIC, TEXT, BYTES = (
    "timestamp", "date", "boolean", "json", "bigint", "integer", "smallint", "float", "numeric", "text", "bytes",
)

INT_RANGES = {BIGINT: (-(2**63), 2**63 - 1), INTEGER: (-(2**31), 2**31 - 1), SMALLINT: (-(2**15), 2**15 - 1)}

# Conversion names, as counted in the run's report.
NUL_REMOVED = "NUL bytes removed"
TS_ISO_T = "timestamp ISO 8601 with T"
TS_OFFSET = "timestamp with offset or Z, to UTC"
TS_DATE_ONLY = "timestamp given as a date alone"
TS_ZEROS = "timestamp's zero digits past the microsecond dropped"
DATE_AT_MIDNIGHT = "date given as a timestamp at midnight"
BOOL_TEXT = "boolean spelled as text"
NUMBER_AS_TEXT = "number stored as text"
TEXT_FROM_NUMBER = "number in a text column"
TEXT_FROM_BLOB = "UTF-8 BLOB read as text"
JSON_FROM_NUMBER = "number stored as a JSON number"
TEXT_IN_BINARY = "text in a binary column"

# Rules that refuse (BadValue), named where other modules test for them.
NOT_UTF8_TEXT = "bytes that are not UTF-8 text in a text column"
NUMBER_IN_TIMESTAMP = "a number in a timestamp column (epoch seconds, a Julian day, digits of a date?): its meaning is not certain"
NUMBER_IN_DATE = "a number in a date column (epoch seconds, a Julian day, digits of a date?): its meaning is not certain"
SUB_MICROSECOND = "digits past the microsecond in a timestamp column: PostgreSQL would round them"
NOT_FINITE_JSON = "a number that is not finite in a JSON column: JSON has no Infinity"

_BLANKS = " \t\n\r\f\v"  # what PostgreSQL's input functions skip around a number or a boolean
_CLOCK = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
_SQLA_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} " + _CLOCK)
_ISO_T = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T" + _CLOCK)
_ISO_TZ = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]" + _CLOCK + r"(Z|[+-][0-9]{2}:?[0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FRACTION = re.compile(r"\.([0-9]+)")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOLEANS = {"t": True, "true": True, "f": False, "false": False}


class BadValue(ValueError):
    """A value PostgreSQL will not take in this column; `rule` names why."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def takes(target: str | None, source: str) -> bool:
    """Whether a target column of kind `target` takes every value of kind `source` as it is: the same kind, or a
    wider whole number (an engine on MySQL may keep its ids in INT where the history makes BIGINT)."""
    if target == source:
        return True
    return source in INT_RANGES and target in INT_RANGES and INT_RANGES[target][1] >= INT_RANGES[source][1]


def kind_of(column_type: sat.TypeEngine) -> str:
    """The kind of a target column, from its SQLAlchemy type (reflected or declared)."""
    t = column_type
    if isinstance(t, sat.JSON) or type(t).__name__.upper() in ("JSON", "JSONB"):
        return JSON
    if isinstance(t, sat.Boolean):
        return BOOLEAN
    if isinstance(t, sat.DateTime):
        return TIMESTAMP
    if isinstance(t, sat.Date):
        return DATE
    if isinstance(t, sat.SmallInteger):
        return SMALLINT
    if isinstance(t, sat.BigInteger):
        return BIGINT
    if isinstance(t, sat.Integer):
        return INTEGER
    if isinstance(t, sat.Float):
        return FLOAT
    if isinstance(t, sat.Numeric):
        return NUMERIC
    if isinstance(t, sat.LargeBinary):
        return BYTES
    return TEXT


def convert(kind: str, value: Any) -> tuple[Any, str | None]:
    """SQLite value -> the value PostgreSQL gets, and the conversion made (or None)."""
    if value is None:
        return None, None
    return _CONVERTERS[kind](value)


def _text(value: Any) -> tuple[Any, str | None]:
    made = None
    if isinstance(value, bytes):
        value, made = _utf8(value, NOT_UTF8_TEXT), TEXT_FROM_BLOB
    elif not isinstance(value, str):
        value, made = _number_text(value), TEXT_FROM_NUMBER
    if "\x00" in value:
        return value.replace("\x00", ""), NUL_REMOVED if made is None else f"{made}; {NUL_REMOVED}"
    return value, made


def _utf8(data: bytes, rule: str) -> str:
    try:
        return data.decode("utf-8")  # strict: a lone surrogate (ED A0 80) is refused too, as PostgreSQL does
    except UnicodeDecodeError:
        raise BadValue(rule) from None


def _number_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _json(value: Any) -> tuple[Any, str | None]:
    made = None
    if isinstance(value, bytes):
        value, made = _utf8(value, "bytes that are not UTF-8 in a JSON column"), TEXT_FROM_BLOB
    elif not isinstance(value, str):
        # SQLite stored a bare number; it is JSON as its own text, unless it is REAL's Infinity (9e999).
        if isinstance(value, float) and not math.isfinite(value):
            raise BadValue(NOT_FINITE_JSON)
        return json.dumps(value), JSON_FROM_NUMBER
    if "\x00" in value:
        value, made = value.replace("\x00", ""), NUL_REMOVED if made is None else f"{made}; {NUL_REMOVED}"
    _load_json(value, len, len)  # valid or BadValue; its numbers need not be read for that
    return value, made


def _load_json(text: str | bytes, parse_int: Any, parse_float: Any) -> Any:
    # PostgreSQL's json takes RFC 8259 only: no NaN/Infinity (Python's json.loads would).
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=parse_int, parse_float=parse_float)
    except (ValueError, RecursionError):
        raise BadValue("text that is not valid JSON in a JSON column") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# JSON numbers by their exact value. Python's int() refuses more digits than
# sys.get_int_max_str_digits() and float() rounds (0.1000000000000000001 == 0.1) or
# overflows (1e400 == 2e400 == inf), so a number becomes an int or a float only when that
# holds it exactly (and prints it again); else an ExactNumber. Which one depends on the value
# alone, never on its spelling: 1, 1.0 and 1e0 are the int 1.
_PLAIN_UP_TO = 100  # an ExactNumber's exponent up to which it is spelled in plain digits


@dataclass(frozen=True)
class ExactNumber:
    """A JSON number no int or float holds exactly; `text` is its value, spelled one way only."""

    text: str

    @classmethod
    def of(cls, d: Decimal) -> "ExactNumber":
        d = _without_trailing_zeros(d)
        return cls(format(d, "f") if abs(d.adjusted()) <= _PLAIN_UP_TO else str(d))


def _without_trailing_zeros(d: Decimal) -> Decimal:
    """The same value, its trailing zeros dropped by hand: Decimal.normalize() rounds to 28 digits."""
    sign, digits, exponent = d.as_tuple()
    kept = len(digits)
    while kept > 1 and digits[kept - 1] == 0:
        kept -= 1
    return Decimal((sign, digits[:kept], exponent + len(digits) - kept))


def _json_int(text: str) -> Any:
    try:
        return int(text)  # the int() json.loads itself uses: the same integers
    except ValueError:
        return ExactNumber.of(Decimal(text))


def _json_float(text: str) -> Any:
    d = Decimal(text)
    if d.is_zero():
        return 0  # -0.0 and 0e5 too
    limit = sys.get_int_max_str_digits()
    if (not limit or d.adjusted() < limit) and d == d.to_integral_value():
        return int(d)  # 1.0 and 1e2 are the integers they equal
    f = float(text)
    if math.isfinite(f) and Decimal(repr(f)) == d:
        return f
    return ExactNumber.of(d)


def parse_json(text: str | bytes) -> Any:
    """JSON text as PostgreSQL's json takes it (BadValue if not), numbers by exact value."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_json_float)  # C's int(): fast
    except (ValueError, RecursionError):
        return _load_json(text, _json_int, _json_float)  # an integer int() refuses, or not JSON at all


class _HasExactNumber(Exception):
    pass


def _exact_number(value: Any) -> Any:
    raise _HasExactNumber


def dump_json(value: Any, separators: tuple[str, str] = (",", ":")) -> str:
    """Parsed JSON (parse_json) as text: keys sorted, each value spelled one way only."""
    try:
        return json.dumps(value, sort_keys=True, separators=separators, ensure_ascii=False, default=_exact_number)
    except _HasExactNumber:
        return _dump_with_exact(value, separators)


def _dump_with_exact(value: Any, separators: tuple[str, str]) -> str:
    """dump_json for the rare value holding an ExactNumber, which json.dumps can only quote."""
    item, key = separators
    if isinstance(value, ExactNumber):
        return value.text
    if isinstance(value, dict):
        return "{" + item.join(json.dumps(k, ensure_ascii=False) + key + _dump_with_exact(value[k], separators)
                               for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + item.join(_dump_with_exact(v, separators) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _timestamp(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, datetime):
        return _naive_utc(value), None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise BadValue(NUMBER_IN_TIMESTAMP)
    if not isinstance(value, str):
        raise BadValue("a value that is not a timestamp in a timestamp column")
    s = value.strip()
    try:
        if _DATE.fullmatch(s):
            return datetime.fromisoformat(s), TS_DATE_ONLY
        s, zeros = _microseconds(s)
        if _SQLA_TS.fullmatch(s):
            return datetime.fromisoformat(s), zeros
        if _ISO_T.fullmatch(s):
            return datetime.fromisoformat(s), TS_ISO_T
        if _ISO_TZ.fullmatch(s):
            return _naive_utc(datetime.fromisoformat(s.replace("Z", "+00:00"))), TS_OFFSET
    except BadValue:
        raise
    except (ValueError, OverflowError):
        pass
    raise BadValue("text that is not a timestamp in a timestamp column")


def _microseconds(s: str) -> tuple[str, str | None]:
    """The spelling with at most six fraction digits: zeros past them dropped (counted), other digits refused."""
    m = _FRACTION.search(s)
    if m is None or len(m.group(1)) <= 6:
        return s, None
    if m.group(1)[6:].strip("0"):
        raise BadValue(SUB_MICROSECOND)
    return s[:m.start(1) + 6] + s[m.end(1):], TS_ZEROS


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _date(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise BadValue(NUMBER_IN_DATE)
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip()), None
        except ValueError:
            raise BadValue("a value that is not a date in a date column") from None
    try:
        ts, _ = _timestamp(value)
    except BadValue:
        raise BadValue("a value that is not a date in a date column") from None
    if ts.time() != time():
        raise BadValue("a timestamp with a time of day in a date column: the date alone would lose it")
    return ts.date(), DATE_AT_MIDNIGHT


def _boolean(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int) and value in (0, 1):
        return bool(value), None  # the engine's own spelling
    if isinstance(value, str) and value.strip(_BLANKS).lower() in _BOOLEANS:
        return _BOOLEANS[value.strip(_BLANKS).lower()], BOOL_TEXT  # README's spellings: t, f, true, false
    raise BadValue("a value that is not a boolean in a boolean column")


def _integer(kind: str):
    low, high = INT_RANGES[kind]

    def conv(value: Any) -> tuple[Any, str | None]:
        made = None
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float):
            if not value.is_integer():
                raise BadValue(f"a fraction in an {kind} column")
            value = int(value)
        elif isinstance(value, str):
            if not _WHOLE.fullmatch(value.strip(_BLANKS)):  # no '1_000', no '١٢٣', no '0x10'
                raise BadValue(f"text that is not a whole number in an {kind} column")
            value, made = int(value.strip(_BLANKS)), NUMBER_AS_TEXT
        if not isinstance(value, int):
            raise BadValue(f"a value that is not a whole number in an {kind} column")
        if not low <= value <= high:
            raise BadValue(f"a number out of range for {kind}")
        return value, made

    return conv


def _float(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip(_BLANKS)):  # no 'nan', 'inf', '1_0'
        f = float(value.strip(_BLANKS))
        if not math.isfinite(f):
            raise BadValue("a number out of range for float")
        return f, NUMBER_AS_TEXT
    raise BadValue("a value that is not a number in a float column")


def _numeric(value: Any) -> tuple[Any, str | None]:
    made = NUMBER_AS_TEXT if isinstance(value, str) else None
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip(_BLANKS)):
        raise BadValue("a value that is not a number in a numeric column")
    try:
        d = Decimal(value.strip(_BLANKS) if isinstance(value, str) else repr(value) if isinstance(value, float)
                    else value)
    except (InvalidOperation, TypeError, ValueError):
        raise BadValue("a value that is not a number in a numeric column") from None
    if not d.is_finite():
        raise BadValue("a number that is not finite in a numeric column")
    return d, made


def _bytes(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bytes):
        return value, None
    if isinstance(value, str):
        return value.encode("utf-8"), TEXT_IN_BINARY
    raise BadValue("a value that is not bytes in a binary column")


_CONVERTERS = {
    TEXT: _text, JSON: _json, TIMESTAMP: _timestamp, DATE: _date, BOOLEAN: _boolean,
    BIGINT: _integer(BIGINT), INTEGER: _integer(INTEGER), SMALLINT: _integer(SMALLINT),
    FLOAT: _float, NUMERIC: _numeric, BYTES: _bytes,
}


def canonical(kind: str, value: Any) -> Any:
    """A target-side value in the form both sides are compared in.

    JSON is parsed as the copy judges it (parse_json: BadValue for NaN and the
    like) and dumped with sorted keys; timestamps keep their microseconds;
    numbers compare by value; decimals print without exponent.
    """
    if value is None:
        return None
    if kind == JSON:
        return dump_json(parse_json(value) if isinstance(value, (str, bytes)) else value)
    if kind == TIMESTAMP and isinstance(value, datetime):
        return _naive_utc(value).isoformat(sep=" ", timespec="microseconds")
    if kind == NUMERIC:  # by value: every digit counts (no rounding to 28), and -0 is 0
        d = Decimal(value)
        return "0" if d.is_zero() else format(_without_trailing_zeros(d), "f")
    if kind == FLOAT:
        f = float(value)
        return "nan" if math.isnan(f) else repr(f)
    return value


# --- The fast path: values already in their target form ---
#
# The copy and the scan ask SQLite, row by row, whether every value is NULL or
# already in the form convert() passes with no conversion and cannot refuse.
# Such rows skip convert(): only fast(kind) is applied (text timestamps to
# datetime, 0/1 to bool). Every other row goes through convert(). The property
# "clean_sql true => convert(kind, v) == (fast(kind)(v), None)" is tested on a
# corpus of spellings (tests/test_copy.py), so the two paths cannot disagree.

_SQLA_TS_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]"
_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
# date(x, '+0 days') normalises an impossible day (Feb 30 -> Mar 2), so equality proves the date exists.
_REAL_DATE = "date({d}, '+0 days') = {d}"
# The first and last instant PostgreSQL's binary protocol can carry are the ones asyncpg sends as
# -infinity/infinity: never clean, so the copy sees them and writes them exactly (wizard.move.copy). A value
# of the GLOB's shape strictly between them is also past year 0000. The length in bytes, not length()'s
# characters: both stop being counted by GLOB and length() at a NUL, and a NUL after the digits is no timestamp.
# (Fewer instructions than length(), >= '0001' and NOT IN: bench/README.)
_TS_BETWEEN_ENDS = "{c} > '0001-01-01 00:00:00.000000' AND {c} < '9999-12-31 23:59:59.999999'"
_DATE_BETWEEN_ENDS = "{c} > '0001-01-01' AND {c} < '9999-12-31'"
# Text is clean when it holds no NUL and is UTF-8 (PostgreSQL refuses anything else; stdlib sqlite3 cannot
# even read it). Short text is judged in C: instr for NUL, GLOB for printable ASCII, the common case. Both
# cost per character (a '[...]' after '*' is SQLite's slow, recursive case), so longer text, and short text
# that is not plain ASCII, is judged by one call of TEXT_FUNCTION (a JSON state of 600 bytes: 5x less).
TEXT_FUNCTION = "wizard_text"
GLOB_BYTES = 64
_TEXT = (f"((length(CAST({{c}} AS BLOB)) <= {GLOB_BYTES} AND instr({{c}}, char(0)) = 0 AND {{c}} NOT GLOB '*[^ -~]*') "
         f"OR {TEXT_FUNCTION}(CAST({{c}} AS BLOB)))")

_CLEAN_SQL = {
    TEXT: "typeof({c}) = 'text' AND " + _TEXT,
    JSON: "typeof({c}) = 'text' AND " + _TEXT + " AND json_valid({c})",
    TIMESTAMP: (
        f"typeof({{c}}) = 'text' AND length(CAST({{c}} AS BLOB)) = 26 AND {{c}} GLOB '{_SQLA_TS_GLOB}' AND "
        f"substr({{c}}, 12, 2) < '24' AND "
        f"{_TS_BETWEEN_ENDS} AND " + _REAL_DATE.format(d="substr({c}, 1, 10)")
    ),
    DATE: f"typeof({{c}}) = 'text' AND length(CAST({{c}} AS BLOB)) = 10 AND {{c}} GLOB '{_DATE_GLOB}' AND "
    f"{_DATE_BETWEEN_ENDS} AND " + _REAL_DATE.format(d="{c}"),
    BOOLEAN: "typeof({c}) = 'integer' AND {c} IN (0, 1)",
    BIGINT: "typeof({c}) = 'integer'",
    INTEGER: "typeof({c}) = 'integer' AND {c} BETWEEN -2147483648 AND 2147483647",
    SMALLINT: "typeof({c}) = 'integer' AND {c} BETWEEN -32768 AND 32767",
    FLOAT: "typeof({c}) = 'real'",
    NUMERIC: "0",  # always through convert(): PostgreSQL's numeric wants a Decimal
    BYTES: "typeof({c}) = 'blob'",
}


def _is_text(data: bytes | None) -> bool:
    """UTF-8 with no NUL."""
    if not data:
        return True
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def add_sql_functions(conn: Any) -> None:
    """Give a sqlite3 connection the function clean_sql's expressions call."""
    conn.create_function(TEXT_FUNCTION, 1, _is_text, deterministic=True)


_FAST = {TIMESTAMP: datetime.fromisoformat, DATE: date.fromisoformat, BOOLEAN: bool}


def clean_sql(kind: str, column: str) -> str:
    """An SQLite expression on the quoted `column`: true when its value may take the fast path."""
    return f"({column} IS NULL OR ({_CLEAN_SQL[kind].format(c=column)}))"


def fast(kind: str):
    """What the fast path does to a clean, non-NULL value of this kind; None when it goes as it is."""
    return _FAST.get(kind)

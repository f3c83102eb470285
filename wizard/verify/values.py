"""What the target must hold for a SQLite value: the verifier's own reading, independent of the copy's rules.

The copy converts with wizard.move.normalize; the verifier never calls those rules. It
reads each source value again here, written apart from them (one pattern per kind,
its fields taken apart and put together with plain arithmetic), and says what
PostgreSQL must hold: so a rule of the copy that is wrong (an offset ignored, a
digit cut, a boolean flipped) makes the two disagree, and shows as a difference.

`expected(kind, value)` returns the value as asyncpg gives PostgreSQL's back
(naive UTC datetime, date, bool, int, float, Decimal, str, bytes; JSON as the text
PostgreSQL's json keeps), or raises NoMeaning when the value has no certain
meaning in that kind: then the copy must have left it out (quarantine), never
converted it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from wizard.move.normalize import (BIGINT, BOOLEAN, BYTES, DATE, FLOAT, INTEGER, JSON, NUMERIC, SMALLINT, TEXT,
                              TIMESTAMP)

_BITS = {SMALLINT: 16, INTEGER: 32, BIGINT: 64}
_SPACE = " \t\n\r\f\v"
# One pattern for every spelling of an instant the move accepts: a date, then maybe a clock, then maybe a zone.
_INSTANT = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"(?:(?P<sep>[T ])(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]+))?)?"
    r"(?P<zone>Z|(?P<sign>[+-])(?P<zh>[0-9]{2}):?(?P<zm>[0-9]{2}))?)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUTH = {"t": True, "true": True, "f": False, "false": False}


class NoMeaning(ValueError):
    """A source value with no certain meaning in its column's kind."""


@dataclass(frozen=True)
class Unconvertible:
    """A value with no certain meaning in its column, in the compared form; equal only to the same value."""

    rule: str
    value: Any


def expected(kind: str, value: Any) -> Any:
    """The value PostgreSQL must hold for the SQLite `value` in a column of `kind` (NoMeaning if none)."""
    if value is None:
        return None
    try:
        return _READERS[kind](value)
    except RecursionError:  # JSON nested past Python's limit (about 1,000), which SQLite and PostgreSQL take
        raise NoMeaning(f"{kind} nested deeper than Python reads") from None
    except (ValueError, OverflowError, ArithmeticError, KeyError) as exc:
        if isinstance(exc, NoMeaning):
            raise
        raise NoMeaning(f"no {kind} reads {value!r}") from None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = str(value, "utf-8", "strict")
    elif isinstance(value, int):
        value = "%d" % value
    elif isinstance(value, float):
        value = float.__repr__(value)
    return "".join(value.split("\x00"))


def _json(value: Any) -> str:
    if isinstance(value, (int, float)):
        if value != value or value in (math.inf, -math.inf):
            raise NoMeaning("JSON holds no NaN or Infinity")
        return "%d" % value if isinstance(value, int) else float.__repr__(value)
    text = _text(value)
    json.loads(text, parse_constant=_refuse, parse_int=str, parse_float=str)  # RFC 8259 only, as PostgreSQL's json
    return text


class _Number(str):
    """A JSON number in the compared form: its exact value, and whether it was written as a whole number."""


def _whole_number(text: str) -> _Number:
    return _Number(format(Decimal(text), "f"))  # exact at any length: no int() digit limit


def _fraction_number(text: str) -> _Number:
    # Python's json gives the engine a float for 1.0 or 1e2 and an int for 1: written with a fraction it stays so.
    d = Decimal(text)
    if d.is_zero():
        return _Number("0.0")
    sign, digits, exponent = d.as_tuple()
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    d = Decimal((sign, digits, exponent))
    plain = format(d, "f") if abs(d.adjusted()) <= 100 else format(d, "E")
    return _Number(plain if any(c in plain for c in ".E") else plain + ".0")


def _dump_kept(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump_kept(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(_dump_kept, value)) + "]"
    if isinstance(value, _Number):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def json_as_kept(text: str | bytes) -> str:
    """JSON text a column keeps as written (PostgreSQL's json), in the compared form: what a reader of it gets
    (Python's json, the engine's) kept, so its keys in their order (the object `state.nodes` becomes an array
    in that order, revision 0004) and each number exact and whole or not (1 is an int, 1.0 a float); only
    spaces and the spelling of escapes and numbers left out. Not JSON: ValueError."""
    try:
        return _dump_kept(parse_kept(text))
    except RecursionError:
        raise ValueError("nested deeper than Python reads") from None


def parse_kept(text: str | bytes) -> Any:
    """JSON text as json_as_kept reads it: objects in their key order, numbers as their compared form (a str)."""
    return json.loads(text, parse_constant=_refuse, parse_int=_whole_number, parse_float=_fraction_number)


def _refuse(name: str) -> None:
    raise NoMeaning(f"{name} is not JSON")


def _instant(text: str) -> tuple[datetime, bool]:
    """The naive UTC datetime a spelling names, and whether it was a date alone."""
    m = _INSTANT.fullmatch(text.strip())
    if m is None:
        raise NoMeaning(f"{text!r} is no instant")
    fraction = m["f"] or ""
    if fraction[6:].strip("0"):
        raise NoMeaning("digits past the microsecond")
    micro = int((fraction[:6] + "000000")[:6])
    stamp = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"] or 0), int(m["mi"] or 0),
                     int(m["s"] or 0), micro)
    if m["sign"]:
        hours, minutes = int(m["zh"]), int(m["zm"])
        if hours > 23 or minutes > 59:
            raise NoMeaning("an offset of a day or more")
        shift = timedelta(hours=hours, minutes=minutes)
        stamp = stamp - shift if m["sign"] == "+" else stamp + shift
    return stamp, m["h"] is None


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise NoMeaning("only text spells an instant")
    return _instant(value)[0]


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise NoMeaning("only text spells a date")
    stamp, alone = _instant(value)
    if not alone and (stamp.hour, stamp.minute, stamp.second, stamp.microsecond) != (0, 0, 0, 0):
        raise NoMeaning("a time of day in a date column")
    return stamp.date()


def _boolean(value: Any) -> bool:
    if type(value) is int and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        return _TRUTH[value.strip(_SPACE).lower()]  # KeyError: no meaning
    raise NoMeaning("not a boolean")


def _whole(kind: str):
    half = 2 ** (_BITS[kind] - 1)

    def read(value: Any) -> int:
        if isinstance(value, float):
            if value != math.floor(value):
                raise NoMeaning("a fraction")
            number = int(value)
        elif isinstance(value, str):
            if not _INTEGER.fullmatch(value.strip(_SPACE)):
                raise NoMeaning("not ASCII digits")
            number = int(value.strip(_SPACE))
        elif type(value) is int:
            number = value
        else:
            raise NoMeaning("not a whole number")
        if not -half <= number < half:
            raise NoMeaning("out of range")
        return number

    return read


def _float(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _REAL.fullmatch(value.strip(_SPACE)):
        number = float(value.strip(_SPACE))
        if math.isfinite(number):
            return number
    raise NoMeaning("not a finite number")


def _numeric(value: Any) -> Decimal:
    if isinstance(value, str):
        if not _REAL.fullmatch(value.strip(_SPACE)):
            raise NoMeaning("not a number")
        return Decimal(value.strip(_SPACE))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NoMeaning("not finite")
        return Decimal(float.__repr__(value))
    if type(value) is int:
        return Decimal(value)
    raise NoMeaning("not a number")


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return bytes(value, "utf-8")
    raise NoMeaning("not bytes")


_READERS = {
    TEXT: _text, JSON: _json, TIMESTAMP: _timestamp, DATE: _date, BOOLEAN: _boolean, FLOAT: _float,
    NUMERIC: _numeric, BYTES: _bytes, **{k: _whole(k) for k in _BITS},
}

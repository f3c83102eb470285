"""How a difference is shown: masked first, then cut down to where the two values part.

A JSON difference shows the values at the first path where they part
($.variables.attempt: 3 against 99), not two pages of text; a long text shows
from a little before its first differing character. Secrets are masked on the
whole value before anything is cut, so a cut can never leave half a key in view:
by column name (hashed_password), by JSON key (apiKey), and by shape (sk-...).
"""

from __future__ import annotations

import os
from typing import Any

from wizard.move.normalize import JSON, dump_json, parse_json
from wizard.verify.values import parse_kept
from wizard.secrets import mask_data
from wizard.verify.sides import Unconvertible

SHOWN_CHARS = 400  # a value longer than this is cut (the whole row is in the database)
LEAD_CHARS = 40  # shown before the first differing character of a long text
_ABSENT = object()  # a JSON key or item one side does not have


def shown_key(key: Any) -> Any:
    """A primary key as JSON can hold it: a list for a composite key, hex for bytes."""
    if isinstance(key, tuple):
        return [shown_key(k) for k in key]
    if isinstance(key, (int, str, float)) or key is None:
        return key
    if isinstance(key, bytes):
        return key.hex()
    return str(key)


def shown_pair(column: str, kind: str, source: Any, target: Any) -> tuple[Any, Any, str | None]:
    """(source, target, detail) as a report shows one differing field, from the compared forms."""
    if isinstance(source, Unconvertible) or isinstance(target, Unconvertible):
        detail = source.rule if isinstance(source, Unconvertible) else f"target: {target.rule}"
        return *_cut_pair(_plain(column, source), _plain(column, target)), detail
    if kind == JSON and isinstance(source, str) and isinstance(target, str):
        parting = _json_parting(parse_json(source), parse_json(target))
        if parting is not None:
            path, a, b = parting
            names = (column, path.rsplit(".", 1)[-1].split("[", 1)[0])  # an apiKey is masked by its own name
            return *_cut_pair(_json_text(names, a), _json_text(names, b)), f"differs at {path}"
        kept = _kept_parting(source, target)
        if kept is not None:  # the same values; compared as kept (values.json_as_kept): in their order or spelling
            path, a, b, what = kept
            names = (column, path.rsplit(".", 1)[-1].split("[", 1)[0])
            return *_cut_pair(_masked(names, a), _masked(names, b)), f"differs at {path}: {what}"
    return *_cut_pair(_plain(column, source), _plain(column, target)), None


def _masked(names: tuple[str, ...], value: Any) -> Any:
    for name in names:
        value = mask_data({name: value})[name]
    return value


def _plain(column: str, value: Any) -> Any:
    if isinstance(value, Unconvertible):
        value = value.value
    if isinstance(value, bytes):
        value = value.hex()
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        value = str(value)
    return _masked((column,), value)


def _json_text(names: tuple[str, ...], value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    return dump_json(_masked(names, value), (", ", ": "))


def _cut_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Two long texts from a little before where they part, each at most SHOWN_CHARS."""
    if isinstance(a, str) and isinstance(b, str) and max(len(a), len(b)) > SHOWN_CHARS:
        start = max(0, len(os.path.commonprefix([a, b])) - LEAD_CHARS)
        if start:
            a, b = "..." + a[start:], "..." + b[start:]
    return _cut(a), _cut(b)


def _cut(value: Any) -> Any:
    return value[:SHOWN_CHARS] + "..." if isinstance(value, str) and len(value) > SHOWN_CHARS else value


def _kept_parting(source: str, target: str) -> tuple[str, Any, Any, str] | None:
    """Where two JSON texts equal as values part as their readers get them (values.json_as_kept): the path, what
    each side has there (an object's keys, a number's compared form) and how they differ."""
    try:
        a, b = parse_kept(source), parse_kept(target)
    except (ValueError, RecursionError):
        return None
    return _kept_walk(a, b, "$")


def _kept_walk(a: Any, b: Any, path: str) -> tuple[str, Any, Any, str] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return path, ", ".join(a), ", ".join(b), "its keys in another order"
        return next(filter(None, (_kept_walk(a[k], b[k], f"{path}.{k}") for k in a)), None)
    if isinstance(a, list) and isinstance(b, list):
        return next(filter(None, (_kept_walk(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)))), None)
    if a != b:
        return path, a, b, "a whole number against one written with a fraction (Python's int against float)"
    return None


def _json_parting(a: Any, b: Any, path: str = "$") -> tuple[str, Any, Any] | None:
    """The first path where two parsed JSON values part, and the value on each side there."""
    if type(a) is not type(b):
        return path, a, b
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            found = _json_parting(a.get(k, _ABSENT), b.get(k, _ABSENT), f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for i in range(max(len(a), len(b))):
            found = _json_parting(a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else (path, a, b)

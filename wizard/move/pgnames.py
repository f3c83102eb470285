"""PostgreSQL's name for a SQLite table or column: at most 63 bytes, the same for the same name, every time.

PostgreSQL cuts an identifier to 63 bytes (NAMEDATALEN - 1), so two source names that share
their first 63 bytes would land on one name, and a longer one would be created cut short.
A name that fits is kept as it is; a longer one becomes its first bytes (whole characters),
'_' and 8 hex digits of its sha256. The map needs nothing but the name, so the copy, the
verification, `wizard plan` and the rollback all find the same table without a record of it;
the pre-flight refuses a source whose names would still meet (`clashes`).
"""

from __future__ import annotations

import hashlib
from typing import Iterable

MAX_BYTES = 63
_HASH = 8


def pg_name(name: str) -> str:
    """`name` as PostgreSQL holds it (see the module's docstring)."""
    data = name.encode()
    if len(data) <= MAX_BYTES:
        return name
    head = data[:MAX_BYTES - _HASH - 1].decode(errors="ignore")  # a cut character is left out whole
    return f"{head}_{hashlib.sha256(data).hexdigest()[:_HASH]}"


def fit(name: str, taken: set[str]) -> str:
    """A name of the wizard's own making: pg_name(name), or with a number when that is taken; added to `taken`."""
    candidate, n = pg_name(name), 1
    while candidate in taken:
        suffix = str(n)
        candidate = pg_name(name)
        candidate = candidate.encode()[:MAX_BYTES - len(suffix)].decode(errors="ignore") + suffix
        n += 1
    taken.add(candidate)
    return candidate


def renamed(names: Iterable[str]) -> dict[str, str]:
    """The names PostgreSQL gets another name for: source name -> PostgreSQL's."""
    return {n: pg_name(n) for n in names if pg_name(n) != n}


def clashes(names: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of distinct source names that would meet in one PostgreSQL name."""
    seen: dict[str, str] = {}
    out = []
    for n in names:
        other = seen.setdefault(pg_name(n), n)
        if other != n:
            out.append((other, n))
    return out

"""What a MySQL or MariaDB column cannot hold that SQLite's can, for the move's scan (wizard.move.scan).

Text longer than its VARCHAR(n) (MySQL counts characters, as SQLite's length() and Python's len() do), and JSON
nested deeper than the server's parser goes: MariaDB's json_valid, the CHECK of its JSON columns, says "Limit of 32
on JSON nested structures depth is reached" at 32 levels (10.11: 31 pass); MySQL 8's JSON type refuses more than
100 (JSON_DOCUMENT_MAX_DEPTH). And a row longer, as the copy's LOAD DATA line, than the server's
max_allowed_packet: the server drops the connection mid-copy (the engine and mysqldump meet the same limit with
such a row). PostgreSQL's text and json have none of these limits: a move there has no TargetLimits.
The widths and the JSON columns are those of the engine's schema on MySQL at the source's revision
(wizard.schema.mysql_types): the schema the move gives the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate

from sqlalchemy import String

from wizard.db import quote
from wizard.move.normalize import JSON, kind_of
from wizard.mysql.copy import tsv
from wizard.schema import history, mysql_types

JSON_DEPTH = {"MariaDB": 31, "MySQL": 100}  # the deepest nesting of arrays and objects each server takes

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, its escapes included
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


@dataclass(frozen=True)
class TargetLimits:
    server: str  # MySQL or MariaDB, as the rules name it
    widths: dict[str, dict[str, int]]  # table -> column -> the n of its VARCHAR(n)
    json: dict[str, frozenset[str]]  # table -> its JSON columns, for every table of the engine's
    depth: int  # the deepest JSON the server takes
    packet: int = 0  # the server's max_allowed_packet: the longest line LOAD DATA takes (0: not known)

    def sift_sql(self, table: str, columns: list[str]) -> str | None:
        """An SQLite expression true for every clean row of `table` that may hold a value too big here (the rows
        that are not clean are judged anyway); None when it has no column with a limit.

        Cheap upper bounds, so that only the few rows near a limit come into Python: length() counts the
        characters of clean text as VARCHAR(n) does, a JSON value nests no deeper than its '[' and '{' count
        (bytes: neither is ever part of another UTF-8 character), and a row's line is at most 8 bytes a character
        (4 in UTF-8, escaped to twice that; a BLOB's length is its bytes) and 3 a column (a tab, or \\N for NULL)
        and its newline. `columns`: every column of the table."""
        parts = [f"length({quote(c)}) > {n}" for c, n in self.widths.get(table, {}).items()]
        if self.packet and columns and table in self.json:
            total = " + ".join(f"coalesce(length({quote(c)}), 0)" for c in columns)
            parts.append(f"{total} > {(self.packet - 3 * len(columns) - 1) // 8}")
        parts += [f"length(CAST({quote(c)} AS BLOB)) - length(CAST(replace(replace({quote(c)}, '[', ''), '{{', '') "
                  f"AS BLOB)) > {self.depth}" for c in sorted(self.json.get(table, ()))]
        return " OR ".join(parts) or None

    def broken(self, table: str, column: str, value: object) -> str | None:
        """The rule a converted value breaks in this column, or None."""
        if not isinstance(value, str):
            return None
        width = self.widths.get(table, {}).get(column)
        if width is not None and len(value) > width:
            return f"text longer than {width} characters, the most {self.server}'s varchar({width}) takes"
        if (column in self.json.get(table, ()) and value.count("[") + value.count("{") > self.depth
                and json_depth(value) > self.depth):
            return f"JSON nested deeper than {self.server} takes ({self.depth} levels)"
        return None

    def row_too_long(self, table: str, values: tuple) -> str | None:
        """The rule a converted row breaks as a whole, or None: its line longer than the server's packet. Only
        the engine's tables go onto MySQL (the checks refuse any other): another's may hold a BLOB, which the
        copy's lines never carry."""
        if not self.packet or table not in self.json or len(tsv([values])) <= self.packet:
            return None
        return (f"a row longer, as the copy sends it, than {self.server}'s max_allowed_packet "
                f"({self.packet:,} bytes): raise it on the server (SET GLOBAL max_allowed_packet = 1073741824, and "
                f"in its configuration) and run the checks again")


def json_depth(text: str) -> int:
    """How deeply valid JSON text nests its arrays and objects (0 for a scalar): counted, not recursed into,
    so that any depth is measured."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def limits_of(server: str, revision: str | None, packet: int = 0) -> TargetLimits:
    """The limits of a `server` (MySQL or MariaDB) target given the engine's schema at `revision` (none known
    for a revision the history does not have: the checks refuse such a source) and its max_allowed_packet."""
    types = mysql_types(revision) if revision in {r.id for r in history()} else {}
    widths = {t: {c: ty.length for c, ty in cols.items() if isinstance(ty, String) and ty.length}
              for t, cols in types.items()}
    json = {t: frozenset(c for c, ty in cols.items() if kind_of(ty) == JSON) for t, cols in types.items()}
    return TargetLimits(server, widths, json, JSON_DEPTH[server], packet)

"""A clean row as one line of a bulk-load text, made by SQLite: the copy's fast path into MySQL's LOAD DATA.

Not into PostgreSQL: its text COPY costs the server more than the binary COPY the copy sends, more than
SQLite saves Python (measured: bench/README.md, "Where the CPU goes").

For the rows the scan found clean (normalize.clean_sql), the reader asks SQLite for the whole line:
one blob per row, no Python value per column, and SQLite builds it with the GIL released. A clean value
needs no conversion to be read as it is (the property normalize's fast path rests on): text and JSON
are escaped, NULL is \\N, integers and 0/1 booleans are their digits, a clean timestamp is
'YYYY-MM-DD HH:MM:SS.ffffff' and a clean date 'YYYY-MM-DD', which the target reads as the same
instant and day. A table with a column of another kind (a REAL, whose text SQLite cuts to 15 digits;
NUMERIC; a BLOB) gets no line and keeps the Python path.
"""

from __future__ import annotations

from wizard.db import quote, string_literal
from wizard.move import normalize as n
from wizard.move.tables import SourceTable

# LOAD DATA's default format (FIELDS TERMINATED BY '\t' ESCAPED BY '\\', LINES TERMINATED BY '\n'):
# backslash first, so the escapes added after it are not escaped again. Clean text holds no NUL.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"))

_AS_WRITTEN = {n.TIMESTAMP, n.DATE, n.BOOLEAN, n.BIGINT, n.INTEGER, n.SMALLINT}
_ESCAPED = {n.TEXT, n.JSON}


def _escaped(column: str) -> str:
    sql = column
    for raw, written in _ESCAPES:
        sql = f"replace({sql}, {string_literal(raw)}, {string_literal(written)})"
    return sql


def line_sql(table: SourceTable) -> str | None:
    """An SQLite expression: a clean row of `table` as one line (a blob, in the database's UTF-8) of
    tab-separated fields ending in a newline; None when a column's kind has no such spelling here."""
    if any(c.kind not in _AS_WRITTEN | _ESCAPED for c in table.columns):
        return None
    fields = []
    for c in table.columns:
        value = _escaped(quote(c.name)) if c.kind in _ESCAPED else quote(c.name)
        fields.append(f"coalesce({value}, '\\N')")
    joined = " || char(9) || ".join(fields)
    return f"CAST({joined} || char(10) AS BLOB)"

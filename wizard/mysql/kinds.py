"""What a MySQL or MariaDB column holds, where its SQL type alone does not say it.

MySQL spells a boolean TINYINT(1), and MariaDB a JSON column LONGTEXT with a CHECK (json_valid(col))
of the column's own: reflected as they are, they would be compared as integers and as text, so a
JSON key order that means the same would show as a difference.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import mysql

from wizard import schema
from wizard.move.normalize import BOOLEAN, INT_RANGES, JSON, TEXT, kind_of

# The server quotes the column as the session's sql_mode does: `name`, or "name" under ANSI_QUOTES (wizard.db).
_JSON_CHECK = re.compile(r"json_valid\((?:`(?P<b>(?:[^`]|``)+)`|\"(?P<d>(?:[^\"]|\"\")+)\")\)", re.IGNORECASE)


def json_columns(sync_conn: Any) -> set[tuple[str, str]]:
    """(table, column) of MariaDB's JSON columns in the connection's database (MySQL's JSON is a type of its own)."""
    if not getattr(sync_conn.dialect, "is_mariadb", False):
        return set()
    rows = sync_conn.execute(text("SELECT table_name, check_clause FROM information_schema.check_constraints "
                                  "WHERE constraint_schema = DATABASE()"))
    out = set()
    for table, clause in rows:
        m = _JSON_CHECK.fullmatch(clause.strip())
        if m:
            out.add((table, m["b"].replace("``", "`") if m["b"] is not None else m["d"].replace('""', '"')))
    return out


def column_kind(col_type: Any, table: str, column: str, json: set[tuple[str, str]]) -> str:
    """normalize's kind of a reflected MySQL column; `json`: json_columns().

    An engine column the history declares JSON or BOOLEAN is one, whatever MySQL calls it: LONGTEXT with no
    check (a MariaDB before 10.4.3 made JSON so, and an upgraded server keeps it), or a whole number. Read as text
    or integers, such a column would stop the move off MySQL at the copy; as JSON or a boolean, the scan holds
    every value that is not one."""
    kind = kind_of(col_type)
    meant = kind_of(schema.mysql_types(schema.head()).get(table, {}).get(column, col_type))
    if (table, column) in json or (meant == JSON and kind == TEXT):
        return JSON
    if (isinstance(col_type, mysql.TINYINT) and col_type.display_width == 1) or (
            meant == BOOLEAN and kind in INT_RANGES):
        return BOOLEAN
    return kind

"""The copy's reader for a MySQL or MariaDB source: the table's rows in key order, from a checkpoint on.

The SQLite reader (wizard.move.copy) with another source: one pymysql connection per table, in one
READ ONLY transaction WITH CONSISTENT SNAPSHOT (no write can happen by mistake, and the table is read
as of one moment), rows in primary-key order after the checkpoint's key, a page at a time. MySQL
compares `(key) > (last)` in the same collation it orders by, so a resume carries on at the very next
row. Every value goes through normalize.convert (the SQLite fast path reads SQLite's spellings):
DATETIME(6) arrives as a datetime with its microseconds, MariaDB's JSON as text that must parse,
a zero date as text that is refused (the scan held its row, or the copy stops: the source changed).
"""

from __future__ import annotations

import pymysql.cursors

from wizard.db import connect_mysql_sync, quote
from wizard.move.copy import _key_getter, _Reader
from wizard.move.scan import Key
from wizard.move.tables import SourceTable


class _Pages:
    """A cursor's fetchmany over keyset pages: each call one query for the next `n` rows after the last key.

    Each page is read whole (a buffered result), so a copy stopped mid-table leaves no result half read on
    the connection; InnoDB finds each page's first row by the primary key."""

    def __init__(self, cursor: pymysql.cursors.Cursor, table: SourceTable, after: Key | None) -> None:
        self.cursor, self.table, self.after = cursor, table, after
        self.key_of = _key_getter([table.column_names.index(k) for k in table.key])

    def fetchmany(self, n: int) -> list[tuple]:
        t = self.table
        key = ", ".join(quote(k) for k in t.key)
        where = f" WHERE ({key}) > ({', '.join(['%s'] * len(t.key))})" if self.after is not None else ""
        # The last column is the copy's "clean" flag: 0, every value is converted and checked.
        self.cursor.execute(f"SELECT {', '.join(quote(c.name) for c in t.columns)}, 0 FROM {quote(t.name)}{where} "
                            f"ORDER BY {key} LIMIT {int(n)}", tuple(self.after or ()))
        rows = list(self.cursor.fetchall())
        if rows:
            self.after = self.key_of(rows[-1])
        return rows


class MySQLReader(_Reader):
    def _read(self) -> None:
        conn = connect_mysql_sync(self.path)
        try:
            cursor = conn.cursor()
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            pages = _Pages(cursor, self.table, self.after if isinstance(self.after, tuple) else None)
            self._read_pass(pages, pages.key_of, pages.key_of)
        finally:
            conn.close()

"""The copy into MySQL (wizard.mysql.copy), one table: a chunk that LOAD DATA would alter (a warning) fails whole,
the chunks committed before it stay with their checkpoint, and nothing of it is kept; its text is made in the
reader thread, ahead of the load; the clean rows' lines made by SQLite (wizard.move.lines) keep every byte."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from engine_data import read, write
from move_helpers import source_tables
from wizard.errors import StepError
from wizard.events import StopRequest
from wizard.move.copy import TableCopy
from wizard.move.scan import RowActions, scan
from wizard.mysql import copy
from wizard.mysql.target import CHECKPOINT_DDL
from wizard.urls import parse_url


async def _copy(source: Path, target: str, chunk_rows: int, unclean: frozenset | None = None) -> TableCopy:
    table = source_tables(source)[0]
    async with copy.loading_connection(parse_url(target)) as conn:
        return await copy.copy_table(conn, source, table, RowActions(), "run-1", TableCopy(table.name),
                                     source.parent, lambda e: None, StopRequest(), chunk_rows, unclean)


def test_a_chunk_mysql_would_alter_fails_whole_after_the_chunks_before_it(mysql_url: str, tmp_path: Path) -> None:
    source = tmp_path / "t.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "ab"), (2, "c\td\\"), (3, "too long"), (4, "ok")])
    write(mysql_url, "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(4))")  # 'too long' would be cut
    write(mysql_url, CHECKPOINT_DDL)
    with pytest.raises(StepError, match=r"t: MySQL took 2 of a chunk's 2 rows and warned: .*name.*nothing of the chunk"):
        asyncio.run(_copy(source, mysql_url, chunk_rows=2))
    assert read(mysql_url, "SELECT id, name FROM t ORDER BY id") == [(1, "ab"), (2, "c\td\\")]
    assert read(mysql_url, "SELECT last_key, rows_copied, done FROM wizard_copy_checkpoint") == [("[2]", 2, 0)]
    assert not list(tmp_path.glob("chunk-*"))  # the chunk's file is removed, failed or not


ODD_TEXT = ["back\\slash", "tab\there", "new\nline", "cr\rhere", "\\N", "N", "\\t written", "ends in \\",
            "", "\u00e9t\u00e9 \U0001f680 \u65e5\u672c", "\\\t\\\n\r\\", "'quote' \"double\""]


def test_clean_rows_reach_mysql_as_sqlite_holds_them_byte_for_byte(mysql_url: str, tmp_path: Path) -> None:
    """The clean rows go as the lines SQLite makes (escaped there); the rows the scan named (a timestamp without
    its microseconds) by normalize.convert, in the same chunks: each value equal to the source's, byte for byte."""
    source = tmp_path / "t.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, doc JSON, at DATETIME, day DATE, "
                     "flag BOOLEAN, n BIGINT)")
        rows = [(i, text, '{"v": %s}' % json.dumps(text), "2025-01-02 03:04:05.%06d" % i, "2025-01-%02d" % (i + 1),
                 i % 2, -i * 10**12) for i, text in enumerate(ODD_TEXT)]
        rows += [(100, None, None, None, None, None, None),  # NULL is \N, the text \N is not
                 (101, "no microseconds", '{\n\t"raw": "whitespace"\r\n}', "2025-01-02 03:04:05", "2025-12-31", 1, 0),
                 (102, "the last instant", "[]", "9999-12-31 23:59:59.999999", "0001-01-02", 0, 2**63 - 1),
                 (103, "crlf\r\n", '{\n\t"raw": "whitespace"\r\n}', "2025-06-30 23:59:59.000000", "2024-02-29", 1, -1)]
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    write(mysql_url, "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, doc LONGTEXT, at DATETIME(6), day DATE, "
                     "flag TINYINT(1), n BIGINT) CHARACTER SET utf8mb4")
    write(mysql_url, CHECKPOINT_DDL)
    found = scan(source, source_tables(source), lambda *a: None)
    assert found.unclean["t"] == {(101,), (102,)}  # the copy reads the others' lines
    state = asyncio.run(_copy(source, mysql_url, chunk_rows=5, unclean=found.unclean["t"]))
    assert state.copied == len(rows) and state.done
    with sqlite3.connect(source) as conn:
        want = conn.execute("SELECT id, iif(name IS NULL, NULL, hex(CAST(name AS BLOB))), "
                            "iif(doc IS NULL, NULL, hex(CAST(doc AS BLOB))), "
                            "CASE WHEN length(at) = 19 THEN at || '.000000' ELSE at END, day, flag, n "
                            "FROM t ORDER BY id").fetchall()
    got = read(mysql_url, "SELECT id, HEX(name), HEX(doc), DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), "
                          "DATE_FORMAT(day, '%Y-%m-%d'), flag, n FROM t ORDER BY id")
    assert [tuple(r) for r in got] == want

"""The copy into MySQL (wizard.mysql.copy), one table: a chunk that LOAD DATA would alter (a warning) fails whole,
the chunks committed before it stay with their checkpoint, and nothing of it is kept; its text is made in the
reader thread, ahead of the load."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine_data import read, write
from move_helpers import source_tables
from wizard.errors import StepError
from wizard.events import StopRequest
from wizard.move.copy import TableCopy
from wizard.move.scan import RowActions
from wizard.mysql import copy
from wizard.mysql.target import CHECKPOINT_DDL
from wizard.urls import parse_url


async def _copy(source: Path, target: str, chunk_rows: int) -> TableCopy:
    table = source_tables(source)[0]
    async with copy.loading_connection(parse_url(target)) as conn:
        return await copy.copy_table(conn, source, table, RowActions(), "run-1", TableCopy(table.name),
                                     source.parent, lambda e: None, StopRequest(), chunk_rows)


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

"""A MySQL database's end state (its digests computed by the server, wizard.mysql.rows) tells every changed row:
the changes a careless row spelling cannot see (NULL for '', a value shifted into its neighbour's column, a
microsecond, the last bit of a double) are each reported as changed, and nothing else is."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from engine_data import write
from wizard.errors import StepError
from wizard.mysql.rows import key_text
from wizard.rollback import since
from wizard.urls import parse_url

_ROWS = [
    (1, "'a'", "'b'", "'2024-01-01 00:00:00.000001'", "0.1e0", 1),
    (2, "'x,'", "'y'", "'2024-01-01 00:00:00'", "1e0", 0),
    (3, "NULL", "'z'", "NULL", "NULL", 1),
    (4, "NULL", "'w'", "'2024-01-01 00:00:00.5'", "0.5e0", 0),
    (5, "'q'", "'r'", "'2024-01-01 00:00:00'", "0.1e0", 1),
    (6, "'same'", "'same'", "'2024-02-29 12:00:00'", "2.5e0", 1),
    (8, "'gone'", "NULL", "NULL", "NULL", 0),
]


def test_a_whole_number_key_is_spelled_as_json_dumps_spells_it() -> None:
    """key_text's shortcut for one whole-number key gives json.dumps's text: an end state recorded before it
    is compared key for key with one recorded after."""
    for v in [0, -1, 7, 2**63 - 1, 2**64, -(2**70)]:
        assert key_text([v]) == json.dumps([v])
    assert key_text([True]) == "[true]"  # a bool is an int to isinstance, not to the shortcut
    assert key_text(["7"]) == '["7"]' and key_text([1, 2]) == "[1, 2]" and key_text([b"\x01"]) == '["01"]'


def test_the_end_state_tells_each_changed_row_and_no_other(mysql_url: str, tmp_path: Path) -> None:
    write(mysql_url, "CREATE TABLE t (id BIGINT PRIMARY KEY, a VARCHAR(20), b VARCHAR(20), at DATETIME(6), "
                     "x DOUBLE, flag TINYINT(1))")
    write(mysql_url, "CREATE TABLE bag (v VARCHAR(20))")  # no primary key: a multiset
    write(mysql_url, "INSERT INTO t VALUES " + ", ".join(f"({', '.join(map(str, r))})" for r in _ROWS))
    write(mysql_url, "INSERT INTO bag VALUES ('p'), ('p'), (NULL)")
    db = parse_url(mysql_url)
    counts = asyncio.run(since.record_end_state(db, tmp_path))
    assert counts == {"t": 7, "bag": 3}

    for sql in ["UPDATE t SET x = 0.1e0 + 1.3877787807814457e-17 WHERE id = 1",  # the double's last bit
                "UPDATE t SET a = 'x', b = ',y' WHERE id = 2",  # the same characters, the comma moved across
                "UPDATE t SET a = 'z', b = NULL WHERE id = 3",  # the value moved into its neighbour's column
                "UPDATE t SET a = '' WHERE id = 4",  # NULL becomes ''
                "UPDATE t SET at = '2024-01-01 00:00:00.000001' WHERE id = 5",  # one microsecond
                "INSERT INTO t VALUES (7, 'new', NULL, NULL, NULL, 0)",
                "DELETE FROM t WHERE id = 8",
                "DELETE FROM bag WHERE v IS NULL"]:
        write(mysql_url, sql)
    measured = asyncio.run(since.measure(db, tmp_path, "", "move"))
    t = next(x for x in measured.tables if x.table == "t")
    assert (t.changed, t.added, t.removed) == (["[1]", "[2]", "[3]", "[4]", "[5]"], ["[7]"], ["[8]"])
    bag = next(x for x in measured.tables if x.table == "bag")
    assert (bag.keyed, len(bag.added), len(bag.removed), bag.changed) == (False, 0, 1, [])


def test_an_end_state_from_before_the_servers_digests_is_refused(mysql_url: str, tmp_path: Path) -> None:
    write(mysql_url, "CREATE TABLE t (id INT PRIMARY KEY)")
    db = parse_url(mysql_url)
    asyncio.run(since.record_end_state(db, tmp_path))
    with sqlite3.connect(tmp_path / since.END_STATE) as conn:
        conn.execute("PRAGMA user_version = 0")
    with pytest.raises(StepError, match="recorded by an earlier wizard"):
        asyncio.run(since.measure(db, tmp_path, "", "move"))

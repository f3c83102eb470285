"""An engine database another program made in UTF-16 (`PRAGMA encoding='UTF-16le'` before its tables), moved by
the real `wizard migrate` to a real PostgreSQL.

SQLite hands every reader UTF-8 whatever the file holds, but inside SQL a UTF-16 file's text is UTF-16: BINARY
sorts it by UTF-16 units and CAST(x AS BLOB) gives its UTF-16 bytes. The move's fast path judged and measured
text by those bytes, and the verification merged SQLite's key order with PostgreSQL's code-point order.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from fault_support import migrate, quarantined, rows_lost, the_run, wizard
from move_helpers import execute, fetch, tables_in
from wizard import sample

pytestmark = pytest.mark.slow  # whole moves and upgrades, a wizard process each: `pytest -m slow` (CI runs it)

ENGINE_TABLES = ("users", "workflows", "executions", "settings")


def utf16_engine(path: Path, *statements: str) -> Path:
    """A small 1.0.0 engine database in UTF-16le: the sample's rows, written into tables made after the pragma."""
    utf8 = sample.build(path.with_name("utf8.db"), executions=20, workflows=3, users=2)
    conn, rows = sqlite3.connect(path), sqlite3.connect(utf8)
    try:
        conn.execute("PRAGMA encoding = 'UTF-16le'")
        sample.create_schema(conn)
        for table in ENGINE_TABLES:
            found = rows.execute(f"SELECT * FROM {table}").fetchall()
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(found[0]))})", found)
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        assert conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"
    finally:
        conn.close()
        rows.close()
    return path


def test_text_keys_past_latin_1_verify_in_code_point_order(tmp_path: Path, pg_url: str) -> None:
    # UTF-16le's units compare low byte first: 'Ā' (00 01) sorted before 'a' (61 00), and the verification, which
    # merges both sides in key order, found the users only in the target: exit 1 after a correct copy.
    ids = ["a-user", "Ā-user", "é-user", "ﬀ-user", "😀-user", "z-user"]
    source = utf16_engine(tmp_path / "engine.db", *(
        f"INSERT INTO users (id, username) VALUES ('{i}', 'name {i}')" for i in ids))
    moved = migrate(source, pg_url, tmp_path / "state")
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert rows_lost(source, pg_url, the_run(tmp_path / "state")) == 0
    held = {r["id"]: r["username"] for r in fetch(pg_url, "SELECT id, username FROM users")}
    assert {i: held[i] for i in ids} == {i: f"name {i}" for i in ids}
    target = pg_url
    # A difference planted by hand after the sorted-apart keys is still seen, named by its key.
    execute(pg_url, "UPDATE users SET username = 'changed' WHERE id = 'z-user'")
    verified = wizard("verify", "--source", f"sqlite:///{source}", "--target", target,
                      "--state-dir", str(tmp_path / "state"))
    assert verified.returncode == 1
    said = " ".join(verified.stdout.split())
    assert "users 8 8 0 7 1 0 0 differs" in said and "users 'z-user': username" in said, said


def test_a_value_too_big_for_an_index_is_measured_in_utf8_and_held_up_front(tmp_path: Path, pg_url: str) -> None:
    # 1,000 random CJK characters whose UTF-16 bytes are all printable ASCII (2,000 of them), so the fast path took
    # the row as clean UTF-8 text of 2,000 bytes; PostgreSQL got 3,000, and building users_username_key stopped the
    # copy after a passing pre-flight (exit 1: index row size 3016 exceeds btree version 4 maximum 2704).
    rng = random.Random(1)
    long_name = "".join(chr(rng.randrange(0x4E, 0x7F) * 256 + rng.randrange(0x21, 0x7F)) for _ in range(1000))
    assert all(0x21 <= b <= 0x7E for b in long_name.encode("utf-16-le"))
    source = utf16_engine(tmp_path / "engine.db", "INSERT INTO users (id, username, created_at) "
                          f"VALUES ('u-long', '{long_name}', NULL)")
    refused = migrate(source, pg_url, tmp_path / "refused")
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert "first users.username at key u-long: values over 2,600 bytes in an indexed column" in said, said
    assert tables_in(pg_url) == []
    moved = migrate(source, pg_url, tmp_path / "state", "--on-orphans", "quarantine")
    assert moved.returncode == 0, moved.stderr[-3000:]
    run = the_run(tmp_path / "state")
    assert quarantined(run) == {"users": 1} and rows_lost(source, pg_url, run) == 0

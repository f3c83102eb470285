"""`wizard verify` row by row with MySQL/MariaDB on either side, against the real MariaDB and PostgreSQL.

No move into or out of MySQL exists yet: each MySQL or PostgreSQL database is a 1.0.0 engine
database loaded with the rows of the same SQLite sample (tests/engine_data.py), and a MySQL
copy of a MySQL database is its `wizard backup` restored into another database.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from engine_data import build_1_0_0, write
from mysql_server import admin, fresh_database
from test_verify import differences, differences_detail, first_user, pg_exec, run_verify, sqlite_exec, sqlite_url
from wizard import commands
from wizard.errors import Interrupted
from wizard.events import Progress, StopRequest
from wizard.mysql.dump import load
from wizard.urls import parse_url
from wizard.verify import schema as verify_schema, sides
from wizard.verify.run import verify

EMOJI = "deploy \U0001f680 \u00e9t\u00e9 \u4e2d\u6587"  # four bytes a character in UTF-8, then two, then three


@pytest.fixture
def second_mysql_url(mysql_server: str) -> Iterator[str]:
    yield from fresh_database(mysql_server)


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def loaded(engine_db: Path, mysql_url: str) -> tuple[Path, str]:
    """The SQLite sample, with an emoji in one workflow's name, and a MySQL database holding the same rows."""
    sqlite_exec(engine_db, ("UPDATE workflows SET name = ? WHERE rowid = 1", (EMOJI,)))
    return engine_db, build_1_0_0(mysql_url, engine_db)


def test_sqlite_against_mysql_verifies_clean_and_finds_each_planted_difference(loaded):
    source, target = loaded
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 0, summary
    assert {t["table"]: t["equal"] for t in summary["tables"]} == {"users": 5, "workflows": 20, "executions": 300,
                                                                  "settings": 1}
    assert summary["schema"][0]["detail"] == "no revision recorded; its tables match 0001"

    user = first_user(source)
    (emoji_id,) = _rows(source, "SELECT id FROM workflows WHERE rowid = 1")[0]
    (json_id,) = _rows(source, "SELECT id FROM workflows WHERE rowid = 2")[0]
    write(target, "UPDATE executions SET status = 'changed' WHERE id = 5")  # one changed value
    write(target, "DELETE FROM executions WHERE id = 6")  # one deleted row
    write(target, "INSERT INTO executions (id, workflow_id, status) SELECT 1000, workflow_id, 'pending' "
                  "FROM executions WHERE id = 1")  # one extra row
    write(target, "UPDATE executions SET started_at = started_at + INTERVAL 1 MICROSECOND WHERE id = 7")
    # MySQL's zero date, even where the source holds its very spelling: it means nothing on either side.
    write(target, "UPDATE executions SET completed_at = '0000-00-00 00:00:00' WHERE id = 8")
    sqlite_exec(source, "UPDATE executions SET completed_at = '0000-00-00 00:00:00.000000' WHERE id = 8")
    write(target, "UPDATE executions SET completed_at = '2024-02-00 10:00:00' WHERE id = 4")  # a day 0
    write(target, f"UPDATE users SET is_active = 2 WHERE id = '{user}'")  # a TINYINT(1) that is no boolean
    (other,) = _rows(source, "SELECT id FROM users ORDER BY id LIMIT 1 OFFSET 1")[0]
    write(target, f"UPDATE users SET is_admin = 2 WHERE id = '{other}'")  # ... even where the source says 2 too
    sqlite_exec(source, f"UPDATE users SET is_admin = 2 WHERE id = '{other}'")
    write(target, f"UPDATE workflows SET name = 'deploy ? \u00e9t\u00e9 \u4e2d\u6587' WHERE id = '{emoji_id}'")
    # The same JSON in another key order and spacing: the same meaning, no difference.
    write(target, f"UPDATE workflows SET definition = JSON_OBJECT('zz', 1, 'aa', JSON_ARRAY(1, 2)) "
                  f"WHERE id = '{json_id}'")
    sqlite_exec(source, ("UPDATE workflows SET definition = ? WHERE id = ?", ('{"aa":[1,2],"zz":1}', json_id)))

    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 1
    assert differences(summary) == {
        "executions": {4: ("different", ["completed_at"]), 5: ("different", ["status"]), 6: ("only_source", []), 7: ("different", ["started_at"]),
                       8: ("different", ["completed_at"]), 1000: ("only_target", [])},
        "users": {user: ("different", ["is_active"]), other: ("different", ["is_admin"])},
        "workflows": {emoji_id: ("different", ["name"])},
    }
    micro = differences_detail(summary, "executions", 7)["started_at"]
    assert micro["source"][-6:] != micro["target"][-6:]  # the microseconds are shown, and they differ
    zero = differences_detail(summary, "executions", 8)["completed_at"]
    assert zero["target"].startswith("0000-00-00") and "no such date" in zero["target"]
    day0 = differences_detail(summary, "executions", 4)["completed_at"]
    assert day0["target"] == "2024-02-00 10:00:00.000000 (no such date)"
    assert differences_detail(summary, "users", user)["is_active"]["target"] == 2


def test_mysql_against_its_backup_restored_in_another_database(loaded, second_mysql_url: str, tmp_path: Path):
    _, original = loaded
    done = asyncio.run(commands.backup(parse_url(original), tmp_path / "state"))
    asyncio.run(load(Path(done.record.path), parse_url(second_mysql_url)))
    code, summary, _ = run_verify(original, second_mysql_url)
    assert code == 0, summary
    assert sum(t["equal"] for t in summary["tables"]) == 326
    write(second_mysql_url, "UPDATE executions SET started_at = started_at - INTERVAL 1 MICROSECOND WHERE id = 9")
    write(second_mysql_url, "UPDATE users SET is_active = 1 - is_active ORDER BY id LIMIT 1")
    write(second_mysql_url, "UPDATE executions SET state = JSON_OBJECT('b', 1, 'a', 2) WHERE id = 10")
    write(original, "UPDATE executions SET state = '{\"a\": 2, \"b\": 1}' WHERE id = 10")  # same meaning
    code, summary, _ = run_verify(original, second_mysql_url)
    assert code == 1
    found = differences(summary)
    assert found["executions"] == {9: ("different", ["started_at"])}
    assert list(found["users"].values()) == [("different", ["is_active"])]


def test_mysql_against_postgresql(loaded, pg_url: str):
    source, mysql = loaded
    build_1_0_0(pg_url, source)
    code, summary, _ = run_verify(mysql, pg_url)
    assert code == 0, summary
    assert sum(t["equal"] for t in summary["tables"]) == 326
    user = first_user(source)
    pg_exec(pg_url, f"UPDATE users SET is_admin = NOT is_admin WHERE id = '{user}'",
            "UPDATE executions SET started_at = started_at + interval '1 microsecond' WHERE id = 12",
            "UPDATE executions SET state = (state::jsonb)::json WHERE id < 50",  # keys reordered: the same
            "DELETE FROM executions WHERE id = 13")
    write(mysql, "UPDATE workflows SET name = 'only in MySQL \U0001f600' ORDER BY id LIMIT 1")
    code, summary, _ = run_verify(mysql, pg_url)
    assert code == 1
    found = differences(summary)
    assert found["executions"] == {12: ("different", ["started_at"]), 13: ("only_source", [])}
    assert found["users"] == {user: ("different", ["is_admin"])}
    assert list(found["workflows"].values()) == [("different", ["name"])]


def test_text_keys_merge_in_byte_order_not_the_collations(tmp_path: Path, mysql_url: str):
    """utf8mb4_general_ci sorts a < B < e-acute < Z, and pads spaces (so a\\x01 before a); Python, SQLite and
    the merge go by code point."""
    keys = ["B", "Z", "a", "a\x01", "\u00e9"]
    source = tmp_path / "labels.db"
    sqlite_exec(source, "CREATE TABLE labels (name VARCHAR(20) PRIMARY KEY, n INTEGER)",
                *(("INSERT INTO labels VALUES (?, ?)", (k, i)) for i, k in enumerate(keys)))
    write(mysql_url, "CREATE TABLE labels (name VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, n INTEGER)")
    for i, k in enumerate(keys):
        write(mysql_url, f"INSERT INTO labels VALUES ('{k}', {i})")
    code, summary, _ = run_verify(sqlite_url(source), mysql_url)
    assert code == 0, summary
    assert summary["tables"][0]["equal"] == len(keys)


def test_a_user_who_may_not_create_the_scratch_database_gets_rows_verified_and_the_schema_unchecked(
        loaded, mysql_server: str, monkeypatch):
    source, url = loaded
    user = f"wizard_ro_{uuid.uuid4().hex[:8]}"
    database = make_url(url).database
    admin(mysql_server, f"CREATE USER '{user}'@'%' IDENTIFIED BY 's3cret#pw'")
    try:
        admin(mysql_server, f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'")
        monkeypatch.setattr(verify_schema, "_EXPECTED_MYSQL", {})  # what an earlier test built is not at hand
        limited = make_url(url).set(username=user, password="s3cret#pw").render_as_string(hide_password=False)
        code, summary, out = run_verify(sqlite_url(source), limited)
        assert code == 0, summary
        assert sum(t["equal"] for t in summary["tables"]) == 326
        (finding,) = [f for f in summary["schema"] if f["status"] == "warn"]
        assert finding["detail"].startswith("the schema was not checked: creating a scratch database wizard_proof_")
        assert f"GRANT ALL ON `wizard\\_proof\\_%`.* TO the user {user}" in finding["detail"]
        assert "s3cret" not in out
    finally:
        admin(mysql_server, f"DROP USER '{user}'@'%'")


def test_a_stop_mid_table_leaves_the_mysql_side_cleanly(loaded, monkeypatch):
    """Stopped after a first chunk, the MySQL side's next one in flight: Interrupted, naming the table; the
    next verification runs clean."""
    source, target = loaded
    monkeypatch.setattr(sides, "CHUNK_ROWS", 50)
    stop = StopRequest()

    def emit(event):
        if isinstance(event, Progress):
            stop.set("test")

    with pytest.raises(Interrupted, match="in table executions"):
        asyncio.run(verify(parse_url(sqlite_url(source)), parse_url(target), emit, stop=stop))
    code, _, _ = run_verify(sqlite_url(source), target)
    assert code == 0


def test_a_url_whose_query_names_the_socket_reaches_the_server_on_every_connection(loaded):
    """The rows are read on a PyMySQL connection beside the driver's: both must take the URL's query keys (a socket
    here; ssl_ca and the like the same way), or the verification reads another server, or none, or without TLS."""
    source, target = loaded
    socket = _server_value(target, "@@socket")
    if not socket or not Path(socket).exists():
        pytest.skip(f"the MySQL server's socket {socket!r} is not on this machine")
    # Nothing listens on port 1: only the socket reaches the server.
    by_socket = make_url(target).set(host="127.0.0.1", port=1).update_query_dict({"unix_socket": socket})
    code, summary, _ = run_verify(sqlite_url(source), by_socket.render_as_string(hide_password=False))
    assert code == 0, summary
    assert sum(t["equal"] for t in summary["tables"]) == 326


def _server_value(url: str, expression: str) -> str | None:
    from wizard.db import connect_mysql_sync

    conn = connect_mysql_sync(parse_url(url))
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {expression}")
            return cur.fetchone()[0]
    finally:
        conn.close()

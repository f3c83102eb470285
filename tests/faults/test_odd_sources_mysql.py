"""Values a MySQL target's columns cannot hold, moved from SQLite onto the real MariaDB by the real `wizard
migrate`, as tests/faults/test_odd_sources.py moves odd values to PostgreSQL: text longer than its VARCHAR(255)
and JSON nested deeper than MariaDB's json_valid goes (31 levels), and a row longer, as the copy sends it, than
the server's max_allowed_packet.

Each is refused by the pre-flight (exit 3, no traceback) naming the table, the column and an example key, with
nothing written to the target and the source unchanged; with `--on-orphans quarantine` the row goes to quarantine
by its rule (its dependents by ORPHANED), the rest moves and `wizard verify --run` passes with rows lost 0. A value
exactly at a limit moves as it is, and the same odd file moves whole to PostgreSQL, which takes both.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine_data import read
from fault_support import quarantined, rows_lost
from move_helpers import sha256
from odd_sources import Held, Moved, Oddity, build, odd
from test_odd_sources import migrate, the_run
from wizard.move.normalize import TEXT_FROM_BLOB
from wizard.move.scan import ORPHANED

pytestmark = pytest.mark.slow  # a whole move onto MariaDB per source: `pytest -m slow` runs them

WIDTH = "text longer than 255 characters, the most MariaDB's varchar(255) takes"
DEPTH = "JSON nested deeper than MariaDB takes (31 levels)"
EMOJI = "\U0001f680"  # 4 bytes in UTF-8, one character to MySQL's VARCHAR
AT_WIDTH = "\u00e9t\u00e9 " * 50 + EMOJI + "x" * 54  # 255 characters, 358 bytes


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


TOO_BIG = [
    odd("a 300-character username", f"INSERT INTO users (id, username) VALUES ('u-long', '{'x' * 300}')",
        expect=Held("users", "username", "u-long", WIDTH), engine=True),
    odd("a 400-character status", f"UPDATE executions SET status = '{'s' * 400}' WHERE id = 3",
        expect=Held("executions", "status", 3, WIDTH), engine=True),
    odd("executions.state nested 40 deep", f"UPDATE executions SET state = '{nested(40)}' WHERE id = 4",
        expect=Held("executions", "state", 4, DEPTH), engine=True),
    odd("executions.state nested 32 deep, MariaDB's first refusal",
        f"UPDATE executions SET state = '{nested(32)}' WHERE id = 5", expect=Held("executions", "state", 5, DEPTH),
        engine=True),
    odd("a 256-character workflow name (emoji and accents) with two executions",
        f"INSERT INTO workflows (id, name, definition) VALUES ('w-long', '{AT_WIDTH}!', '{{}}')",
        "INSERT INTO executions (workflow_id, status) VALUES ('w-long', 'failed'), ('w-long', 'completed')",
        expect=Held("workflows", "name", "w-long", WIDTH), engine=True),
    odd("a BLOB of 256 UTF-8 characters (512 bytes) in users.email",
        f"INSERT INTO users (id, username, email) VALUES ('u-blob', 'blob', CAST('{chr(233) * 256}' AS BLOB))",
        expect=Held("users", "email", "u-blob", WIDTH), engine=True),
    odd("a NUL byte before 300 characters (SQLite's length() stops at it; the copy removes it)",
        f"INSERT INTO users (id, username) VALUES ('u-nul', 'a' || char(0) || '{'x' * 300}')",
        expect=Held("users", "username", "u-nul", WIDTH), engine=True),
]

AT_THE_LIMIT = odd(
    "values exactly at MariaDB's limits",
    f"INSERT INTO users (id, username) VALUES ('u-255', '{AT_WIDTH}')",
    f"UPDATE executions SET status = '{AT_WIDTH}', state = '{nested(31)}' WHERE id = 3",
    # 40 brackets, all inside a string: depth 1 (SQLite's count of brackets sifts it, Python's depth lets it go)
    f"""UPDATE executions SET state = '{{"log": "{nested(40)}", "q": "\\"[{{"}}' WHERE id = 4""",
    f"INSERT INTO users (id, username, email) VALUES ('u-blob', 'blob', CAST('{AT_WIDTH}' AS BLOB))",
    expect=Moved({"users": {"email": {TEXT_FROM_BLOB: 1}}}), engine=True)


def children(source: Path, table: str, key: str) -> dict[str, int]:
    """The executions of a held workflow, which follow it into quarantine."""
    if table != "workflows":
        return {}
    with sqlite3.connect(source) as conn:
        (n,), = conn.execute("SELECT count(*) FROM executions WHERE workflow_id = ?", (key,))
    return {"executions": n}


@pytest.mark.parametrize("oddity", TOO_BIG, ids=[o.name for o in TOO_BIG])
def test_a_value_too_big_for_mariadb_is_refused_up_front_or_quarantined(oddity: Oddity, tmp_path: Path,
                                                                       mysql_url: str, survived) -> None:
    refused_then_quarantined(oddity, tmp_path, mysql_url, survived)


def test_a_row_longer_than_the_servers_packet_is_refused_up_front_or_quarantined(tmp_path: Path, mysql_url: str,
                                                                                 survived) -> None:
    """Newlines, each escaped to two bytes in the copy's LOAD DATA line: half the server's max_allowed_packet of
    them and the line is longer than the packet. The server dropped the connection mid-copy (exit 1)."""
    (packet,), = read(mysql_url, "SELECT @@max_allowed_packet")
    rule = (f"a row longer, as the copy sends it, than MariaDB's max_allowed_packet ({packet:,} bytes): raise it on "
            f"the server (SET GLOBAL max_allowed_packet = 1073741824, and in its configuration) and run the checks "
            f"again")
    refused_then_quarantined(odd(
        "a row longer than the server's max_allowed_packet (half as many newlines, escaped to two bytes each)",
        f"UPDATE executions SET error = replace(hex(zeroblob({packet // 4 + 1})), '0', char(10)) WHERE id = 3",
        expect=Held("executions", "error", 3, rule), engine=True), tmp_path, mysql_url, survived)


def test_a_blob_in_a_table_not_the_engines_is_refused_by_the_checks_not_a_bug(tmp_path: Path, mysql_url: str,
                                                                          survived) -> None:
    """A move onto MySQL carries the engine's tables only; the scan's packet bound measured every table's rows as
    the copy's lines, and a BLOB in a row the scan reads, which those lines never carry, ended the checks in "a bug
    in the wizard" before the revision check could name the table."""
    oddity = odd("a BLOB in a table that is not the engine's", "CREATE TABLE plugin_files (id INTEGER PRIMARY KEY, "
                 "body BLOB, at DATETIME)",  # a timestamp spelled with a T: the row is converted, so the scan reads it
                 "INSERT INTO plugin_files VALUES (1, x'00ff01', '2025-03-01T10:00:00')", expect=Moved(), engine=True)
    source = build(tmp_path / "odd.db", oddity)
    before = sha256(source)
    refused = migrate(source, mysql_url, tmp_path / "refused", oddity)
    shown = f"exit {refused.returncode}\n{refused.stderr[-3000:]}"
    assert refused.returncode == 3, shown
    assert "Traceback" not in refused.stderr and "a bug in the wizard" not in refused.stderr, shown
    (error,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: pre-flight check 'revision' failed: ") and "plugin_files" in error, shown
    assert "are not the engine's and a move to MySQL carries the engine's tables only" in error, shown
    assert read(mysql_url, "SHOW TABLES") == [], "a refused move wrote to the target"
    assert sha256(source) == before
    survived(input="a 1.0.0 source with a BLOB in a table not the engine's, moved onto MariaDB", exit_code=3,
             message=error, changed="nothing (source sha256, target tables checked)")


def refused_then_quarantined(oddity: Oddity, tmp_path: Path, mysql_url: str, survived) -> None:
    source = build(tmp_path / "odd.db", oddity)
    before = sha256(source)
    expect = oddity.expect
    refused = migrate(source, mysql_url, tmp_path / "refused", oddity)
    shown = f"exit {refused.returncode}\n{refused.stderr[-3000:]}"
    assert refused.returncode == 3, shown
    assert "Traceback" not in refused.stderr, shown
    said = " ".join(refused.stderr.split())
    assert f"warning {expect.table}.{expect.column}: 1 row(s) {expect.rule} (e.g. {expect.key})" in said, shown
    assert f"error: 1 row(s) MariaDB will not take as they are (listed above; first {expect.table}.{expect.column} " \
           f"at key {expect.key}: {expect.rule}); nothing was written" in said, shown
    assert "PostgreSQL" not in said, shown
    assert read(mysql_url, "SHOW TABLES") == [], "a refused move wrote to the target"
    assert sha256(source) == before

    moved = migrate(source, mysql_url, tmp_path / "state", oddity, "--on-orphans", "quarantine")
    assert moved.returncode == 0, f"exit {moved.returncode}\n{moved.stderr[-3000:]}"
    run = the_run(tmp_path / "state")
    assert rows_lost(source, mysql_url, run) == 0
    follow = children(source, expect.table, expect.key)
    assert quarantined(run) == {expect.table: 1, **follow}
    (held,) = [json.loads(line) for line in (run / "quarantine" / f"{expect.table}.jsonl").read_text().splitlines()]
    assert (held["pk"], held["rule"], held["reason"]) == (expect.key, expect.rule, f"{expect.column}: {expect.rule}")
    for table in follow:
        records = [json.loads(line) for line in (run / "quarantine" / f"{table}.jsonl").read_text().splitlines()]
        assert {r["rule"] for r in records} == {ORPHANED}, records
    assert sha256(source) == before
    survived(fault=f"a value MariaDB cannot hold: {oddity.name}",
             did=f"refused (exit 3) naming {expect.table}.{expect.column} and key {expect.key}; with --on-orphans "
                 f"quarantine: the row held ({expect.rule})"
                 + "".join(f", its {n} {t} row(s) with it ({ORPHANED})" for t, n in follow.items())
                 + ", the rest moved and verified", rows_lost=0)


def moved_whole(oddity: Oddity, target: str, tmp_path: Path) -> Path:
    """The oddity's file moved to `target` with the default policy: finished, verified, nothing lost or held; the
    run's folder."""
    source = build(tmp_path / "odd.db", oddity)
    moved = migrate(source, target, tmp_path / "state", oddity)
    assert moved.returncode == 0, f"exit {moved.returncode}\n{moved.stderr[-3000:]}"
    run = the_run(tmp_path / "state")
    assert rows_lost(source, target, run) == 0
    assert quarantined(run) == {}
    return run


def test_values_exactly_at_mariadbs_limits_move_as_they_are(tmp_path: Path, mysql_url: str, survived) -> None:
    run = moved_whole(AT_THE_LIMIT, mysql_url, tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert {t: c for t, c in report["conversions"].items() if c} == AT_THE_LIMIT.expect.conversions
    assert read(mysql_url, "SELECT username FROM users WHERE id = 'u-255'") == [(AT_WIDTH,)]
    assert read(mysql_url, "SELECT email FROM users WHERE id = 'u-blob'") == [(AT_WIDTH,)]
    assert read(mysql_url, "SELECT status, state FROM executions WHERE id = 3") == [(AT_WIDTH, nested(31))]
    survived(fault="values exactly at MariaDB's limits: 255 characters (accents, a 4-byte emoji; as text and as a "
                   "UTF-8 BLOB), JSON 31 deep, 40 brackets inside a JSON string",
             did="moved as they are and verified, nothing held", rows_lost=0)


def test_postgresql_takes_what_mariadb_cannot(tmp_path: Path, pg_url: str) -> None:
    every = odd("every value above", *(s for o in TOO_BIG for s in o.statements), expect=Moved(), engine=True)
    moved_whole(every, pg_url, tmp_path)

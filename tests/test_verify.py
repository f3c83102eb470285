"""Row-level verification against real SQLite files and the real PostgreSQL.

The targets are made by the real `wizard migrate` (which verifies at its end too).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import uuid
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from wizard import sample
from wizard.cli import main
from wizard.urls import parse_url
from wizard.verify.run import load_quarantine, verify


async def _pg(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(**parse_url(url).pg_connect_kwargs())


def move(source: Path, target_url: str, *args: str) -> tuple[str, Path]:
    """`wizard migrate` of `source` into the empty `target_url`; the run's id and state directory."""
    state = source.parent / f"state-{uuid.uuid4().hex[:6]}"
    result = CliRunner().invoke(main, ["migrate", "--source", sqlite_url(source), "--target", target_url, "--yes",
                                       "--state-dir", str(state), "--json", *args])
    assert result.exit_code == 0, result.output
    summary = [json.loads(line) for line in result.stdout.splitlines() if '"Summary"' in line][-1]
    return summary["run_id"], state


def pg_exec(url: str, *statements: str) -> None:
    async def run() -> None:
        conn = await _pg(url)
        try:
            for s in statements:
                await conn.execute(s)
        finally:
            await conn.close()

    asyncio.run(run())


def sqlite_exec(path: Path, *statements: str | tuple) -> None:
    conn = sqlite3.connect(path)
    for s in statements:
        conn.execute(*((s,) if isinstance(s, str) else s))
    conn.commit()
    conn.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def run_verify(source: str, target: str, *args: str) -> tuple[int, dict | None, str]:
    """`wizard verify --json`: exit code, the summary object, and stdout."""
    result = CliRunner().invoke(main, ["verify", "--source", source, "--target", target, "--json", *args])
    summary = None
    for line in result.stdout.splitlines():
        record = json.loads(line)
        if record.get("event") == "VerifySummary":
            summary = record
    return result.exit_code, summary, result.stdout


def differences(summary: dict) -> dict[str, dict]:
    """table -> {pk: (kind, sorted differing columns)} for every listed difference."""
    return {
        t["table"]: {tuple(d["pk"]) if isinstance(d["pk"], list) else d["pk"]:
                     (d["kind"], sorted(c["column"] for c in d["columns"])) for d in t["diffs"]}
        for t in summary["tables"] if t["diffs"]
    }


@pytest.fixture
def moved(engine_db: Path, pg_url: str) -> tuple[Path, str]:
    move(engine_db, pg_url)
    return engine_db, pg_url


def first_user(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
    finally:
        conn.close()


# --- the tests ---


def test_a_clean_move_verifies_equal(moved):
    source, target = moved
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 0
    assert summary["ok"] is True
    by_table = {t["table"]: t for t in summary["tables"]}
    assert set(by_table) == {"users", "workflows", "executions", "settings"}
    assert by_table["executions"]["equal"] == by_table["executions"]["source_rows"] == 300
    assert all(t["status"] == "ok" and t["diffs"] == [] for t in summary["tables"])


def test_planted_differences_are_named_exactly(moved):
    source, target = moved
    user = first_user(source)
    pg_exec(
        target,
        # JSON: one nested value; going through jsonb also reorders every key of that row.
        "UPDATE executions SET state = jsonb_set(state::jsonb, '{variables,attempt}', '99')::json WHERE id = 7",
        "UPDATE executions SET started_at = started_at + interval '1 second' WHERE id = 11",
        f"UPDATE users SET is_active = NOT is_active WHERE id = '{user}'",
        "DELETE FROM executions WHERE id = 20",
        "INSERT INTO executions (id, workflow_id, status) SELECT 1000, workflow_id, 'pending' FROM executions LIMIT 1",
    )
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 1
    assert differences(summary) == {
        "executions": {7: ("different", ["state"]), 11: ("different", ["started_at"]),
                       20: ("only_source", []), 1000: ("only_target", [])},
        "users": {user: ("different", ["is_active"])},
    }
    executions = next(t for t in summary["tables"] if t["table"] == "executions")
    assert (executions["equal"], executions["different"], executions["only_source"], executions["only_target"]) == (
        297, 2, 1, 1)
    state = next(d for d in executions["diffs"] if d["pk"] == 7)["columns"][0]
    assert (state["target"], state["detail"]) == ("99", "differs at $.variables.attempt")  # the values there


def test_json_compared_as_parsed_values_not_text(moved):
    source, target = moved
    # Spaces and the spelling of escapes changed, the keys in their order: what the engine reads is the same.
    pg_exec(target, "UPDATE executions SET state = replace(replace(state::text, ': ', ':'), '\"running\"', "
                    "'\"\\u0072unning\"')::json")
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 0, summary


def test_json_key_order_and_whole_numbers_count_in_a_json_column(moved):
    """PostgreSQL's json keeps the text the copy passed, so what Python's json reads of it must be the source's: the
    keys in their order (revision 0004 turns state.nodes into an array in that order) and 1 an int, not 1.0. A
    target whose state went through jsonb (keys reordered) or whose number gained a fraction verified equal."""
    source, target = moved
    pg_exec(target, "UPDATE executions SET state = (state::jsonb)::json WHERE id = 7",  # every object's keys reordered
            "UPDATE executions SET state = regexp_replace(state::text, '(\"attempt\": *)([0-9]+)', '\\1\\2.0')::json "
            "WHERE id = 9")
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 1, summary
    assert differences(summary) == {"executions": {7: ("different", ["state"]), 9: ("different", ["state"])}}
    executions = next(t for t in summary["tables"] if t["table"] == "executions")
    details = {d["pk"]: d["columns"][0]["detail"] for d in executions["diffs"]}
    assert details[7] == "differs at $.nodes.node_0: its keys in another order"  # jsonb: shorter keys first
    assert details[9] == ("differs at $.variables.attempt: a whole number against one written with a fraction "
                          "(Python's int against float)")


def test_a_database_verifies_equal_with_its_own_backup(engine_db: Path, tmp_path: Path):
    (tmp_path / "back ups 100%").mkdir()
    backup = tmp_path / "back ups 100%" / "backup.db"  # a path a naive file: URI would misread
    src = sqlite3.connect(engine_db)
    dst = sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    code, summary, _ = run_verify(sqlite_url(engine_db), sqlite_url(backup))
    assert code == 0
    assert sum(t["equal"] for t in summary["tables"]) == 300 + 20 + 5 + 1
    sqlite_exec(backup, "UPDATE workflows SET is_public = 1 - is_public WHERE rowid = 3")
    code, summary, _ = run_verify(sqlite_url(engine_db), sqlite_url(backup))
    assert code == 1
    assert [list(d.values())[0] for d in differences(summary).values()] == [("different", ["is_public"])]


def test_dirty_source_values_compare_equal_after_the_copys_conversions(engine_db: Path, pg_url: str):
    user = first_user(engine_db)
    sqlite_exec(
        engine_db,
        "UPDATE executions SET started_at = '2025-01-02T03:04:05Z' WHERE id = 1",
        "UPDATE executions SET started_at = '2025-01-02 03:04:05.123456+02:00' WHERE id = 2",
        "UPDATE executions SET started_at = '2025-01-02T03:04:05.5' WHERE id = 3",
        "UPDATE executions SET completed_at = '2025-01-02' WHERE id = 4",
        "UPDATE executions SET error = 'timed' || char(0) || 'out' WHERE id = 5",
        "UPDATE executions SET state = '{\"nodes\": {}, \"note\": \"a' || char(0) || 'b\"}' WHERE id = 6",
        "UPDATE users SET is_active = 't', is_admin = 'false' WHERE id = (SELECT id FROM users LIMIT 1 OFFSET 1)",
        f"UPDATE users SET is_active = 'f', is_admin = 'TRUE' WHERE id = '{user}'",
    )
    move(engine_db, pg_url)
    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url)
    assert code == 0, differences(summary)


def test_fields_are_framed_and_null_is_not_the_text_null(moved):
    source, target = moved
    user = first_user(source)
    sqlite_exec(source, f"UPDATE users SET username = 'ab', email = 'c' WHERE id = '{user}'",
                "UPDATE executions SET error = NULL WHERE id = 3")
    pg_exec(target, f"UPDATE users SET username = 'a', email = 'bc' WHERE id = '{user}'",
            "UPDATE executions SET error = 'NULL' WHERE id = 3")
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 1
    assert differences(summary) == {"users": {user: ("different", ["email", "username"])},
                                    "executions": {3: ("different", ["error"])}}
    error = differences_detail(summary, "executions", 3)["error"]
    assert (error["source"], error["target"]) == (None, "NULL")


def differences_detail(summary: dict, table: str, pk) -> dict[str, dict]:
    t = next(t for t in summary["tables"] if t["table"] == table)
    return {c["column"]: c for c in next(d for d in t["diffs"] if d["pk"] == pk)["columns"]}


def test_a_one_microsecond_difference_is_found(moved):
    source, target = moved
    pg_exec(target, "UPDATE executions SET completed_at = completed_at + interval '1 microsecond' "
                    "WHERE id = (SELECT min(id) FROM executions WHERE completed_at IS NOT NULL)")
    code, summary, _ = run_verify(sqlite_url(source), target)
    assert code == 1
    (pk, (kind, cols)), = differences(summary)["executions"].items()
    assert cols == ["completed_at"]
    shown = differences_detail(summary, "executions", pk)["completed_at"]
    assert shown["source"][-6:] != shown["target"][-6:]  # the microseconds are shown, and they differ


# --- quarantine ---


def test_quarantined_rows_count_as_quarantined_not_missing(engine_db: Path, pg_url: str, tmp_path: Path):
    sqlite_exec(engine_db, "UPDATE executions SET state = '{not json' WHERE id IN (5, 9)")
    run_id, state = move(engine_db, pg_url, "--on-orphans", "quarantine")  # verifies itself with the quarantine
    assert load_quarantine(state / "runs" / run_id) == {"executions": {5, 9}}

    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url)  # without the run: two rows missing
    assert code == 1
    assert differences(summary) == {"executions": {5: ("only_source", []), 9: ("only_source", [])}}

    report = tmp_path / "out" / "report.md"
    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url, "--run", run_id, "--state-dir", str(state),
                                  "--report", str(report))
    assert code == 0
    executions = next(t for t in summary["tables"] if t["table"] == "executions")
    assert (executions["quarantined"], executions["equal"], executions["only_source"]) == (2, 298, 0)
    text = report.read_text()
    assert "text that is not valid JSON in a JSON column" in text  # the quarantine counts, by rule
    assert json.loads(report.with_suffix(".json").read_text())["copy"]["quarantine"]["executions"]


def test_a_value_the_rules_refuse_is_a_difference_with_the_rule(engine_db: Path, pg_url: str):
    move(engine_db, pg_url)
    sqlite_exec(engine_db, "UPDATE executions SET started_at = 'yesterday' WHERE id = 8")
    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url)
    assert code == 1
    started = differences_detail(summary, "executions", 8)["started_at"]
    assert started["source"] == "yesterday"
    assert started["detail"] == "text that is not a timestamp in a timestamp column"


def test_the_dirty_database_verifies_clean_and_every_planted_difference_is_found(tmp_path: Path, pg_url: str):
    source = sample.build_dirty(tmp_path / "dirty.db", executions=100)
    run_id, state = move(source, pg_url, "--on-orphans", "quarantine")
    with_run = ("--run", run_id, "--state-dir", str(state))
    code, summary, _ = run_verify(sqlite_url(source), pg_url, *with_run)
    assert code == 0, differences(summary)
    assert sum(t["quarantined"] for t in summary["tables"]) > 0

    pg_exec(
        pg_url,
        f"UPDATE executions SET started_at = started_at + interval '1 second' WHERE id = {sample.SPELLED_EXECUTIONS[2]}",
        "DELETE FROM executions WHERE id = 50",  # no plugin_audit row refers to it
        f"UPDATE users SET is_active = NOT is_active WHERE id = '{sample.SPELLED_USERS[0]}'",
        f"UPDATE workflows SET description = 'before after' WHERE id = '{sample.NUL_WORKFLOW}'",
        "UPDATE plugin_pair SET note = 'changed' WHERE a = 'x' AND b = 2",
        "UPDATE plugin_audit SET amount = amount + 0.01, ref = NULL WHERE id = 1",
        "INSERT INTO plugin_pair VALUES ('z', 9, 'new')",
        "DELETE FROM plugin_kv WHERE key = 'beta'",  # no primary key: found, not named
    )
    code, summary, _ = run_verify(sqlite_url(source), pg_url, *with_run)
    assert code == 1
    assert differences(summary) == {
        "executions": {sample.SPELLED_EXECUTIONS[2]: ("different", ["started_at"]),
                       50: ("only_source", [])},
        "users": {sample.SPELLED_USERS[0]: ("different", ["is_active"])},
        "workflows": {sample.NUL_WORKFLOW: ("different", ["description"])},
        "plugin_audit": {1: ("different", ["amount", "ref"])},
        "plugin_pair": {("x", 2): ("different", ["note"]), ("z", 9): ("only_target", [])},
    }
    assert {t["table"] for t in summary["tables"] if t["status"] != "ok"} == {
        "executions", "users", "workflows", "plugin_audit", "plugin_pair", "plugin_kv"}


def test_keys_the_copy_set_to_null_are_expected_null(tmp_path: Path, pg_url: str):
    source = sample.build_dirty(tmp_path / "dirty.db", executions=20)
    run_id, state = move(source, pg_url, "--on-orphans", "null")
    code, summary, _ = run_verify(sqlite_url(source), pg_url)  # without the run, the NULLs are differences
    assert code == 1
    changed = {pk: d for pk, d in differences(summary)["workflows"].items() if d[0] == "different"}
    assert changed == {pk: ("different", ["owner_id"]) for pk in (sample.ORPHAN_WORKFLOW, sample.OWNED_BY_BAD_USER)}
    code, summary, _ = run_verify(sqlite_url(source), pg_url, "--run", run_id, "--state-dir", str(state))
    assert code == 0, differences(summary)


# --- keys ---


def one_table(tmp_path: Path, pg_url: str, sqlite_sql: tuple, pg_sql: tuple):
    """The verdict on the single hand-made table of a SQLite file and a PostgreSQL database."""
    source = tmp_path / "hand-made.db"
    sqlite_exec(source, *sqlite_sql)
    pg_exec(pg_url, *pg_sql)
    (verdict,) = asyncio.run(verify(parse_url(sqlite_url(source)), parse_url(pg_url))).tables
    return verdict


def test_text_keys_in_a_non_c_collation_merge_in_byte_order(tmp_path: Path, pg_url: str):
    keys = ["a", "B", "Z", "_x", "é", "ab", "a-b", "A", "a b", "zz", "Ω", "10", "9"]
    notes = one_table(
        tmp_path, pg_url,
        ("CREATE TABLE notes (id VARCHAR NOT NULL PRIMARY KEY, body TEXT)",
         *[("INSERT INTO notes VALUES (?, ?)", (k, f"body {k}")) for k in keys]),
        ('CREATE TABLE notes (id varchar COLLATE "en-x-icu" PRIMARY KEY, body text)',
         *[f"INSERT INTO notes VALUES ('{k}', 'body {k}')" for k in keys]),
    )
    assert (notes.equal, notes.status) == (len(keys), "ok"), notes.diffs


def test_keys_stored_as_mixed_storage_classes_still_match(tmp_path: Path, pg_url: str):
    # No declared type: SQLite keeps '2' as text next to integers, and sorts integers first.
    items = one_table(
        tmp_path, pg_url,
        ("CREATE TABLE items (id PRIMARY KEY, label TEXT)",
         "INSERT INTO items VALUES (1, 'a'), ('2', 'b'), (3, 'c'), (10, 'd'), ('9', 'e'), ('x', 'f')"),
        ("CREATE TABLE items (id bigint PRIMARY KEY, label text)",
         "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c'), (10, 'd'), (9, 'e')"),
    )
    assert (items.source_rows, items.equal, items.different, items.only_target) == (6, 5, 1, 0)
    (diff,) = items.diffs
    assert diff.pk == "x" and "not a whole number" in diff.reason


def test_every_kind_compares_by_the_rules_and_nothing_looser(tmp_path: Path, pg_url: str):
    # id 1: equal after conversion in every column; id 2: each column holds what Python's == would
    # call equal but the rules refuse or tell apart (1.0 is not a boolean; 0.1 is not 0.1000001).
    # `flag` has no declared type, so SQLite keeps 1.0 a REAL.
    kinds = one_table(
        tmp_path, pg_url,
        ("CREATE TABLE kinds (id INTEGER PRIMARY KEY, flag, at DATETIME, atz DATETIME, day DATE, "
         "amount NUMERIC, ratio REAL, blob BLOB)",
         "INSERT INTO kinds VALUES (1, 'true', '2025-01-02 03:04:05', '2025-01-02T03:04:05+02:00', '2025-01-02', "
         "'12.50', 5, x'00ff')",
         "INSERT INTO kinds VALUES (2, 1.0, '2025-01-02 03:04:05.000001', NULL, '2025-01-02', 0.1, 0.25, x'00')",
         "INSERT INTO kinds VALUES (3, 1.0, NULL, NULL, NULL, NULL, NULL, NULL)"),
        ("CREATE TABLE kinds (id bigint PRIMARY KEY, flag boolean, at timestamp, atz timestamptz, day date, "
         "amount numeric, ratio float8, blob bytea)",
         "INSERT INTO kinds VALUES (1, true, '2025-01-02 03:04:05', '2025-01-02 01:04:05+00', '2025-01-02', "
         "12.5, 5, '\\x00ff')",
         "INSERT INTO kinds VALUES (2, true, '2025-01-02 03:04:05', NULL, '2025-01-03', 0.1000001, 0.25, '\\x01')",
         "INSERT INTO kinds VALUES (3, true, NULL, NULL, NULL, NULL, NULL, NULL)"),
    )
    assert (kinds.equal, kinds.different) == (1, 2), kinds.diffs
    row, flag_only = kinds.diffs
    assert [c.column for c in flag_only.columns] == ["flag"]
    by_column = {c.column: c for c in row.columns}
    assert sorted(by_column) == ["amount", "at", "blob", "day", "flag"]
    assert by_column["flag"].detail == "a value that is not a boolean in a boolean column"
    assert (by_column["at"].source, by_column["at"].target) == ("2025-01-02 03:04:05.000001", "2025-01-02 03:04:05.000000")


def test_a_table_without_primary_key_is_compared_as_a_whole(tmp_path: Path, pg_url: str):
    log = one_table(
        tmp_path, pg_url,
        ("CREATE TABLE log_lines (line TEXT, n INTEGER)", "INSERT INTO log_lines VALUES ('x', 1), ('x', 1), ('y', NULL)"),
        ("CREATE TABLE log_lines (line text, n bigint)", "INSERT INTO log_lines VALUES ('y', NULL), ('x', 1), ('x', 1)"),
    )
    assert (log.status, log.equal) == ("ok", 3)
    log = one_table(tmp_path, pg_url, (), ("UPDATE log_lines SET n = 2 WHERE ctid = "
                                           "(SELECT min(ctid) FROM log_lines WHERE line = 'x')",))
    assert log.status == "differs" and "cannot be named" in log.note


# --- both directions ---


@pytest.fixture
def second_pg_url(pg_server: str) -> str:
    name = f"wizard_test_{uuid.uuid4().hex[:12]}"
    pg_exec(pg_server, f'CREATE DATABASE "{name}"')
    yield make_url(pg_server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    pg_exec(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgresql_against_postgresql(moved, second_pg_url: str):
    source, first = moved
    move(source, second_pg_url)
    code, _, _ = run_verify(first, second_pg_url)
    assert code == 0
    pg_exec(second_pg_url, "UPDATE executions SET status = 'unheard of', error = 'x' WHERE id = 42")
    code, summary, _ = run_verify(first, second_pg_url)
    assert code == 1
    assert differences(summary) == {"executions": {42: ("different", ["error", "status"])}}


# --- what it shows, and what it never does ---


def test_secrets_never_show_in_the_summary_or_the_report(moved, tmp_path: Path):
    source, target = moved
    user = first_user(source)
    key_before, key_after = "sk-proj-abcdefghijklmnop1234", "a-key-of-no-known-shape-9876"  # masked by its name
    sqlite_exec(source, ("UPDATE settings SET settings_data = ?", (json.dumps(
        {"providers": [{"id": "p1", "name": "OpenAI", "type": "openai", "apiKey": key_before, "enabled": True}]}),)))
    pg_exec(target,
            f"UPDATE users SET hashed_password = 'hash-that-must-not-show' WHERE id = '{user}'",
            "UPDATE settings SET settings_data = '{\"providers\": [{\"id\": \"p1\", \"name\": \"OpenAI\", "
            f"\"type\": \"openai\", \"apiKey\": \"{key_after}\", \"enabled\": true}}]}}'")
    report = tmp_path / "report.md"
    code, summary, stdout = run_verify(sqlite_url(source), target, "--report", str(report))
    assert code == 1
    assert differences(summary) == {"users": {user: ("different", ["hashed_password"])},
                                    "settings": {1: ("different", ["settings_data"])}}
    written = report.read_text() + report.with_suffix(".json").read_text()
    for secret in ("hash-that-must-not-show", "$2b$12$", key_before, key_after):
        assert secret not in stdout and secret not in written
    assert "| users | 5 | 5 | 0 | 4 | 1 | 0 | 0 | differs |" in written


def test_the_table_on_the_terminal(moved):
    source, target = moved
    pg_exec(target, "DELETE FROM executions WHERE id = 3")
    result = CliRunner().invoke(main, ["verify", "--source", sqlite_url(source), "--target", target])
    assert result.exit_code == 1
    assert "only source" in result.stdout and "executions 3: only source" in result.stdout
    assert "differences found: executions differs" in result.stdout


def test_the_source_is_never_written(moved):
    source, target = moved
    before = hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_mtime_ns
    files = sorted(p.name for p in source.parent.iterdir())
    assert run_verify(sqlite_url(source), target)[0] == 0
    assert (hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_mtime_ns) == before
    assert sorted(p.name for p in source.parent.iterdir()) == files


def test_a_stop_request_interrupts_between_chunks(moved):
    from wizard.errors import Interrupted
    from wizard.events import StopRequest

    source, target = moved
    stop = StopRequest()
    stop.set("test")
    with pytest.raises(Interrupted):
        asyncio.run(verify(parse_url(sqlite_url(source)), parse_url(target), stop=stop))


def test_max_keys_bounds_the_listed_differences(moved):
    source, target = moved
    pg_exec(target, "UPDATE executions SET status = 'x' WHERE id <= 50")
    report = asyncio.run(verify(parse_url(sqlite_url(source)), parse_url(target), max_keys=10))
    executions = next(t for t in report.tables if t.table == "executions")
    assert executions.different == 50 and len(executions.diffs) == 10
    assert [d.pk for d in executions.diffs] == list(range(1, 11))
    assert executions.columns == {"status": 50}


def test_long_values_are_shown_from_where_they_part_and_masked_before_the_cut():
    from wizard.move.normalize import TEXT
    from wizard.verify.show import shown_pair

    a, b = "x" * 1500 + "AAA" + "y" * 500, "x" * 1500 + "BBB" + "y" * 500
    source, target, _ = shown_pair("error", TEXT, a, b)
    assert source.startswith("...") and "AAA" in source and "BBB" in target and len(source) <= 410
    key = "sk-abcdefghijklmnopqrstuvwxyz0123"
    a, b = "x" * 1000 + f" key {key} and then A", "x" * 1000 + f" key {key} and then B"
    source, target, _ = shown_pair("error", TEXT, a, b)
    assert "A" in source and "mnopqrstuvwxyz" not in source + target


def test_text_that_is_not_utf8_is_a_difference_not_a_crash(tmp_path: Path, pg_url: str):
    notes = one_table(
        tmp_path, pg_url,
        ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
         *[("INSERT INTO notes VALUES (?, ?)", (i, f"note {i}")) for i in range(1, 7000)],
         "UPDATE notes SET body = CAST(x'6869ff' AS TEXT) WHERE id = 6500"),  # 'hi' and a stray byte
        ("CREATE TABLE notes (id bigint PRIMARY KEY, body text)",
         "INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 6999) i"),
    )
    assert (notes.equal, notes.different) == (6998, 1)
    (diff,) = notes.diffs
    assert (diff.pk, diff.columns[0].detail) == (6500, "bytes that are not UTF-8 text in a text column")


def test_json_numbers_compare_by_exact_value_and_nan_is_not_json(tmp_path: Path, pg_url: str):
    from wizard.move.normalize import JSON, BadValue, canonical

    huge = "1" + "0" * 5000  # valid JSON; Python's int() refuses more than 4300 digits
    docs = tmp_path, pg_url
    numbers = one_table(
        *docs,
        ("CREATE TABLE docs (id INTEGER PRIMARY KEY, body JSON)",
         ("INSERT INTO docs VALUES (1, ?), (2, '[1e400]'), (3, '[0.1]'), (4, '{\"a\": 1.0, \"b\": 1e2}')",
          (f'{{"n": {huge}}}',))),
        ("CREATE TABLE docs (id bigint PRIMARY KEY, body json)",
         f"INSERT INTO docs VALUES (1, '{{ \"n\" : {huge} }}'), (2, '[2e400]'), (3, '[0.10000000000000001]'), "
         "(4, '{\"a\": 1.00, \"b\": 100.0}')"),
    )
    assert (numbers.equal, numbers.different) == (2, 2), numbers.diffs
    assert [(d.pk, d.columns[0].detail) for d in numbers.diffs] == [(2, "differs at $[0]"), (3, "differs at $[0]")]
    assert canonical(JSON, f"[{huge}, 2.50]") == canonical(JSON, f"[ {huge}.0 ,2.5]")
    for constant in ("NaN", "[Infinity]", '{"a": -Infinity}', f"[{huge}, NaN]"):  # as the copy judges it
        with pytest.raises(BadValue, match="not valid JSON"):
            canonical(JSON, constant)


def test_timestamp_keys_spelled_two_ways_merge_by_their_instant(tmp_path: Path, pg_url: str):
    """A DATETIME key spelled with T and with a space (and with an offset) sorts apart as text ('...T09' after
    '... 10'): each such row was 'out of place' and the move failed its verification though every row was there."""
    verdict = one_table(
        tmp_path, pg_url,
        ("CREATE TABLE ev (at DATETIME PRIMARY KEY, v TEXT)",
         "INSERT INTO ev VALUES ('2024-01-01T09:00:00', 'a'), ('2024-01-01 10:00:00', 'b'), "
         "('2024-01-01T11:00:00', 'c'), ('2024-01-01 12:30:00+02:00', 'd'), ('2024-01-01 12:00:00.000001', 'e'), "
         "('9999-12-31 23:59:59.999999', 'f')"),  # SQLite reads the last one as NULL, rounded into the year 10000
        ("CREATE TABLE ev (at timestamp PRIMARY KEY, v text)",
         "INSERT INTO ev VALUES ('2024-01-01 09:00:00', 'a'), ('2024-01-01 10:00:00', 'b'), "
         "('2024-01-01 11:00:00', 'changed'), ('2024-01-01 10:30:00', 'd'), ('2024-01-01 12:00:00.000001', 'e'), "
         "('9999-12-31 23:59:59.999999', 'f')"),
    )
    assert (verdict.equal, verdict.different, verdict.only_source, verdict.only_target) == (5, 1, 0, 0), verdict.diffs
    assert [(d.pk, [c.column for c in d.columns]) for d in verdict.diffs] == [("2024-01-01 11:00:00", ["v"])]

"""The table copier: the fast path agrees with normalize, chunks commit with their checkpoints, resume is exact."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path

import asyncpg
import pytest

from move_helpers import fetch, sha256, source_rows, source_tables, target_compared, compared
from wizard.move import normalize as n
from wizard import sample
from wizard.move import target_schema
from wizard.move.copy import TableCopy, copy_table, fast_row_function, load_checkpoints, quarantine_path
from wizard.db import quote
from wizard.errors import Interrupted
from wizard.events import StopRequest
from wizard.move.scan import RowActions, Quarantine, tolerant_text
from wizard.urls import parse_url

# Values of every storage class and spelling, for every kind: the fast path may only take the
# ones convert() passes unchanged (and cannot refuse).
CORPUS = [
    None, 0, 1, 2, -1, 7, 32767, 32768, 2**31, -(2**31) - 1, 2**62, 1.5, 2.0, -0.0, float("inf"),
    "", "text", "a\x00b", "0", "1", "t", "f", "true", "false", "yes", " 1", "12.50",
    '{"a": 1}', "[1, 2]", '"s"', "1e999", '{"a": NaN}', "{'a': 1}", '{"a": 1', "nul\x00{}", '{"a": "\\u0000"}',
    "2025-03-01 10:00:00.123456", "2025-03-01 10:00:00", "2025-03-01T10:00:00", "2025-03-01T10:00:00Z",
    "2025-03-01 10:00:00+02:00", "2025-03-01", "2025-02-30 10:00:00.000000", "2025-02-29 10:00:00.000000",
    "2024-02-29 10:00:00.000000", "2025-13-01 10:00:00.000000", "2025-01-01 24:00:00.000000",
    "2025-01-01 23:59:60.000000", "0000-01-01 00:00:00.000000", "9999-12-31 23:59:59.999999",
    "2025-03-01 10:00:00,123456", "1735689600", "1735689600.5", "2025-02-30", "2024-02-29", "0000-01-01",
    "0001-01-01 00:00:00.000000", "0001-01-01", "9999-12-31", "é", "a\tb",
    # days and months around the digits-only test for a real date (01-28 of months 01-12), and past it
    "2025-01-28 10:00:00.000000", "2025-02-28", "2025-12-28", "2025-01-31", "2025-04-31", "2025-06-31 10:00:00.000000",
    "2025-00-10", "2025-01-00", "2025-00-10 10:00:00.000000", "2025-01-00 10:00:00.000000", "2025-13-28",
    "2025-19-05", "2025-01-29", "2025-01-99", "2025-10-15", "2025-11-31",
    "2025-03-01 10:00:00.123456\x00junk", "2025-03-01\x00junk",  # a NUL after a whole timestamp or date
    b"", b"\x00\x01", b"text", b"\xff", "1" * 5000,
    # past normalize.GLOB_BYTES, text is judged by a function rather than by GLOB and instr
    "a" * 100 + "\x00b", '{"a": "' + "b" * 100 + '\x00"}', "é" * 100, '{"é": "' + "é" * 100 + '"}',
]


def test_fast_path_takes_only_values_convert_passes_unchanged() -> None:
    conn = sqlite3.connect(":memory:")
    n.add_sql_functions(conn)
    conn.execute("CREATE TABLE v (x)")  # no affinity: each value keeps its storage class
    conn.executemany("INSERT INTO v VALUES (?)", [(v,) for v in CORPUS])
    conn.execute(f"INSERT INTO v VALUES (CAST(x'ff' AS TEXT)), (CAST(x'61eda080' AS TEXT)), "  # not UTF-8
                 f"(CAST(x'{'61' * 100}ff' AS TEXT))")
    conn.text_factory = tolerant_text
    kinds = [n.TEXT, n.JSON, n.TIMESTAMP, n.DATE, n.BOOLEAN, n.BIGINT, n.INTEGER, n.SMALLINT, n.FLOAT, n.NUMERIC,
             n.BYTES]
    taken = 0
    for kind in kinds:
        for value, clean in conn.execute(f"SELECT x, {n.clean_sql(kind, 'x')} FROM v"):
            if not clean:
                continue
            taken += 1
            fast = n.fast(kind)
            expected = (value if fast is None or value is None else fast(value), None)
            assert n.convert(kind, value) == expected, (kind, value)
    assert taken > 40


def test_fast_row_function_converts_only_what_needs_it() -> None:
    f = fast_row_function([n.BIGINT, n.TEXT, n.TIMESTAMP, n.BOOLEAN, n.DATE, n.JSON])
    row = (5, "x", "2025-03-01 10:00:00.000001", 1, "2025-03-01", '{"a": 1}', 1)  # the clean flag last
    assert f(row) == (5, "x", datetime(2025, 3, 1, 10, 0, 0, 1), True, date(2025, 3, 1), '{"a": 1}')
    assert f((None,) * 7) == (None,) * 6


def test_json_rules_match_postgresql(pg_url: str) -> None:
    """What convert() accepts in a JSON column, PostgreSQL's json accepts, and the other way round."""
    samples = ['{"a": 1}', '{"a": NaN}', '[1, 2,]', '"\\u0000"', "1" * 5000, '{"a": Infinity}', " [] ", "{'a': 1}"]
    for text in samples:
        try:
            n.convert(n.JSON, text)
            ours = True
        except n.BadValue:
            ours = False
        try:
            fetch(pg_url, "SELECT $1::json", text)
            theirs = True
        except asyncpg.PostgresError:
            theirs = False
        assert ours == theirs, text


async def _schema(source: Path, target: str, run_id: str = "run-1"):
    tables = source_tables(source)
    made = await target_schema.create(parse_url(target), "0001", tables, run_id, {}, lambda e: None)
    return tables, made


async def _copy(source: Path, target: str, table, actions: RowActions | None = None, stop: StopRequest | None = None,
                chunk_rows: int = 100, folder: Path | None = None, run_id: str = "run-1", rows: int = 0) -> TableCopy:
    conn = await asyncpg.connect(target)
    try:
        saved = await load_checkpoints(conn, run_id)
        state = saved.get(table.name) or TableCopy(table.name, rows)
        return await copy_table(conn, source, table, actions or RowActions(), run_id, state, folder or source.parent,
                                lambda e: None, stop, chunk_rows)
    finally:
        await conn.close()


def test_clean_table_arrives_equal_and_the_source_is_untouched(engine_db: Path, pg_url: str) -> None:
    before = sha256(engine_db)
    tables, _ = asyncio.run(_schema(engine_db, pg_url))
    for t in tables:
        done = asyncio.run(_copy(engine_db, pg_url, t))
        assert done.done and done.quarantined == 0 and done.conversions == {}
    assert sha256(engine_db) == before
    for t in tables:
        src = sorted(compared(t, values) for _, values in source_rows(engine_db, t))
        dst = sorted(target_compared(t, r) for r in fetch(pg_url, f"SELECT * FROM {quote(t.name)}"))
        assert src == dst, t.name
    checkpoint = fetch(pg_url, "SELECT * FROM wizard_copy_checkpoint WHERE table_name = 'executions'")[0]
    assert checkpoint["rows_copied"] == 300 and checkpoint["done"]
    assert json.loads(checkpoint["last_key"]) == [300]


def test_each_chunk_commits_with_its_checkpoint_and_a_stop_resumes_exactly(engine_db: Path, pg_url: str) -> None:
    tables, _ = asyncio.run(_schema(engine_db, pg_url))
    executions = next(t for t in tables if t.name == "executions")
    stop = StopRequest()
    stop.set("test")  # honoured after the first chunk's commit
    with pytest.raises(Interrupted, match="stopped after a checkpoint in table executions"):
        asyncio.run(_copy(engine_db, pg_url, executions, stop=stop, chunk_rows=70))
    assert fetch(pg_url, "SELECT count(*), max(id) FROM executions")[0][:] == (70, 70)
    row = fetch(pg_url, "SELECT rows_copied, last_key, done FROM wizard_copy_checkpoint")[0]
    assert (row["rows_copied"], json.loads(row["last_key"]), row["done"]) == (70, [70], False)
    done = asyncio.run(_copy(engine_db, pg_url, executions, chunk_rows=70))
    assert done.done and done.copied == 300
    ids = [r[0] for r in fetch(pg_url, "SELECT id FROM executions ORDER BY id")]
    assert ids == list(range(1, 301))  # no duplicates, no gaps


def test_quarantine_file_is_cut_back_to_the_checkpoint_on_resume(tmp_path: Path, pg_url: str) -> None:
    db = sample.build_dirty(tmp_path / "dirty.db", executions=50)
    tables, _ = asyncio.run(_schema(db, pg_url))
    executions = next(t for t in tables if t.name == "executions")
    held = {(k,): Quarantine("rule", "why") for k in (sample.BAD_JSON_EXECUTION, sample.BAD_DATE_EXECUTION,
                                                       sample.DANGLING_EXECUTION, *sample.EPOCH_EXECUTIONS)}
    held.update({(k,): Quarantine("rule", "child") for k in sample.CHILD_EXECUTIONS})
    actions = RowActions(quarantine=held)
    folder = tmp_path / "run"
    stop = StopRequest()
    stop.set("test")
    with pytest.raises(Interrupted):
        asyncio.run(_copy(db, pg_url, executions, actions, stop, chunk_rows=52, folder=folder))
    qfile = quarantine_path(folder, "executions")
    committed = fetch(pg_url, "SELECT quarantine_bytes FROM wizard_copy_checkpoint")[0][0]
    assert qfile.stat().st_size == committed
    with open(qfile, "ab") as f:  # a chunk's lines written, then the process died before its commit
        f.write(b'{"pk": 900002, "torn": true}\n')
    done = asyncio.run(_copy(db, pg_url, executions, actions, chunk_rows=52, folder=folder))
    lines = [json.loads(line) for line in qfile.read_text().splitlines()]
    assert sorted(line["pk"] for line in lines) == sorted(k[0] for k in held)
    assert all(set(line) == {"pk", "table", "rule", "reason", "row"} for line in lines)
    assert done.quarantined == len(held) and done.copied + done.quarantined == 50 + 10


def test_unplanned_bad_value_stops_with_one_line(tmp_path: Path, pg_url: str) -> None:
    """A value the scan did not plan for (the source changed since) stops the copy; nothing of its chunk is kept."""
    db = sample.build_dirty(tmp_path / "dirty.db", executions=20)
    tables, _ = asyncio.run(_schema(db, pg_url))
    users = next(t for t in tables if t.name == "users")
    from wizard.errors import StepError

    with pytest.raises(StepError, match="users row .*is_active.*the source changed"):
        asyncio.run(_copy(db, pg_url, users, chunk_rows=1000))
    assert fetch(pg_url, "SELECT count(*) FROM users")[0][0] == 0


def test_sequences_give_max_plus_one_also_for_identity_columns(tmp_path: Path, pg_url: str) -> None:
    db = sample.build_dirty(tmp_path / "dirty.db", executions=40)
    tables, made = asyncio.run(_schema(db, pg_url))
    clean = {n_: RowActions() for n_ in ("executions", "plugin_audit")}
    clean["executions"] = RowActions(quarantine={(k,): Quarantine("r", "x") for k in (
        sample.DANGLING_EXECUTION, sample.BAD_JSON_EXECUTION, sample.BAD_DATE_EXECUTION, *sample.CHILD_EXECUTIONS,
        *sample.EPOCH_EXECUTIONS)})
    # Row 2 spells a boolean 'yes', which no rule takes; rows 3 to 9 hold the sample's other problems.
    clean["plugin_audit"] = RowActions(quarantine={(k,): Quarantine("r", "x") for k in (2, 3, 4, 5, 6, 7, 8, 9)})
    for t in tables:
        if t.name in clean:
            asyncio.run(_copy(db, pg_url, t, clean[t.name]))

    async def seq() -> dict:
        conn = await asyncpg.connect(pg_url)
        try:
            return await target_schema.set_sequences(conn, ["executions", "plugin_audit", "settings"])
        finally:
            await conn.close()

    values = asyncio.run(seq())
    assert values == {"executions.id": max(sample.SPELLED_EXECUTIONS) + 1, "plugin_audit.id": 2, "settings.id": 1}
    new_id = fetch(pg_url, "INSERT INTO executions (workflow_id, status) VALUES ('w', 'pending') RETURNING id")[0][0]
    assert new_id == max(sample.SPELLED_EXECUTIONS) + 1
    new_id = fetch(pg_url, "INSERT INTO plugin_audit (kind) VALUES ('new') RETURNING id")[0][0]
    assert new_id == 2
    assert fetch(pg_url, "INSERT INTO settings (user_id, settings_data) VALUES ('u', '{}') RETURNING id")[0][0] == 1


async def test_a_copy_waiting_for_a_slow_target_raises_when_its_connection_is_lost(pg_url: str) -> None:
    """asyncpg's COPY waits for the socket to drain on an event a lost connection never sets: a target that is
    slower to take the rows than they come (a trigger here), then terminated, left the copy waiting forever."""
    from wizard.move.copy import copy_records

    conn = await asyncpg.connect(pg_url)
    admin = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE t (data text)")
        await conn.execute("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$")
        await conn.execute("CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow()")
        copy = asyncio.ensure_future(copy_records(conn, "t", [("x" * 1000,)] * 200_000, ["data"]))
        # The target takes a row a millisecond: poll until the server is busy with this COPY.
        while not await admin.fetchval("SELECT count(*) FROM pg_stat_progress_copy WHERE pid = $1 AND "
                                       "tuples_processed > 0", conn.get_server_pid()):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # and the client's sends back up behind it
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        with pytest.raises(asyncpg.PostgresConnectionError, match="lost in the middle of a COPY"):
            await asyncio.wait_for(copy, timeout=60)  # bounds a hang; the loss is seen at once
    finally:
        await admin.close()
        conn.terminate()

"""Pre-flight checks and the data scan: on real SQLite files and a real PostgreSQL; nothing is written."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from move_helpers import fetch, sha256, source_tables
from test_cli_errors import wizard
from wizard import sample, schema
from wizard.move import typemap
from wizard.move import scan as data_scan
from wizard.move import normalize as n
from wizard.db import connect
from wizard.target_lock import target_lock
from wizard.move.preflight import FAIL, PASS, WARN, check_target, run_checks
from wizard.move.scan import ABORT, DANGLING, NULL, ORPHANED, QUARANTINE
from wizard.move.target_schema import target_kinds
from wizard.urls import parse_url


def checks(source: Path, target: str, **kw):
    return asyncio.run(run_checks(parse_url(f"sqlite:///{source}"), parse_url(target), **kw))


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


@pytest.fixture
def dirty_db(tmp_path: Path) -> Path:
    return sample.build_dirty(tmp_path / "dirty.db", executions=300)


def test_clean_source_and_empty_target_pass(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    before = sha256(engine_db)
    report = checks(engine_db, pg_url, state_dir=tmp_path / "state")
    assert report.ok, report.checks
    assert {c.status for c in report.checks} == {PASS}
    assert set(by_name(report)) == {"source", "revision", "target", "privileges", "target empty", "disk", "data"}
    assert report.source_revision == "0001"
    assert report.affected == {ABORT: 0, QUARANTINE: 0, NULL: 0}
    assert report.rows == {"users": 5, "workflows": 20, "executions": 300, "settings": 1}
    assert [t.name for t in report.tables] == ["users", "workflows", "executions", "settings"]
    assert report.scan == []
    assert sha256(engine_db) == before
    assert not (tmp_path / "state").exists()  # the checks make nothing


def test_scan_finds_every_dirty_case_with_example_keys(dirty_db: Path, pg_url: str) -> None:
    before = sha256(dirty_db)
    report = checks(dirty_db, pg_url)
    assert sha256(dirty_db) == before
    found = {(f.table, f.column, f.problem): f for f in report.scan}

    def keys(table: str, column: str, problem: str) -> list:
        return found[(table, column, problem)].examples

    assert keys("users", "is_active", "a value that is not a boolean in a boolean column") == [sample.BAD_USER]
    assert set(keys("users", "is_active", n.BOOL_TEXT)) == set(sample.SPELLED_USERS)
    assert keys("workflows", "owner_id", "points to no users row") == [sample.ORPHAN_WORKFLOW]
    assert set(keys("workflows", "definition", "text that is not valid JSON in a JSON column")) == {
        sample.BAD_JSON_WORKFLOW, sample.NAN_WORKFLOW}
    assert keys("workflows", "description", n.NUL_REMOVED) == [sample.NUL_WORKFLOW]
    assert keys("executions", "workflow_id", "points to no workflows row") == [sample.DANGLING_EXECUTION]
    assert keys("executions", "state", "text that is not valid JSON in a JSON column") == [sample.BAD_JSON_EXECUTION]
    assert keys("executions", "started_at", "text that is not a timestamp in a timestamp column") == [
        sample.BAD_DATE_EXECUTION]
    # Epoch seconds, as an integer and as text (which the column's affinity stored as a REAL): no rule guesses.
    assert keys("executions", "completed_at", n.NUMBER_IN_TIMESTAMP) == [sample.EPOCH_EXECUTIONS[0]]
    assert keys("executions", "started_at", n.NUMBER_IN_TIMESTAMP) == [sample.EPOCH_EXECUTIONS[1]]
    assert keys("executions", "error", n.NUL_REMOVED) == [sample.NUL_EXECUTION]
    spelled = {f.problem for f in report.scan if f.table == "executions" and f.converted and f.column.endswith("_at")}
    assert spelled == {n.TS_DATE_ONLY, n.TS_OFFSET, n.TS_ISO_T}
    assert set(keys("executions", "workflow_id", "child of a row in quarantine")) == set(sample.CHILD_EXECUTIONS)
    assert keys("plugin_audit", "small", "a number out of range for smallint") == [3]
    assert keys("plugin_audit", "flag", "a value that is not a boolean in a boolean column") == [2]  # 'yes'
    assert keys("plugin_audit", "day", "a value that is not a date in a date column") == [6]
    assert keys("plugin_audit", "execution_id", "points to no executions row") == [8]
    assert set(keys("plugin_audit", "execution_id", "child of a row in quarantine")) == {7, 9}
    assert all(len(f.examples) <= 5 for f in report.scan)
    # Per policy: abort stops on the 15 rows with a problem of their own (3 of them epoch seconds or a boolean
    # spelled 'yes'); quarantine also takes their children (two levels deep); null clears the nullable dangling
    # keys instead.
    assert report.affected == {ABORT: 15, QUARANTINE: 21, NULL: 18}
    assert by_name(report)["data"].status == WARN
    assert "15 row(s)" in by_name(report)["data"].reason


def test_a_big_table_sifted_in_rowid_ranges_finds_the_same(dirty_db: Path, pg_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    whole = checks(dirty_db, pg_url)
    monkeypatch.setattr(data_scan, "SPLIT_ROWS", 10)
    split = checks(dirty_db, pg_url)
    assert split.affected == whole.affected
    assert sorted((f.table, f.column, f.problem, f.count) for f in split.scan) == \
        sorted((f.table, f.column, f.problem, f.count) for f in whole.scan)


@pytest.mark.parametrize("columns", [("rowid",), ("ROWID", "_rowid_")])
def test_a_big_table_with_a_column_named_rowid_is_sifted_by_its_rowid(engine_db: Path, pg_url: str,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       columns: tuple[str, ...]) -> None:
    """The ranges are of the rowid: a column called rowid took that name, and ranges of its values (1 to 5 here)
    left the rest unread, so a bad value there passed the pre-flight and failed the copy ('a bug in the wizard')."""
    conn = sqlite3.connect(engine_db)
    conn.execute(f"CREATE TABLE events (id INTEGER PRIMARY KEY, {', '.join(f'{c} INTEGER' for c in columns)}, "
                 "n BIGINT)")
    conn.executemany(f"INSERT INTO events (id, {columns[0]}, n) VALUES (?, ?, ?)",
                     [(i, i if i <= 5 else None, "1_000" if i == 90 else i) for i in range(1, 101)])
    conn.commit()
    conn.close()
    monkeypatch.setattr(data_scan, "SPLIT_ROWS", 10)
    report = checks(engine_db, pg_url)
    assert [(f.table, f.column, f.examples) for f in report.scan] == [("events", "n", [90])]


def test_policies_decide_row_by_row(dirty_db: Path, pg_url: str) -> None:
    report = checks(dirty_db, pg_url)
    quarantine = report.actions[QUARANTINE]
    null = report.actions[NULL]
    assert quarantine["workflows"].quarantine[(sample.ORPHAN_WORKFLOW,)].rule == DANGLING
    assert quarantine["workflows"].quarantine[(sample.OWNED_BY_BAD_USER,)].rule == ORPHANED
    assert "is in quarantine" in quarantine["executions"].quarantine[(sample.CHILD_EXECUTIONS[1],)].reason
    # null: a dangling nullable key is cleared, and so is a key to a quarantined parent...
    assert null["workflows"].null == {(sample.ORPHAN_WORKFLOW,): ("owner_id",), (sample.OWNED_BY_BAD_USER,): ("owner_id",)}
    # ...but a NOT NULL key that dangles cannot be, so that row goes to quarantine.
    assert null["executions"].quarantine[(sample.DANGLING_EXECUTION,)].rule == DANGLING
    assert (sample.CHILD_EXECUTIONS[2],) not in null["executions"].quarantine  # its workflow stays
    assert null["plugin_audit"].null == {(7,): ("execution_id",), (8,): ("execution_id",)}


def test_a_recorded_revision_whose_tables_are_not_that_revisions_fails_the_revision_check(
        engine_db: Path, pg_url: str) -> None:
    """A column the history does not know (a later engine's, one added by hand) beside a recorded revision: the
    checks passed on the record alone, and the move stopped after making the target's schema."""
    import sqlite3

    with sqlite3.connect(engine_db) as conn:
        conn.execute("ALTER TABLE executions ADD COLUMN priority INTEGER")
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001')")
    revision = by_name(checks(engine_db, pg_url))["revision"]
    assert (revision.status, revision.reason) == (FAIL, (
        "at revision 0001 by its alembic_version, but its tables are not that revision's: executions has extra "
        "priority: the target's schema cannot be made to match: make a copy of the source whose tables are the "
        "engine's (what differs set apart or dropped there; the original stays as it is) and move the copy"))


def test_a_revision_later_than_the_wizards_history_says_which_wizard_moves_it(engine_db: Path, pg_url: str) -> None:
    import sqlite3

    with sqlite3.connect(engine_db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0099')")
    revision = by_name(checks(engine_db, pg_url))["revision"]
    assert (revision.status, revision.reason) == (FAIL, "revision 0099 is not in this wizard's history, which ends "
                                                        "at 0004: move it with a wizard that knows 0099")


def test_target_holding_engine_tables_fails_unless_it_is_the_resumed_run(engine_db: Path, pg_url: str) -> None:
    fetch(pg_url, "CREATE TABLE users (id text)")
    report = checks(engine_db, pg_url)
    assert by_name(report)["target empty"].status == FAIL
    assert "users" in by_name(report)["target empty"].reason
    fetch(pg_url, "CREATE TABLE wizard_move (run_id text)")
    fetch(pg_url, "INSERT INTO wizard_move VALUES ('run-1')")
    report = checks(engine_db, pg_url, resume_run="run-1")
    assert by_name(report)["target empty"].status == PASS
    report = checks(engine_db, pg_url, resume_run="run-2")
    assert by_name(report)["target empty"].status == FAIL
    assert "run-1" in by_name(report)["target empty"].reason


def test_target_that_does_not_answer_is_a_failed_check_in_one_line(engine_db: Path) -> None:
    report = checks(engine_db, "postgresql://nobody:secret@127.0.0.1:1/nowhere")
    target = by_name(report)["target"]
    assert target.status == FAIL
    assert "no server answers" in target.reason and "secret" not in target.reason
    assert "\n" not in target.reason


def test_user_without_create_privilege_fails(engine_db: Path, pg_url: str, pg_server: str) -> None:
    role = f"wizard_ro_{uuid.uuid4().hex[:8]}"
    fetch(pg_server, f"CREATE ROLE {role} LOGIN")
    try:
        url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
        report = checks(engine_db, url)
        assert by_name(report)["privileges"].status == FAIL
        assert "GRANT CREATE" in by_name(report)["privileges"].reason
    finally:
        fetch(pg_server, f"DROP ROLE {role}")


def test_a_damaged_source_fails_before_anything_else(tmp_path: Path, pg_url: str) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84 + b"garbage" * 200)
    report = checks(bad, pg_url)
    assert by_name(report)["source"].status == FAIL
    assert "data" not in by_name(report)


def test_check_target_says_what_it_holds(pg_url: str) -> None:
    info = asyncio.run(check_target(parse_url(pg_url)))
    assert info.ok and info.can_create and info.major >= 10
    assert "empty of the engine's tables" in info.lines()
    fetch(pg_url, "CREATE TABLE executions (id int)")
    info = asyncio.run(check_target(parse_url(pg_url)))
    assert not info.ok and "executions" in info.problem


def test_advisory_lock_refuses_a_second_holder_by_name(pg_url: str) -> None:
    async def go() -> str:
        async with target_lock(parse_url(pg_url), "wizard move run-A"):
            try:
                async with target_lock(parse_url(pg_url), "wizard move run-B"):
                    return "both held"
            except Exception as exc:  # Refused
                return getattr(exc, "message", str(exc))

    said = asyncio.run(go())
    assert "wizard move run-A" in said and "holds database" in said


@pytest.mark.parametrize("declared, rowid, pg_type, kind", [
    ("INTEGER", True, typemap.IDENTITY, n.BIGINT),
    ("INTEGER", False, "bigint", n.BIGINT),
    ("BIGINT", False, "bigint", n.BIGINT),
    ("SMALLINT", False, "smallint", n.SMALLINT),
    ("VARCHAR(20)", False, "text", n.TEXT),
    ("NUMERIC(10, 2)", False, "numeric", n.NUMERIC),
    ("BOOLEAN", False, "boolean", n.BOOLEAN),
    ("DATETIME", False, "timestamp without time zone", n.TIMESTAMP),
    ("DATE", False, "date", n.DATE),
    ("JSON", False, "json", n.JSON),
    ("REAL", False, "double precision", n.FLOAT),
    ("BLOB", False, "bytea", n.BYTES),
    ("", False, "text", n.TEXT),
    ("UUID", False, "text", n.TEXT),
])
def test_type_map(declared: str, rowid: bool, pg_type: str, kind: str) -> None:
    m = typemap.mapping_for(declared, rowid)
    assert (m.postgres, m.kind) == (pg_type, kind)
    assert m in typemap.table()


def test_engine_tables_kinds_from_the_type_map_equal_each_revisions_postgresql_types(
        engine_db: Path, pg_url: str) -> None:
    """The scan judges values with the type map's kinds; the copy writes into the revision's types."""
    async def at(revision: str) -> None:
        if revision != "0001":  # a 1.0.0 file is at 0001 with no record of it: stamp it on the first step
            async with connect(parse_url(f"sqlite:///{engine_db}")) as conn:
                async with conn.begin():
                    await schema.upgrade(conn, revision, stamp="0001" if revision == "0002" else None)
        async with connect(parse_url(pg_url)) as conn:
            async with conn.begin():
                await schema.upgrade(conn, revision)
        import asyncpg
        pgc = await asyncpg.connect(pg_url)
        try:
            for t in source_tables(engine_db):
                assert await target_kinds(pgc, t.name) == {c.name: c.kind for c in t.columns}, (revision, t.name)
        finally:
            await pgc.close()

    for revision in [r.id for r in schema.history()]:
        asyncio.run(at(revision))


def test_a_source_whose_scan_fails_on_a_damaged_page_is_refused_without_a_traceback(tmp_path: Path,
                                                                                  pg_url: str) -> None:
    source = sample.build(tmp_path / "engine.db", executions=2000, workflows=5, users=2)
    conn = sqlite3.connect(source)
    leaves = conn.execute("SELECT pageno FROM dbstat WHERE name = 'executions' AND pagetype = 'leaf'").fetchall()
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(source, "r+b") as f:  # a leaf in the middle of executions, its cells overwritten: the scan fails too
        f.seek((leaves[len(leaves) // 2][0] - 1) * size + 8)
        f.write(b"\xff" * 200)
    done = wizard("migrate", "--source", f"sqlite:///{source}", "--target", pg_url, "--yes", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    # the scan's error, never retrieved, was printed as a traceback above the refusal
    assert "Traceback" not in done.stderr and "never retrieved" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: pre-flight check 'source' failed: PRAGMA quick_check says: ") and \
        last.endswith(": restore it from a backup first"), done.stderr

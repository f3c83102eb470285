"""The schema half of verification: the target against what its Alembic revision creates."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from test_verify import move, pg_exec, run_verify, sqlite_exec, sqlite_url
from wizard.cli import main
from wizard.urls import parse_url
from wizard.verify.schema import FAIL, OK, verify_schema


def findings(url: str, status: str | None = None) -> list:
    found = asyncio.run(verify_schema(parse_url(url)))
    return [f for f in found if status is None or f.status == status]


def details(url: str) -> list[str]:
    return [f.detail for f in findings(url, FAIL)]


def test_a_moved_target_has_its_revisions_schema_and_sequences_past_the_data(engine_db: Path, pg_url: str):
    move(engine_db, pg_url)
    assert details(pg_url) == []
    ok = {(f.table, f.what) for f in findings(pg_url, OK)}
    assert {("executions", "schema"), ("executions", "sequence"), ("settings", "sequence")} <= ok


def test_a_target_at_head_matches_head(engine_db: Path, pg_url: str):
    move(engine_db, pg_url, "--to", "head")
    assert details(pg_url) == []
    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url)  # the data revisions rewrote rows: they differ
    assert code == 1
    assert summary["schema"][0]["detail"].startswith("the source is at revision 0001 and the target at 0004")
    assert {t["table"]: sorted(t["columns"]) for t in summary["tables"] if t["status"] != "ok"} == {
        "workflows": ["definition"], "executions": ["state"]}


def test_a_missing_index_fails_with_a_clear_line(engine_db: Path, pg_url: str):
    move(engine_db, pg_url)
    pg_exec(pg_url, "DROP INDEX ix_executions_status")
    assert details(pg_url) == [
        "index ix_executions_status on executions (status) is missing: queries on it scan the table; "
        "CREATE INDEX ix_executions_status ON executions (status)"
    ]
    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url)
    assert code == 1
    assert all(t["status"] == "ok" for t in summary["tables"])  # the rows are all there; the schema is not


def test_a_sequence_behind_the_data_fails_with_a_clear_line(engine_db: Path, pg_url: str):
    move(engine_db, pg_url)
    pg_exec(pg_url, "SELECT setval('executions_id_seq', 300, false)")  # one short: the classic mistake
    (line,) = details(pg_url)
    assert line.startswith("sequence public.executions_id_seq hands out 300 next, but executions.id already "
                           "holds ids up to 300")
    assert "SELECT setval('public.executions_id_seq', 300)" in line
    result = CliRunner().invoke(main, ["verify", "--source", sqlite_url(engine_db), "--target", pg_url])
    assert result.exit_code == 1
    assert "schema fail sequence public.executions_id_seq hands out 300 next" in result.stdout


def test_types_nullability_keys_and_columns_are_checked(engine_db: Path, pg_url: str):
    move(engine_db, pg_url)
    pg_exec(pg_url,
            "ALTER TABLE executions ALTER COLUMN state TYPE jsonb",
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
            "ALTER TABLE workflows DROP CONSTRAINT workflows_owner_id_fkey",
            "ALTER TABLE settings ADD COLUMN theme text",
            "ALTER TABLE settings ALTER COLUMN id DROP DEFAULT")
    assert sorted(details(pg_url)) == sorted([
        "executions.state is JSONB, revision 0001 makes it JSON",
        "users.email is NOT NULL, revision 0001 makes it nullable",
        "the foreign key workflows (owner_id) -> users (id) is missing",
        "column settings.theme is not in revision 0001",
        "settings.id has no sequence: an insert without an id fails",
    ])


def test_a_1_0_0_sqlite_file_matches_the_baseline(engine_db: Path, tmp_path: Path):
    assert details(sqlite_url(engine_db)) == []
    sqlite_exec(engine_db, "DROP INDEX ix_executions_workflow_id")
    assert details(sqlite_url(engine_db)) == [
        "index ix_executions_workflow_id on executions (workflow_id) is missing: queries on it scan the table; "
        "CREATE INDEX ix_executions_workflow_id ON executions (workflow_id)"
    ]


def test_a_sequence_of_a_table_named_with_a_colon_is_checked(engine_db: Path, pg_url: str):
    """The sequence check's SQL names the table and its sequence: sent through SQLAlchemy's text(), the ':x' in
    "public.":x_id_seq"" was taken for a parameter, and the move (whose verification checks it) failed."""
    sqlite_exec(engine_db, 'CREATE TABLE ":x" (id INTEGER PRIMARY KEY, ":v" TEXT)',
                """INSERT INTO ":x" VALUES (7, 'a')""")
    move(engine_db, pg_url)
    pg_exec(pg_url, """SELECT setval('public.":x_id_seq"', 7, false)""")  # behind its highest id: named
    assert details(pg_url) == ['sequence public.":x_id_seq" hands out 7 next, but :x.id already holds ids up to 7: '
                               'the engine\'s next insert fails; fix: SELECT setval(\'public.":x_id_seq"\', 7)']


def test_the_setval_fix_of_a_sequence_named_with_a_quote_runs_as_given(engine_db: Path, pg_url: str):
    """The finding's fix is SQL an operator pastes: a quote in the sequence's name must be doubled in its literal."""
    sqlite_exec(engine_db, "CREATE TABLE \"o'hara\" (id INTEGER PRIMARY KEY, v TEXT)",
                "INSERT INTO \"o'hara\" VALUES (9, 'a')")
    move(engine_db, pg_url)
    pg_exec(pg_url, """SELECT setval('public."o''hara_id_seq"', 3)""")
    [line] = details(pg_url)
    fix = line.split("fix: ")[1]
    assert fix == """SELECT setval('public."o''hara_id_seq"', 9)"""
    pg_exec(pg_url, fix)
    assert details(pg_url) == []


def test_tables_the_history_does_not_know_are_compared_with_the_source(engine_db: Path, pg_url: str):
    sqlite_exec(engine_db, "CREATE TABLE plugin_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, seen BOOLEAN)",
                "CREATE TABLE plugin_tags (name TEXT PRIMARY KEY)")
    move(engine_db, pg_url)  # carries both over
    pg_exec(pg_url, "ALTER TABLE plugin_notes DROP COLUMN seen", "DROP TABLE plugin_tags")
    code, summary, _ = run_verify(sqlite_url(engine_db), pg_url)
    assert code == 1
    failed = sorted(f["detail"] for f in summary["schema"] if f["status"] == FAIL)
    assert failed == ["column plugin_notes.seen of the source is missing",
                      "table plugin_tags is in the source but missing here"]
    assert {t["table"]: t["status"] for t in summary["tables"]}["plugin_tags"] == "missing"


def test_the_expected_schema_leaves_nothing_behind(pg_url: str):
    assert [f.detail for f in findings(pg_url)] == [
        "cannot tell which revision to check against: empty: none of the engine's tables"]
    pg_exec(pg_url, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
            "INSERT INTO alembic_version VALUES ('0004')")
    found = findings(pg_url, FAIL)
    assert sorted(f.detail for f in found) == [f"table {t} is missing (revision 0004 creates it)"
                                               for t in ("executions", "settings", "users", "workflows")]

    async def tables() -> list[str]:
        import asyncpg
        conn = await asyncpg.connect(**parse_url(pg_url).pg_connect_kwargs())
        try:
            return [r[0] for r in await conn.fetch("SELECT relname FROM pg_class WHERE relkind = 'r' "
                                                    "AND relnamespace = 'public'::regnamespace")]
        finally:
            await conn.close()

    assert asyncio.run(tables()) == ["alembic_version"]


def test_a_sqlite_backup_passes_the_schema_part_too(engine_db: Path, tmp_path: Path):
    backup = tmp_path / "copy.db"
    src, dst = sqlite3.connect(engine_db), sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    code, summary, _ = run_verify(sqlite_url(engine_db), sqlite_url(backup))
    assert code == 0
    assert not [f for f in summary["schema"] if f["status"] == FAIL]

"""The upgrade journey through the real `wizard` script: plan, upgrade --yes, status, rollback --last --yes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from engine_data import build_pg_1_0_0, counts, revision
from move_helpers import execute
from test_cli_errors import wizard
from wizard.backup import sha256_file


def _journey(url: str, cwd: Path, extra_rollback: list[str]) -> None:
    plan = wizard("plan", "--source", url, cwd=cwd)
    assert plan.returncode == 0, plan.stderr
    text = " ".join(plan.stdout.split())
    assert "1.0.0, no revision recorded: its tables match revision 0001" in text
    for rev in ("0001", "0002", "0003", "0004"):
        assert f" {rev} " in text
    assert "record only (baseline)" in text and text.count(" apply ") == 3

    upgrade = wizard("upgrade", "--db", url, "--yes", cwd=cwd)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "integrity_check: ok" in upgrade.stderr or "pg_restore --list" in upgrade.stderr
    assert "applied 0004" in upgrade.stderr and "Traceback" not in upgrade.stderr

    rollback = wizard("rollback", "--last", "--yes", *extra_rollback, cwd=cwd)
    assert rollback.returncode == 0, rollback.stderr
    assert "verified" in rollback.stdout

    status = wizard("status", "--json", cwd=cwd)
    (run,) = json.loads(status.stdout)["runs"]
    # backup, revisions 0002-0004, schema, end state
    assert (run["journey"], run["state"], run["steps"]) == ("upgrade", "rolled back", 6)
    table = wizard("status", cwd=cwd).stdout
    assert run["id"] in table and "rolled back" in table


@pytest.mark.slow  # 7 s or more: run by `pytest -m slow`
def test_sqlite_journey_gives_back_the_same_file(engine_db: Path) -> None:
    before = sha256_file(engine_db)
    _journey("sqlite:///engine.db", engine_db.parent, [])
    assert sha256_file(engine_db) == before


@pytest.mark.slow  # 7 s or more: run by `pytest -m slow`
def test_postgresql_journey_gives_back_revision_and_rows(pg_url: str, engine_db: Path, tmp_path: Path) -> None:
    build_pg_1_0_0(pg_url, engine_db)
    rows = counts(pg_url)
    # A URL with a password is journaled masked: rollback gets it back from --db.
    extra = ["--db", pg_url] if make_url(pg_url).password is not None else []
    _journey(pg_url, tmp_path, extra)
    assert revision(pg_url) is None and counts(pg_url) == rows


def test_a_table_named_with_a_colon_is_counted_by_plan_and_by_the_backup_of_an_upgrade(pg_url: str, engine_db: Path,
                                                                                     tmp_path: Path) -> None:
    """Row counts name each table in their SQL: through text(), a table ':x' beside the engine's was taken for a
    parameter, and `plan` of such a file, and the backup (so the upgrade) of such a database, failed."""
    db = sqlite3.connect(engine_db)
    db.execute('CREATE TABLE ":x" (id INTEGER PRIMARY KEY)')
    db.execute('INSERT INTO ":x" VALUES (1), (2), (3)')
    db.commit()
    db.close()
    plan = wizard("plan", "--source", "sqlite:///engine.db", cwd=engine_db.parent)
    assert plan.returncode == 0, plan.stderr
    assert ":x 3 other (not the engine's)" in " ".join(plan.stdout.split())
    build_pg_1_0_0(pg_url, engine_db)
    execute(pg_url, 'CREATE TABLE ":x" AS SELECT generate_series(1, 3) AS id')
    upgrade = wizard("upgrade", "--db", pg_url, "--yes", cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    (journal,) = (tmp_path / ".wizard" / "runs").glob("*/journal.jsonl")
    (backup,) = [r["backup"] for r in map(json.loads, journal.read_text().splitlines())
                 if r["kind"] == "step_finished" and r["step"] == "backup"]
    assert [":x", 3] in backup["row_counts"]


def test_sql_preview_through_the_script(engine_db: Path) -> None:
    before = sha256_file(engine_db)
    result = wizard("upgrade", "--db", "sqlite:///engine.db", "--sql", cwd=engine_db.parent)
    assert result.returncode == 0 and "ALTER TABLE workflows ADD COLUMN tags JSON" in result.stdout
    assert sha256_file(engine_db) == before and not (engine_db.parent / ".wizard").exists()


def test_an_engine_table_with_a_column_added_by_hand_is_refused_saying_what_to_do(engine_db: Path) -> None:
    with sqlite3.connect(engine_db) as conn:
        conn.execute("ALTER TABLE executions ADD COLUMN note TEXT")
    before = sha256_file(engine_db)
    done = wizard("upgrade", "--db", f"sqlite:///{engine_db}", "--yes", cwd=engine_db.parent)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: sqlite:///{engine_db} records no revision and its tables match none the wizard knows: closest is "
        "0001; executions has extra note: the revisions are written for the engine's own tables: set apart what "
        "differs (its values kept in a table of their own), then upgrade")
    assert sha256_file(engine_db) == before

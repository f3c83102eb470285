"""Odd source databases (tests/odd_sources.py), each moved by the real `wizard migrate` in a process of its own
against a real PostgreSQL: a finished move that `wizard verify` passes with rows lost = 0 and every conversion
counted by name, or a pre-flight refusal (exit 3) that names the table, the column and an example key and
writes nothing, and then, with `--on-orphans quarantine`, the held rows in quarantine by their rule.

And the verification's independence: a conversion rule planted wrong in the copy (in this process, through a
fixture) makes the real copy write a wrong value to a real PostgreSQL, and the verification names it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest

from fault_support import quarantined, rows_lost, wizard
from move_helpers import fetch, tables_in
from odd_sources import ODDITIES, Held, Moved, Oddity, build, odd
from wizard.move import normalize
from wizard.errors import StepError
from wizard.move.run import MoveOptions, run_move
from wizard.urls import parse_url
from wizard.verify.run import verify


def migrate(source: Path, target: str, state: Path, oddity: Oddity, *extra: str):
    args = ["migrate", "--source", f"sqlite:///{source}", "--target", target, "--state-dir", str(state), "--yes"]
    return wizard(*args, *([] if oddity.engine else ["--reflected"]), *extra, cwd=source.parent)


def the_run(state: Path) -> Path:
    (run,) = [p for p in (state / "runs").iterdir()]
    return run


@pytest.mark.slow  # a whole move per case: the matrix runs with -m slow, out of the default run
@pytest.mark.parametrize("oddity", ODDITIES, ids=[o.name for o in ODDITIES])
def test_an_odd_source_is_moved_whole_or_refused_up_front(oddity: Oddity, tmp_path: Path, pg_url: str,
                                                          survived) -> None:
    source = build(tmp_path / "odd.db", oddity)
    expect = oddity.expect
    if isinstance(expect, Held):
        refused = migrate(source, pg_url, tmp_path / "refused", oddity)
        shown = f"exit {refused.returncode}\n{refused.stderr[-3000:]}"
        assert refused.returncode == 3, shown
        assert "Traceback" not in refused.stderr, shown
        said = " ".join(refused.stderr.split())  # the lines as printed, wherever the terminal's width wrapped them
        key = "NULL" if expect.key is None else str(expect.key)
        assert f"warning {expect.table}.{expect.column}: {expect.rows} row(s) " \
               f"{expect.rule} (e.g. {key}" in said, shown
        assert f"error: {expect.rows} row(s) PostgreSQL will not take as they are (listed above; first " \
               f"{expect.table}.{expect.column} at key {key}: {expect.rule}); nothing was written" in said, shown
        assert tables_in(pg_url) == [], "a refused move wrote to the target"
        moved = migrate(source, pg_url, tmp_path / "state", oddity, "--on-orphans", "quarantine")
    else:
        moved = migrate(source, pg_url, tmp_path / "state", oddity)
    assert moved.returncode == 0, f"exit {moved.returncode}\n{moved.stderr[-3000:]}"
    run = the_run(tmp_path / "state")
    assert rows_lost(source, pg_url, run) == 0
    report = json.loads((run / "report.json").read_text())
    if isinstance(expect, Held):
        assert quarantined(run) == {expect.table: expect.rows}
        records = [json.loads(line) for line in (run / "quarantine" / f"{expect.table}.jsonl").read_text().splitlines()]
        assert all(r["rule"] == expect.rule and r["table"] == expect.table and r["reason"].startswith(expect.column)
                   for r in records), records
        assert expect.key in [r["pk"] for r in records]
        did = f"refused (exit 3) naming {expect.table}.{expect.column} and key {key}; with " \
              f"--on-orphans quarantine: {expect.rows} row(s) held ({expect.rule}), the rest moved and verified"
    else:
        assert quarantined(run) == {}
        engine = {"users", "workflows", "executions", "settings"} if oddity.engine else set()
        assert {t: c for t, c in report["conversions"].items() if t not in engine} == expect.conversions
        assert expect.says in " ".join(moved.stderr.split()), moved.stderr[-3000:]
        counted = "; ".join(f"{t}.{c}: {name} x{k}" for t, cols in expect.conversions.items()
                            for c, made in cols.items() for name, k in made.items())
        did = "moved and verified" + (f", counted: {counted}" if counted else ", no value converted") + \
              (f"; said: {expect.says}" if expect.says else "")
    survived(fault=f"an odd source: {oddity.name}", did=did, rows_lost=0)


# An engine table another program made without its REFERENCES: the target gets the history's foreign key all the same.
UNREFERENCED = odd("executions remade without its REFERENCES workflows, one pointing nowhere",
                   "ALTER TABLE executions RENAME TO executions_made_here", "DROP INDEX ix_executions_workflow_id",
                   "CREATE TABLE executions (id INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, status VARCHAR NOT NULL, "
                   "state JSON, error TEXT, started_at DATETIME, completed_at DATETIME, PRIMARY KEY (id))",
                   "INSERT INTO executions SELECT * FROM executions_made_here", "DROP TABLE executions_made_here",
                   "UPDATE executions SET workflow_id = 'no-such-workflow' WHERE id = 4", expect=Moved(), engine=True)


def test_an_orphan_under_a_foreign_key_only_the_history_declares_is_held_up_front(tmp_path: Path, pg_url: str) -> None:
    source = build(tmp_path / "odd.db", UNREFERENCED)
    refused = migrate(source, pg_url, tmp_path / "refused", UNREFERENCED)
    # it used to pass the pre-flight, copy, and fail building executions_workflow_id_fkey (exit 1)
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert "first executions.workflow_id at key 4: points to no workflows row" in " ".join(refused.stderr.split())
    assert tables_in(pg_url) == []
    moved = migrate(source, pg_url, tmp_path / "state", UNREFERENCED, "--on-orphans", "quarantine")
    assert moved.returncode == 0, moved.stderr[-3000:]
    run = the_run(tmp_path / "state")
    assert quarantined(run) == {"executions": 1} and rows_lost(source, pg_url, run) == 0


# The engine's tables as sqlite3's .import makes them: no PRIMARY KEY, no UNIQUE; the target's schema has both.
UNKEYED = ("ALTER TABLE executions RENAME TO executions_made_here", "DROP INDEX ix_executions_workflow_id",
           "DROP INDEX ix_executions_status",
           "CREATE TABLE executions (id INTEGER NOT NULL, workflow_id VARCHAR NOT NULL REFERENCES workflows (id), "
           "status VARCHAR NOT NULL, state JSON, error TEXT, started_at DATETIME, completed_at DATETIME)",
           "INSERT INTO executions SELECT * FROM executions_made_here", "DROP TABLE executions_made_here",
           "ALTER TABLE users RENAME TO users_made_here",
           "CREATE TABLE users (id VARCHAR NOT NULL, username VARCHAR NOT NULL, email VARCHAR, hashed_password VARCHAR, "
           "is_active BOOLEAN, is_admin BOOLEAN, created_at DATETIME)",
           "INSERT INTO users SELECT * FROM users_made_here", "DROP TABLE users_made_here")


def test_engine_tables_without_their_keys_move_by_the_historys_and_repeats_are_refused_up_front(
        tmp_path: Path, pg_url: str) -> None:
    repeats = odd("repeats", *UNKEYED, "INSERT INTO executions SELECT * FROM executions WHERE id = 4",
                  "UPDATE users SET username = 'same'", expect=Moved(), engine=True)
    refused = migrate(build(tmp_path / "repeated.db", repeats), pg_url, tmp_path / "refused", repeats)
    # it used to pass the pre-flight, and the copy stopped at the target's key: duplicate key value (exit 1)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: pre-flight check 'keys' failed: users.username holds same in 2 rows; executions.id holds 4 in 2 "
        "rows: the file's table does not hold those columns unique (another program made it), the engine's "
        "schema does: remove the repeats in a copy of the source and move the copy")
    assert tables_in(pg_url) == []
    unkeyed = odd("no keys", *UNKEYED, expect=Moved(), engine=True)
    source = build(tmp_path / "odd.db", unkeyed)
    moved = migrate(source, pg_url, tmp_path / "state", unkeyed)
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert rows_lost(source, pg_url, the_run(tmp_path / "state")) == 0


# --- the verification does not trust the copy's rules ---


def _ignores_the_offset(value):
    """A wrong timestamp rule: the offset is dropped instead of applied (10:00+02:00 stays 10:00)."""
    if isinstance(value, str) and value.strip()[-6:-5] in "+-" and value.strip()[-3:-2] == ":":
        return datetime.fromisoformat(value.strip()[:-6]), normalize.TS_OFFSET
    return right(value)


right = normalize._CONVERTERS[normalize.TIMESTAMP]


@pytest.fixture
def wrong_timestamp_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy's timestamp rule, planted wrong for this test (in this process only)."""
    monkeypatch.setitem(normalize._CONVERTERS, normalize.TIMESTAMP, _ignores_the_offset)


SPELLED = odd("offsets", "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME)",
              "INSERT INTO t VALUES (1, '2024-01-01 10:00:00.000000'), (2, '2024-01-01T10:00:00+02:00'), "
              "(3, '2024-01-01T10:00:00Z')", expect=Moved())


def test_a_wrong_conversion_rule_shows_as_a_difference(wrong_timestamp_rule: None, tmp_path: Path,
                                                      pg_url: str) -> None:
    source, target = build(tmp_path / "odd.db", SPELLED), parse_url(pg_url)
    options = MoveOptions(parse_url(f"sqlite:///{source}"), target, state_dir=tmp_path / "state", yes=True,
                          reflected=True)
    # The real scan and copy, with the wrong rule, to a real PostgreSQL: the move's own verification stops it...
    with pytest.raises(StepError, match=r"^differences found: t differs: .*verify\.md lists them"):
        asyncio.run(run_move(options))
    assert fetch(pg_url, "SELECT at FROM t WHERE id = 2")[0][0] == datetime(2024, 1, 1, 10)  # the wrong value
    report = asyncio.run(verify(options.source, target))  # ...and so does a verification on its own
    (table,) = report.tables
    assert (table.table, table.different, table.equal) == ("t", 1, 2)
    (diff,) = table.diffs
    assert diff.pk == 2 and [(c.column, c.source, c.target) for c in diff.columns] == [
        ("at", "2024-01-01 08:00:00.000000", "2024-01-01 10:00:00.000000")]

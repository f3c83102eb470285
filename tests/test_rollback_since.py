"""Rollback keeps what the engine wrote since the run: both journeys, both engines, through the real `wizard`.

The engine's writes are plain SQL on the database it was handed (inserts, updates, deletes); what the
rollback leaves is read back directly from the database the engine points at afterwards, never through
the wizard's own comparison.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pymysql
import pytest
from sqlalchemy.engine import make_url

from engine_data import ENGINE_WRITES_PG, build_1_0_0, build_pg_1_0_0, columns, engine_rows, read, revision, write
from move_helpers import execute, fetch, pg, sha256, tables_in
from test_cli_errors import wizard
from wizard import sample
from wizard.rollback import carry_back, untouched
from wizard.db import quote
from wizard.errors import StepError
from wizard.journal import load_run
from wizard.move.pgnames import pg_name
from wizard.rollback import run as rollback_run_module
from wizard.rollback.run import rollback_run
from wizard.schema import head
from wizard.urls import parse_url

def _folder(tmp_path: Path, executions: int = 400) -> Path:
    sample.build(tmp_path / "engine.db", executions=executions, workflows=20, users=5)
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite+aiosqlite:///engine.db\nOPENAI_API_KEY=sk-test1234567890abcd\n")
    return tmp_path


def _move(folder: Path, pg_url: str, *extra: str) -> None:
    moved = wizard("migrate", "--source", "sqlite:///engine.db", "--target", pg_url, "--env-file", ".env", "--yes",
                   *extra, cwd=folder)
    assert moved.returncode == 0, moved.stderr


SCHEMA_CHANGES = {
    # a newer engine's own migration: a column, and a revision this wizard's history does not have
    "a column added": (["ALTER TABLE executions ADD COLUMN priority integer"],
                       "is at revision 0004 by its alembic_version, but its tables are not that revision's: "
                       "executions has extra priority"),
    "a revision it does not know": (["ALTER TABLE executions ADD COLUMN priority integer",
                                     "UPDATE alembic_version SET version_num = '0005'"],
                                    "records revision 0005, which this wizard's history does not know"),
}


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
@pytest.mark.parametrize("change", SCHEMA_CHANGES)
def test_rows_written_since_a_newer_engine_migrated_the_target_are_refused_up_front_or_saved(
        change: str, pg_url: str, tmp_path: Path) -> None:
    """After the move the engine upgraded itself and migrated the target (a column of its own), then wrote rows
    with it. Carried back, the rows lost the column's values, or the downgrade ended in a traceback (revision
    0005 unknown), or the file differed after the carry-back: refused, said on the confirmation, nothing changed;
    --restore-backup saves them, the new column's values too."""
    statements, why = SCHEMA_CHANGES[change]
    folder = _folder(tmp_path, executions=50)
    _move(folder, pg_url, "--to", "head")
    execute(pg_url, *statements, "INSERT INTO executions (id, workflow_id, status, priority) "
                                 "SELECT 900, workflow_id, 'queued', 7 FROM executions WHERE id = 1")
    file_before, env_after, target_before = sha256(folder / "engine.db"), (folder / ".env").read_bytes(), \
        fetch(pg_url, "SELECT id, priority FROM executions ORDER BY id")
    said = (f"{why}: the engine changed its schema since the move, and rows written since may hold values the "
            f"source has no column for; nothing was changed: take the database back to the revision the move left "
            f"with the engine's own migrations, then roll back again, or roll back with --restore-backup")

    shown = wizard("rollback", "--last", cwd=folder)  # no terminal to confirm on: shows what would happen
    assert said in " ".join(shown.stdout.split()), shown.stdout
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    assert said in refused.stderr.strip().splitlines()[-1]
    assert sha256(folder / "engine.db") == file_before and (folder / ".env").read_bytes() == env_after
    assert fetch(pg_url, "SELECT id, priority FROM executions ORDER BY id") == target_before

    saved = wizard("rollback", "--last", "--yes", "--restore-backup", cwd=folder)
    assert saved.returncode == 0, saved.stderr
    (run_folder,) = (folder / ".wizard" / "runs").iterdir()
    rows = [json.loads(line) for line in (run_folder / "written-since" / "executions.jsonl").read_text().splitlines()]
    assert {"id": 900, "priority": 7}.items() <= next(r["row"] for r in rows if r["pk"] == [900]).items()
    assert tables_in(pg_url) == []


def test_a_move_rolled_back_after_the_engine_wrote_to_the_target_keeps_every_row(pg_url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    env_before = (folder / ".env").read_bytes()
    _move(folder, pg_url)
    execute(pg_url, *ENGINE_WRITES_PG)
    on_target = engine_rows(pg_url)
    file_before = sha256(folder / "engine.db")

    shown = wizard("rollback", "--last", cwd=folder)  # no terminal to confirm on: shows, refuses, changes nothing
    assert shown.returncode == 3, shown.stderr
    assert shown.stderr.startswith("> reading every row of the database run "), shown.stderr  # before the wait
    text = " ".join(shown.stdout.split())
    assert "since the move finished, database " in text
    assert "holds: executions +50, 2 removed, users 1 changed, workflows 3 changed" in text
    assert "the 56 row(s) written since are carried back into the SQLite file" in text
    assert sha256(folder / "engine.db") == file_before and "executions" in tables_in(pg_url)

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "carried 56 row(s) written since the move back into" in " ".join(done.stdout.split())
    assert (folder / ".env").read_bytes() == env_before
    assert tables_in(pg_url) == []
    assert engine_rows(f"sqlite:///{folder / 'engine.db'}") == on_target


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_a_row_changed_since_in_a_table_with_a_column_named_t_is_carried_back(pg_url: str, tmp_path: Path) -> None:
    """The end state's digest is of the whole row, whatever the columns are called: read as `t::text` under the
    alias `t`, a column named t stood for the row, and a change to the other columns went unseen."""
    folder = _folder(tmp_path, executions=20)
    db = sqlite3.connect(folder / "engine.db")
    db.execute('CREATE TABLE notes (id INTEGER PRIMARY KEY, t TEXT, "T.*" TEXT, body TEXT)')
    db.executemany("INSERT INTO notes VALUES (?, ?, ?, ?)", [(1, "same", "x", "first"), (2, "same", "y", "second")])
    db.commit()
    db.close()
    _move(folder, pg_url)
    execute(pg_url, "UPDATE notes SET body = 'written since' WHERE id = 2")

    shown = wizard("rollback", "--last", cwd=folder)
    assert shown.returncode == 3, shown.stderr
    assert "holds: notes 1 changed" in " ".join(shown.stdout.split())
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute("SELECT * FROM notes ORDER BY id").fetchall() == [(1, "same", "x", "first"),
                                                                        (2, "same", "y", "written since")]
    db.close()


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_rows_written_since_in_a_table_named_wizard_something_are_carried_back(pg_url: str, tmp_path: Path) -> None:
    """Only the move's own bookkeeping is left out of the end state, not every name that begins with wizard_: a
    table of the engine's file called so is moved with it, and its rows written since were not seen."""
    folder = _folder(tmp_path, executions=20)
    db = sqlite3.connect(folder / "engine.db")
    db.execute("CREATE TABLE wizard_notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO wizard_notes VALUES (1, 'first')")
    db.commit()
    db.close()
    _move(folder, pg_url)
    execute(pg_url, "UPDATE wizard_notes SET body = 'changed since' WHERE id = 1",
            "INSERT INTO wizard_notes VALUES (2, 'added since')")

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "wizard_notes +1, 1 changed" in " ".join(done.stdout.split())
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute("SELECT * FROM wizard_notes ORDER BY id").fetchall() == [(1, "changed since"), (2, "added since")]
    db.close()


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_rows_written_since_under_names_postgresql_cut_are_carried_back(pg_url: str, tmp_path: Path) -> None:
    """A name over 63 bytes has another in the target (wizard.move.pgnames): the carry-back looked for the
    target's table name in the file (a crash) and for the file's column names in the target (a crash)."""
    long = "a_name_that_goes_on_and_on_past_what_postgresql_keeps_in_one_identifier"
    folder = _folder(tmp_path, executions=20)
    db = sqlite3.connect(folder / "engine.db")
    db.execute(f"CREATE TABLE {long}_table (id INTEGER PRIMARY KEY, {long} TEXT)")
    db.execute(f"INSERT INTO {long}_table VALUES (1, 'moved')")
    db.commit()
    db.close()
    _move(folder, pg_url)
    table, column = quote(pg_name(f"{long}_table")), quote(pg_name(long))
    execute(pg_url, f"UPDATE {table} SET {column} = 'changed since'", f"INSERT INTO {table} VALUES (2, 'added since')")

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute(f"SELECT * FROM {long}_table ORDER BY id").fetchall() == [(1, "changed since"),
                                                                                (2, "added since")]
    db.close()


def test_a_move_to_head_carries_rows_back_at_the_files_revision_and_saves_the_tags(pg_url: str,
                                                                                  tmp_path: Path) -> None:
    folder = _folder(tmp_path, executions=200)
    _move(folder, pg_url, "--to", "head")
    execute(pg_url, "INSERT INTO executions (workflow_id, status, state) SELECT id, 'running', "
                    "'{\"nodes\": [{\"id\": \"a\", \"x\": 1}, {\"id\": \"b\", \"value\": 2}]}' FROM workflows LIMIT 1",
            "UPDATE workflows SET tags = '[\"prod\"]' WHERE id = (SELECT min(id) FROM workflows)")
    tagged = fetch(pg_url, "SELECT id FROM workflows WHERE tags::text = '[\"prod\"]'")[0][0]

    # The confirmation (here the plan without a terminal, the TUI's Ctrl+R alike) says what the downgrade drops.
    said = (f"the target is downgraded from {head()} to 0001 (the source's revision), first saving workflows.tags "
            f"(dropped by the downgrade, not carried back) to ")
    shown = wizard("rollback", "--last", cwd=folder).stdout
    assert "".join(said.split()) in "".join(shown.split()), shown  # the table wraps it at spaces and separators
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    state = db.execute("SELECT state FROM executions WHERE id = 201").fetchone()[0]
    assert json.loads(state) == {"nodes": {"a": {"x": 1}, "b": 2}}  # 0004's downgrade: the array back to an object
    assert "tags" not in [r[1] for r in db.execute("PRAGMA table_info(workflows)")]
    db.close()
    (run_folder,) = (folder / ".wizard" / "runs").iterdir()
    saved = [json.loads(line) for line in (run_folder / "dropped" / "workflows.jsonl").read_text().splitlines()]
    assert {"pk": [tagged], "row": {"tags": ["prod"]}} in saved
    assert oct((run_folder / "dropped" / "workflows.jsonl").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_upgrade_rolled_back_after_the_engine_wrote_keeps_every_row(engine: str, request: pytest.FixtureRequest,
                                                                      tmp_path: Path) -> None:
    path = sample.build(tmp_path / "engine.db", executions=300, workflows=20, users=5)
    url = f"sqlite:///{path}" if engine == "sqlite" else build_pg_1_0_0(request.getfixturevalue("pg_url"), path)
    up = wizard("upgrade", "--db", url, "--yes", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    write(url, "INSERT INTO executions (id, workflow_id, status, state) SELECT 5000 + id, workflow_id, 'completed', "
               "'{\"nodes\": [{\"id\": \"n\", \"ok\": true}]}' FROM executions WHERE id <= 50")
    write(url, "UPDATE executions SET status = 'cancelled' WHERE id = 3")
    write(url, "DELETE FROM executions WHERE id = 4")
    write(url, "UPDATE workflows SET tags = '[\"kept\"]' WHERE id = (SELECT min(id) FROM workflows)")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "holds: executions +50, 1 changed, 1 removed, workflows 1 changed" in said
    assert "the 53 row(s) written since are kept: undone by the revisions' downgrades, not the backup" in said
    assert revision(url) is None and "tags" not in columns(url, "workflows")  # 1.0.0 again
    rows = {r[0]: (r[1], json.loads(r[2]) if isinstance(r[2], str) else r[2])
            for r in read(url, "SELECT id, status, state FROM executions")}
    assert len(rows) == 300 + 50 - 1 and 4 not in rows and rows[3][0] == "cancelled"
    assert all(rows[5000 + i] == ("completed", {"nodes": {"n": {"ok": True}}}) for i in range(1, 51))
    (run_folder,) = (tmp_path / ".wizard" / "runs").iterdir()
    saved = [json.loads(line) for line in (run_folder / "dropped" / "workflows.jsonl").read_text().splitlines()]
    assert len(saved) == 20 and sum(json.loads(s["row"]["tags"]) == ["kept"] if isinstance(s["row"]["tags"], str)
                                    else s["row"]["tags"] == ["kept"] for s in saved) == 1


def test_node_arrays_0004_cannot_have_written_are_kept_whole_by_its_downgrade(tmp_path: Path) -> None:
    """0004's downgrade turns state.nodes back into an object keyed by id: an array the engine wrote at 0004 with
    an id twice lost a node to the other, a number for an id became a string, and a list for one stopped the
    rollback with a traceback. An object cannot hold those, so the array stays as the engine wrote it."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=5, users=2)
    url = f"sqlite:///{path}"
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    states = ['{"nodes": [{"id": "a", "x": 1}, {"id": "a", "x": 2}]}', '{"nodes": [{"id": 7, "x": 1}]}',
              '{"nodes": [{"id": ["a"], "x": 1}]}', '{"nodes": [{"id": "a", "x": 1}, {"id": "b", "value": 2}]}']
    for n, state in enumerate(states):
        write(url, f"INSERT INTO executions (id, workflow_id, status, state) SELECT {901 + n}, workflow_id, 'x', "
                   f"'{state}' FROM executions LIMIT 1")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert revision(url) is None
    kept = [json.loads(r[0]) for r in read(url, "SELECT state FROM executions WHERE id > 900 ORDER BY id")]
    assert kept == [json.loads(s) for s in states[:3]] + [{"nodes": {"a": {"x": 1}, "b": 2}}]


def test_an_upgrade_rolled_back_keeps_the_operators_view_trigger_and_index_on_workflows(tmp_path: Path) -> None:
    """0002's downgrade copied workflows and renamed the copy (Alembic's batch mode): SQLite refused the rename
    while a view named the table (a traceback, nothing rolled back), and the copy would have dropped the
    triggers on it. SQLite drops the column in place instead: the operator's objects stay, word for word."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=5, users=2)
    url = f"sqlite:///{path}"
    own = ["CREATE INDEX my_names ON workflows (name)",
           "CREATE TABLE audit (id INTEGER PRIMARY KEY, workflow TEXT)",
           "CREATE TRIGGER audited AFTER UPDATE OF name ON workflows BEGIN "
           "INSERT INTO audit (workflow) VALUES (new.id); END",
           "CREATE VIEW public_workflows AS SELECT id, name FROM workflows WHERE is_public = 1"]
    for statement in own:
        write(url, statement)
    objects = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    before = read(url, objects)
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    write(url, "UPDATE workflows SET name = 'renamed since' WHERE id = (SELECT min(id) FROM workflows)")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert revision(url) is None and "tags" not in columns(url, "workflows")
    assert read(url, objects) == before  # the engine's tables as 1.0.0 made them, and the operator's objects
    assert read(url, "SELECT count(*) FROM workflows WHERE name = 'renamed since'") == [(1,)]
    write(url, "UPDATE workflows SET name = 'after' WHERE name = 'renamed since'")
    assert read(url, "SELECT count(*) FROM audit") == [(2,)]  # the engine's rename, then this one: still fires
    assert read(url, "SELECT count(*) FROM public_workflows") == read(url, "SELECT count(*) FROM workflows "
                                                                             "WHERE is_public = 1")


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_view_on_the_column_a_downgrade_drops_stops_the_rollback_in_one_line_then_it_goes_on(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A view made since the upgrade names workflows.tags, which 0002's downgrade drops: PostgreSQL and SQLite
    refuse the drop. That was a traceback; it is one line naming the view, nothing changed, and once the
    operator drops the view the same command finishes the rollback, keeping the row written since."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=5, users=2)
    url = f"sqlite:///{path}" if engine == "sqlite" else build_pg_1_0_0(request.getfixturevalue("pg_url"), path)
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    write(url, "CREATE VIEW tagged AS SELECT id, tags FROM workflows")
    write(url, "UPDATE workflows SET name = 'renamed since' WHERE id = (SELECT min(id) FROM workflows)")

    stopped = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr, stopped.stderr
    (error,) = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: the downgrade of ") and " to 0001 stopped: " in error and "tagged" in error
    assert error.endswith("nothing was changed (one transaction); drop or change what uses a column the downgrade "
                          "removes, then roll back again")
    assert revision(url) == "0004" and "tags" in columns(url, "workflows")

    write(url, "DROP VIEW tagged")
    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert revision(url) is None and "tags" not in columns(url, "workflows")
    assert read(url, "SELECT count(*) FROM workflows WHERE name = 'renamed since'") == [(1,)]


def test_nodes_whose_values_carry_another_id_are_left_as_they_are_by_0004(tmp_path: Path) -> None:
    """0004 makes state.nodes {key: value} an array of {"id": key, **value}: a value with an id of its own, not
    its key, kept that id and lost the key (and its downgrade then keyed the node by the wrong one). Such a state
    is left as it is, up and down; a value whose id is its key is turned as any other."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=5, users=2)
    url = f"sqlite:///{path}"
    states = ['{"nodes": {"a": {"id": "b", "x": 1}, "c": {"x": 2}}}', '{"nodes": {"a": {"id": "a", "x": 1}}}']
    for n, state in enumerate(states):
        write(url, f"INSERT INTO executions (id, workflow_id, status, state) SELECT {901 + n}, workflow_id, 'x', "
                   f"'{state}' FROM executions LIMIT 1")
    before = sha256(path)
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    upgraded = [json.loads(r[0]) for r in read(url, "SELECT state FROM executions WHERE id > 900 ORDER BY id")]
    assert upgraded == [json.loads(states[0]), {"nodes": [{"id": "a", "x": 1}]}]
    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sha256(path) == before


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_a_date_written_since_that_no_file_spells_is_refused_with_nothing_changed(pg_url: str,
                                                                                  tmp_path: Path) -> None:
    """PostgreSQL takes BC, infinity and years past 9999; the driver reads BC with a traceback and infinity as
    9999-12-31 23:59:59.999999. The rollback refuses before anything changes, naming the rows, and says so on
    the plan it shows first."""
    folder = _folder(tmp_path, executions=20)
    _move(folder, pg_url)
    env_after = (folder / ".env").read_bytes()
    execute(pg_url, "INSERT INTO executions (id, workflow_id, status, started_at) SELECT 901, workflow_id, 'x', "
                    "'0044-03-15 12:00 BC' FROM executions LIMIT 1",
            "INSERT INTO executions (id, workflow_id, status, completed_at) SELECT 902, workflow_id, 'x', "
            "'infinity' FROM executions LIMIT 1",
            "UPDATE executions SET started_at = '10000-01-01' WHERE id = 3")
    file_before = sha256(folder / "engine.db")
    for args in (["--last"], ["--last", "--yes"]):
        refused = wizard("rollback", *args, cwd=folder)
        assert refused.returncode == 3, refused.stderr
        said = " ".join(refused.stderr.split()) + " ".join(refused.stdout.split())
        assert "executions [3], [901], [902]: a date or time written since is infinite, BC or past the year 9999" in said
        assert "Traceback" not in said
    assert sha256(folder / "engine.db") == file_before and (folder / ".env").read_bytes() == env_after
    assert fetch(pg_url, "SELECT count(*) FROM executions WHERE id > 900")[0][0] == 2


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_a_number_written_since_that_the_file_cannot_hold_is_refused_with_nothing_changed(pg_url: str,
                                                                                         tmp_path: Path) -> None:
    """A table of the operator's with a REAL and a NUMERIC column, moved as it is: the engine's side writes a NaN
    (SQLite stores NULL) and numerics with more digits than the column's affinity keeps (a REAL's 17, an integer
    past 64 bits). Carried back, the proof found the rows different, restored the file and stopped with exit 1
    naming only the keys; now refused before anything changes (exit 3), naming column, key and what the file would
    keep, on the plan first; once set to numbers the file holds, the rollback carries them."""
    folder = _folder(tmp_path, executions=20)
    db = sqlite3.connect(folder / "engine.db")
    db.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, r REAL, n NUMERIC)")
    db.executemany("INSERT INTO readings VALUES (?, ?, ?)", [(1, 1.5, 2), (2, 0.25, 3), (3, -1.0, 4)])
    db.commit()
    db.close()
    _move(folder, pg_url)
    env_after = (folder / ".env").read_bytes()
    execute(pg_url, "UPDATE readings SET r = 'NaN' WHERE id = 1",
            "UPDATE readings SET n = 12345678901234567890.12345678901234567890 WHERE id = 2",
            "INSERT INTO readings VALUES (4, 1e308, 9223372036854775808)",
            "INSERT INTO readings VALUES (5, -0.5, 1.10)")  # a REAL keeps 1.1: no refusal for it
    file_before = sha256(folder / "engine.db")
    for args in (["--last"], ["--last", "--yes"]):
        refused = wizard("rollback", *args, cwd=folder)
        assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
        said = " ".join(refused.stderr.split()) + " ".join(refused.stdout.split())
        assert ("readings.r [1]: NaN, readings.n [2]: 12345678901234567890.12345678901234567890 (the file's column "
                "keeps 1.2345678901234567e+19), readings.n [4]: 9223372036854775808 (the file's column keeps "
                "9.223372036854776e+18): a number written since that the SQLite file cannot hold as the target does; "
                "nothing was changed") in said, said
    assert sha256(folder / "engine.db") == file_before and (folder / ".env").read_bytes() == env_after
    assert list((folder / ".wizard" / "runs").glob("*/before-carry-back")) == []  # refused before its backup

    execute(pg_url, "UPDATE readings SET r = NULL WHERE id = 1", "UPDATE readings SET n = 12345.5 WHERE id = 2",
            "UPDATE readings SET n = 922337203685477580 WHERE id = 4")
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute("SELECT * FROM readings ORDER BY id").fetchall() == [
        (1, None, 2), (2, 0.25, 12345.5), (3, -1.0, 4), (4, 1e308, 922337203685477580), (5, -0.5, 1.1)]
    db.close()


def test_an_upgrade_with_nothing_written_since_takes_the_fast_path(tmp_path: Path) -> None:
    path = sample.build(tmp_path / "engine.db", executions=100, workflows=5, users=2)
    before = sha256(path)
    assert wizard("upgrade", "--db", f"sqlite:///{path}", "--yes", cwd=tmp_path).returncode == 0
    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"nothing was written to {path} since the upgrade finished" in " ".join(done.stdout.split())
    assert sha256(path) == before


def test_restore_backup_saves_the_rows_written_since_before_losing_them(pg_url: str, tmp_path: Path) -> None:
    path = sample.build(tmp_path / "engine.db", executions=200, workflows=5, users=2)
    build_pg_1_0_0(pg_url, path)
    assert wizard("upgrade", "--db", pg_url, "--yes", cwd=tmp_path).returncode == 0
    write(pg_url, "INSERT INTO executions (id, workflow_id, status) SELECT 1000 + id, workflow_id, 'x' "
                  "FROM executions WHERE id <= 10")
    done = wizard("rollback", "--last", "--yes", "--restore-backup", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "the 10 row(s) written since are saved to" in said and "the database loses them" in said
    assert read(pg_url, "SELECT count(*) FROM executions")[0][0] == 200
    (run_folder,) = (tmp_path / ".wizard" / "runs").iterdir()
    saved = [json.loads(line) for line in (run_folder / "written-since" / "executions.jsonl").read_text().splitlines()]
    assert sorted(s["pk"][0] for s in saved) == list(range(1001, 1011)) and all(s["row"]["status"] == "x" for s in saved)


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_restore_backup_saves_rows_of_tables_named_with_a_colon_or_a_slash(pg_url: str, tmp_path: Path) -> None:
    """The rows are read by a statement that names the table (':x' was taken for a parameter: the rollback
    failed) and saved to a file named after it ('../journal' overwrote the run's journal)."""
    folder = _folder(tmp_path, executions=20)
    db = sqlite3.connect(folder / "engine.db")
    for name in (":x", "../journal"):
        db.execute(f"CREATE TABLE {quote(name)} (id INTEGER PRIMARY KEY, v TEXT)")
        db.execute(f"INSERT INTO {quote(name)} VALUES (1, 'moved')")
    db.commit()
    db.close()
    _move(folder, pg_url)
    execute(pg_url, """INSERT INTO ":x" VALUES (2, 'since')""", """UPDATE "../journal" SET v = 'since'""")

    done = wizard("rollback", "--last", "--yes", "--restore-backup", cwd=folder)
    assert done.returncode == 0, done.stderr
    (run_folder,) = (folder / ".wizard" / "runs").iterdir()
    saved = {path.name: [json.loads(line) for line in path.read_text().splitlines()]
             for path in (run_folder / "written-since").iterdir()}
    assert saved == {":x.jsonl": [{"pk": [2], "row": {"id": 2, "v": "since"}}],
                     "..%2Fjournal.jsonl": [{"pk": [1], "row": {"id": 1, "v": "since"}}]}
    assert all("kind" in json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines())


def test_a_rollback_is_refused_while_the_engine_is_connected(pg_url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path, executions=100)
    _move(folder, pg_url)
    env_after = (folder / ".env").read_bytes()

    async def engine_connected() -> tuple[int, str]:
        conn = await asyncpg.connect(pg(pg_url), server_settings={"application_name": "engine-worker"})
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            refused = await asyncio.to_thread(wizard, "rollback", "--last", "--yes", cwd=folder)
            return pid, refused
        finally:
            await conn.close()

    pid, refused = asyncio.run(engine_connected())
    assert refused.returncode == 3, refused.stderr
    assert f"pid {pid} (engine-worker, user " in refused.stderr and "stop the engine" in refused.stderr
    assert (folder / ".env").read_bytes() == env_after and "executions" in tables_in(pg_url)
    assert wizard("rollback", "--last", "--yes", cwd=folder).returncode == 0  # the engine stopped: it goes


def test_a_source_file_written_since_the_move_too_is_refused_with_nothing_changed(pg_url: str,
                                                                                tmp_path: Path) -> None:
    folder = _folder(tmp_path, executions=100)
    _move(folder, pg_url)
    execute(pg_url, *ENGINE_WRITES_PG)
    db = sqlite3.connect(folder / "engine.db")
    db.execute("UPDATE executions SET status = 'edited by hand' WHERE id = 9")
    db.commit()
    db.close()
    file_before, env_after = sha256(folder / "engine.db"), (folder / ".env").read_bytes()
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3, refused.stderr
    assert "was written since the move too" in refused.stderr and "executions" in refused.stderr
    assert sha256(folder / "engine.db") == file_before and (folder / ".env").read_bytes() == env_after
    assert "executions" in tables_in(pg_url)


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_an_id_the_target_handed_out_again_is_refused(pg_url: str, tmp_path: Path) -> None:
    """A row the move put in quarantine keeps its id in the file; the engine writes that id to the target (the
    sequence goes past it since the move sets it past every id of the file: the engine gave the id itself)."""
    folder = _folder(tmp_path, executions=100)
    db = sqlite3.connect(folder / "engine.db")
    db.execute("INSERT INTO executions (id, workflow_id, status) VALUES (101, 'no-such-workflow', 'pending')")
    db.commit()
    db.close()
    _move(folder, pg_url, "--on-orphans", "quarantine")
    execute(pg_url, "INSERT INTO executions (id, workflow_id, status) SELECT 101, workflow_id, 'new' FROM executions "
                    "LIMIT 1")
    assert fetch(pg_url, "SELECT max(id) FROM executions")[0][0] == 101
    file_before = sha256(folder / "engine.db")
    refused = wizard("rollback", "--last", "--yes", cwd=folder)
    assert refused.returncode == 3, refused.stderr
    assert "the target handed out keys the SQLite file holds already (executions [101]" in refused.stderr
    assert sha256(folder / "engine.db") == file_before and "executions" in tables_in(pg_url)

    # Refused with nothing undone, the rollback has not begun: the next one measures again. It went on with the
    # refused one's measurement instead, and stopped at "changed while the rollback read it" whatever was done.
    execute(pg_url, "UPDATE executions SET id = 102 WHERE id = 101")
    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute("SELECT status FROM executions WHERE id IN (101, 102) ORDER BY id").fetchall() == [
        ("pending",), ("new",)]
    db.close()


def test_a_wrong_carry_back_rule_is_caught_and_the_file_restored(pg_url: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof is the row-level verification, not the carry-back's own rule: plant a wrong rule, see it fail."""
    folder = _folder(tmp_path, executions=100)
    _move(folder, pg_url)
    execute(pg_url, *ENGINE_WRITES_PG)
    file_before = sha256(folder / "engine.db")
    right = carry_back.sqlite_value
    monkeypatch.setattr(carry_back, "sqlite_value",
                        lambda v: right(v + dt.timedelta(hours=1) if isinstance(v, dt.datetime) else v))
    run = load_run(folder / ".wizard", last=True)
    with pytest.raises(StepError, match="it differs from the target .* the file was restored from"):
        asyncio.run(rollback_run(run, lambda e: None, parse_url(pg_url), folder / ".env"))
    assert sha256(folder / "engine.db") == file_before
    assert "executions" in tables_in(pg_url) and "OPENAI_API_KEY" not in (folder / ".env").read_text()


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_usernames_swapped_and_reused_since_are_carried_back(pg_url: str, tmp_path: Path) -> None:
    """The engine wrote them one at a time, each leaving users.username unique; carried back one row at a time
    in another order, two usernames swapped (or one freed and taken) met the file's unique index mid-write."""
    folder = _folder(tmp_path, executions=20)
    _move(folder, pg_url)
    execute(pg_url, "UPDATE users SET username = 'swapping' WHERE username = 'user0'",
            "UPDATE users SET username = 'user0' WHERE username = 'user1'",
            "UPDATE users SET username = 'user1' WHERE username = 'swapping'",
            "UPDATE users SET username = 'user2 renamed' WHERE username = 'user2'",
            "INSERT INTO users (id, username) VALUES ('new', 'user2')")
    on_target = sorted(fetch(pg_url, "SELECT id, username FROM users"))

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert sorted(db.execute("SELECT id, username FROM users").fetchall()) == [tuple(r) for r in on_target]
    db.close()


@pytest.mark.slow  # an edge of the rollback, a whole move or upgrade each: `pytest -m slow` (CI runs it)
def test_timestamps_before_the_year_1000_are_carried_back_in_the_engines_spelling(pg_url: str, tmp_path: Path) -> None:
    """strftime's %Y does not pad the year on Linux: year 1 came back as '1-01-01 ...', which no reader takes."""
    folder = _folder(tmp_path, executions=20)
    _move(folder, pg_url)
    execute(pg_url, "INSERT INTO executions (id, workflow_id, status, started_at, completed_at) SELECT 1001, "
                    "workflow_id, 'x', '0001-01-01 00:00:00', '0999-12-31 23:59:59.999999' FROM executions LIMIT 1")

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute("SELECT started_at, completed_at FROM executions WHERE id = 1001").fetchone() == (
        "0001-01-01 00:00:00.000000", "0999-12-31 23:59:59.999999")
    db.close()


@pytest.mark.parametrize("write", ["changed", "removed"])
def test_the_settings_row_the_move_created_then_the_engine_wrote_is_carried_back(write: str, pg_url: str,
                                                                                   tmp_path: Path) -> None:
    """The source had no settings row for `anonymous`: the move created one in the target for OPENAI_API_KEY.
    The engine then changed it (a new key) or removed it. Measured against the end state it was 'changed' or
    'removed', and carried so the delete found no row in the file: the rollback stopped ("touched 0 rows", exit
    1). Now the engine's row is added to the file (or there is nothing to remove), and .env comes back."""
    folder = _folder(tmp_path, executions=20)
    db = sqlite3.connect(folder / "engine.db")
    db.execute("DELETE FROM settings")
    db.commit()
    db.close()
    env_before = (folder / ".env").read_bytes()
    _move(folder, pg_url)
    (row_id,) = fetch(pg_url, "SELECT id FROM settings WHERE user_id = 'anonymous'")[0]
    engine = '{"providers": [{"id": "openai", "apiKey": "sk-written-since-0000", "enabled": true}]}'
    execute(pg_url, f"UPDATE settings SET settings_data = '{engine}' WHERE id = {row_id}" if write == "changed"
            else f"DELETE FROM settings WHERE id = {row_id}")

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "sk-written-since" not in done.stdout + done.stderr
    assert (folder / ".env").read_bytes() == env_before
    assert tables_in(pg_url) == []
    db = sqlite3.connect(folder / "engine.db")
    kept = db.execute("SELECT id, user_id, settings_data FROM settings").fetchall()
    db.close()
    assert kept == ([(row_id, "anonymous", engine)] if write == "changed" else [])


@pytest.mark.parametrize("engine", ["sqlite", "postgresql", "mariadb"])
def test_an_upgrade_rolled_back_by_its_downgrades_gives_back_the_rows_nothing_wrote_since_byte_for_byte(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The engine's JSON spelled compactly, with "é" as itself, and a definition that had 0003's version before:
    after the upgrade, one row written since, the downgrades gave every other row back in json.dumps' spelling
    ('{"a": 1}', '\\u00e9') and without that version, so every row nobody wrote since differed from the database
    before the run (PostgreSQL's json keeps the text as written). Now they equal the backup's; the rows written
    since stay as the engine wrote them. On MariaDB (its JSON is text: '1.50' came back as '1.5') the run's
    mysqldump is restored beside the database and the rows put back after the last of its downgrades, each
    committed on its own."""
    path = sample.build(tmp_path / "engine.db", executions=30, workflows=5, users=3)
    if engine in ("sqlite", "mariadb"):
        url = f"sqlite:///{path}" if engine == "sqlite" else build_1_0_0(request.getfixturevalue("mysql_url"), path)
        db = sqlite3.connect(path) if engine == "sqlite" else _mysql_session(url)
        mark = "?" if engine == "sqlite" else "%s"
        for table, column in (("workflows", "definition"), ("executions", "state")):
            cur = db.cursor()
            cur.execute(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")
            for key, value in cur.fetchall():
                value = json.loads(value)
                value.update({"version": "1.0", "name": "café"} if table == "workflows" else {"note": "é"})
                spelled = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                cur.execute(f"UPDATE {table} SET {column} = {mark} WHERE id = {mark}",
                            (spelled.replace('"note"', '"x":1.50,"note"'), key))
        db.commit()
        db.close()
    else:  # jsonb's spelling, kept as text by json: its key order, "é" as itself
        url = build_pg_1_0_0(request.getfixturevalue("pg_url"), path)
        execute(url, "UPDATE executions SET state = jsonb_set(state::jsonb, '{note}', '\"é\"')::text::json "
                     "WHERE state IS NOT NULL",
                "UPDATE workflows SET definition = (definition::jsonb || '{\"version\": \"1.0\", "
                "\"name\": \"café\"}')::text::json")
    before = {t: _exact_rows(url, t) for t in ENGINE}
    assert "é" in before["executions"][0][1] and "u00e9" not in before["executions"][0][1]
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    write(url, "INSERT INTO executions (id, workflow_id, status) SELECT 900, workflow_id, 'new' FROM executions "
               "WHERE id = 1")
    write(url, "UPDATE executions SET error = 'written since' WHERE id = 2")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = {t: _exact_rows(url, t) for t in ENGINE}
    assert revision(url) is None
    for table in ENGINE:
        assert [r for r in after[table] if r[0] not in (2, 900)] == [r for r in before[table] if r[0] != 2], table
    written = {r[0]: r[1] for r in after["executions"] if r[0] in (2, 900)}
    assert "written since" in written[2] and "new" in written[900]
    said = " ".join(done.stdout.split())
    assert ("every row not written since equal to the backup's, value and type, in executions, settings, users, "
            "workflows (by primary key;") in said, said
    (run_folder,) = (tmp_path / ".wizard" / "runs").iterdir()
    assert not list(run_folder.glob("untouched*"))  # the dump's rows read for it (PostgreSQL) are not left behind
    if engine == "mariadb":  # nor the database the dump was restored into
        assert read(url, f"SHOW DATABASES LIKE '%{run_folder.name.replace('-', '_')}%'") == []


def _exact_rows(url: str, table: str) -> list[tuple]:
    """(id, the whole row exactly: SQLite's values with their types, PostgreSQL's row as text, MySQL's values as
    the server sends them), by id."""
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.split("///", 1)[1])
        try:
            return [(r[0], repr(r)) for r in db.execute(f"SELECT *, typeof(id) FROM {table} ORDER BY id")]
        finally:
            db.close()
    if url.startswith("mysql"):
        db = _mysql_session(url)
        try:
            with db.cursor() as cur:
                cur.execute(f"SELECT * FROM {table} ORDER BY id")
                return [(r[0], repr(r)) for r in cur.fetchall()]
        finally:
            db.close()
    return [tuple(r) for r in fetch(url, f"SELECT id, t::text FROM {table} t ORDER BY id")]


def _mysql_session(url: str) -> pymysql.connections.Connection:
    u = make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, charset="utf8mb4")


ENGINE = ("users", "workflows", "executions", "settings")


def test_after_a_carry_back_that_failed_and_restored_the_file_the_next_rollback_measures_again(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A carry-back whose check found a difference restores the file and undoes nothing else: .env still names
    the target, so the engine goes on writing to it. The next rollback went on with what the failed one had
    measured: every retry stopped ('changed while the rollback read it', or a difference), whatever the operator
    did. Now a failure that changed nothing is measured again, and the engine's later rows are carried too."""
    folder = _folder(tmp_path, executions=100)
    env_before = (folder / ".env").read_bytes()
    _move(folder, pg_url)
    execute(pg_url, *ENGINE_WRITES_PG)
    right = carry_back.sqlite_value
    monkeypatch.setattr(carry_back, "sqlite_value",
                        lambda v: right(v + dt.timedelta(hours=1) if isinstance(v, dt.datetime) else v))
    run = load_run(folder / ".wizard", last=True)
    with pytest.raises(StepError, match="the file was restored from"):
        asyncio.run(rollback_run(run, lambda e: None, parse_url(pg_url), folder / ".env"))
    monkeypatch.undo()
    # the engine, still on the target, writes again: a row it had added goes, another comes, one changes
    added = fetch(pg_url, "SELECT max(id) FROM executions")[0][0]
    execute(pg_url, f"DELETE FROM executions WHERE id = {added}",
            "INSERT INTO executions (id, workflow_id, status) SELECT 7777, workflow_id, 'after' FROM executions "
            "WHERE id = 1", "UPDATE executions SET status = 'changed after' WHERE id = 1")
    on_target = engine_rows(pg_url)

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert (folder / ".env").read_bytes() == env_before and tables_in(pg_url) == []
    assert engine_rows(f"sqlite:///{folder / 'engine.db'}") == on_target


def test_a_row_written_since_under_a_blob_key_is_not_taken_back_from_the_backup(tmp_path: Path) -> None:
    """The rows nothing wrote since are put back from the backup (wizard.rollback.untouched); a BLOB key is
    measured as its hex, so a row the engine changed under one looked untouched and got the backup's values."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=5, users=2)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE blobs (k BLOB PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO blobs VALUES (?, ?)", [(b"\x01\xff", "before"), (b"\x02", "kept")])
    db.commit()
    db.close()
    url = f"sqlite:///{path}"
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    write(url, "UPDATE blobs SET v = 'written since' WHERE k = x'01ff'")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "blobs (not its 2 row(s) under a BLOB key)" in " ".join(done.stdout.split())
    db = sqlite3.connect(path)
    assert db.execute("SELECT k, v FROM blobs ORDER BY k").fetchall() == [(b"\x01\xff", "written since"),
                                                                           (b"\x02", "kept")]
    db.close()


def test_the_sequence_goes_past_a_quarantined_id_so_the_engines_next_row_is_carried_back(pg_url: str,
                                                                                       tmp_path: Path) -> None:
    """The move set the sequence past the rows it copied only: the engine's first insert took the id of the row
    the move put in quarantine (still in the file), and the rollback could only refuse to carry it back ('the
    target handed out keys the SQLite file holds already', exit 3). The sequence now goes past every id of the
    file: the row gets the next id, and the rollback keeps both."""
    folder = _folder(tmp_path, executions=100)
    db = sqlite3.connect(folder / "engine.db")
    db.execute("INSERT INTO executions (id, workflow_id, status) VALUES (101, 'no-such-workflow', 'pending')")
    db.commit()
    db.close()
    _move(folder, pg_url, "--on-orphans", "quarantine")
    execute(pg_url, "INSERT INTO executions (workflow_id, status) SELECT workflow_id, 'new' FROM executions LIMIT 1")

    done = wizard("rollback", "--last", "--yes", cwd=folder)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(folder / "engine.db")
    assert db.execute("SELECT id, status FROM executions WHERE id > 100 ORDER BY id").fetchall() == [
        (101, "pending"), (102, "new")]
    db.close()


def test_text_that_is_not_utf8_written_since_an_upgrade_is_measured_and_kept(tmp_path: Path) -> None:
    """SQLite takes any bytes as TEXT; the engine wrote some that are not UTF-8 after the upgrade. Measuring what
    was written since decoded them with sqlite3's UTF-8 and stopped with a traceback (exit 1). Now the row counts
    as changed and the downgrade keeps it byte for byte."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=3, users=2)
    url = f"sqlite:///{path}"
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    write(url, "UPDATE executions SET error = CAST(x'66ff00fe' AS TEXT) WHERE id = 3")

    shown = wizard("rollback", "--last", cwd=tmp_path)
    assert "Traceback" not in shown.stderr and "holds: executions 1 changed" in " ".join(shown.stdout.split())
    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert revision(url) is None
    db = sqlite3.connect(path)
    assert db.execute("SELECT hex(error), typeof(error) FROM executions WHERE id = 3").fetchone() == ("66FF00FE",
                                                                                                       "text")
    db.close()


def _upgraded_with_notes(pg_url: str, tmp_path: Path, body: str, since: str) -> str:
    """A 1.0.0 engine database on PostgreSQL with the operator's table notes beside it, upgraded by the wizard; then
    a row the engine wrote, and `since` done to notes. Its URL."""
    path = sample.build(tmp_path / "engine.db", executions=20, workflows=3, users=2)
    url = build_pg_1_0_0(pg_url, path)
    execute(url, "CREATE TABLE notes (id int PRIMARY KEY, body text)", f"INSERT INTO notes VALUES (1, '{body}')")
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    execute(url, "INSERT INTO executions (id, workflow_id, status) SELECT 900, workflow_id, 'new' FROM executions "
                 "WHERE id = 1", since)
    return url


def test_a_table_dropped_since_a_postgresql_upgrade_does_not_stop_its_rollback(pg_url: str, tmp_path: Path) -> None:
    """The rows nothing wrote since are put back from the pg_dump table by table; a table the backup holds that
    was dropped since (the operator's) stopped the downgrade with asyncpg's UndefinedTableError traceback."""
    url = _upgraded_with_notes(pg_url, tmp_path, "a", "DROP TABLE notes")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert revision(url) is None and fetch(url, "SELECT status FROM executions WHERE id = 900")[0][0] == "new"


def test_a_column_retyped_since_a_postgresql_upgrade_leaves_its_table_out_of_the_put_back(pg_url: str,
                                                                                           tmp_path: Path) -> None:
    """The dump's text of a column the operator retyped since does not go into the column as it is now: the put-back
    stopped the rollback with asyncpg's traceback. That table is left as the downgrade leaves it, and the sentence
    names only the tables it checked."""
    url = _upgraded_with_notes(pg_url, tmp_path, "abc", "ALTER TABLE notes ALTER body TYPE int USING length(body)")

    done = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "value and type, in executions, settings, users, workflows (by primary key;" in said, said
    assert fetch(url, "SELECT id, body FROM notes")[0] == (1, 3)


@pytest.mark.parametrize("before", ["rows written since", "nothing written since"])
def test_rows_the_engine_writes_to_the_target_during_the_rollback_are_not_dropped_with_it(
        before: str, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal while the engine is connected is asked when the rollback begins: an engine that connects after
    it (a worker restarted, one still pointed at the target) and writes once the carry-back's proof has passed had
    its rows dropped with the tables, the rollback ending 'done' (found by a writer started once the journal said
    the carry-back was done: 8 rows inserted, none in the file). Now the drop locks the tables against writes, finds
    them as the proof left them (or, with nothing carried, as measured when it began), else keeps them, naming
    the rows."""
    folder = _folder(tmp_path, executions=100)
    _move(folder, pg_url)
    if before == "rows written since":
        execute(pg_url, *ENGINE_WRITES_PG)
    carried = fetch(pg_url, "SELECT max(id) FROM executions")[0][0]  # a row the carry-back carries (or had)
    real = rollback_run_module.restore_env

    def engine_writes_then_restore_env(*args):  # between the carry-back's proof and the drop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(execute, pg_url, f"UPDATE executions SET status = 'during' WHERE id = {carried}",
                        "INSERT INTO executions (id, workflow_id, status) SELECT 424242, workflow_id, 'during' "
                        "FROM executions WHERE id = 1").result()
        return real(*args)

    monkeypatch.setattr(rollback_run_module, "restore_env", engine_writes_then_restore_env)
    run = load_run(folder / ".wizard", last=True)
    with pytest.raises(StepError, match="was written during the rollback") as stopped:
        asyncio.run(rollback_run(run, lambda e: None, parse_url(pg_url), folder / ".env"))
    monkeypatch.undo()
    assert "executions +1, 1 changed; e.g. executions [424242], executions " in str(stopped.value)
    assert fetch(pg_url, "SELECT id FROM executions WHERE status = 'during' ORDER BY id") == [(carried,), (424242,)]

    again = wizard("rollback", "--last", "--yes", cwd=folder)  # the engine stopped: still not dropped, said again
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert "was written during the rollback" in again.stderr.strip().splitlines()[-1]
    assert len(fetch(pg_url, "SELECT id FROM executions WHERE status = 'during'")) == 2


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_row_the_engine_changes_during_an_upgrades_rollback_is_not_put_back_from_the_backup(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows put back from the backup are those not written since the rollback measured; a row the engine changed
    after that (it opened the database after the check that nothing had it open) was put back over, its change lost,
    the rollback ending 'done' and counting it as 'rewritten by the run' (found by an UPDATE planted before the
    downgrade's transaction). Now the downgrade's transaction, writes held off, measures again and stops with
    nothing changed; the next rollback measures again and keeps the row."""
    path = sample.build(tmp_path / "engine.db", executions=100, workflows=5, users=3)
    url = f"sqlite:///{path}" if engine == "sqlite" else build_pg_1_0_0(request.getfixturevalue("pg_url"), path)
    assert wizard("upgrade", "--db", url, "--yes", cwd=tmp_path).returncode == 0
    write(url, "UPDATE executions SET status = 'since' WHERE id = 1")  # rows written since: the downgrade's path
    user = read(url, "SELECT min(id) FROM users")[0][0]
    hooked = "attach" if engine == "sqlite" else "read_dump"  # what runs after the measure, before the transaction
    real = getattr(untouched, hooked)

    async def engine_writes_first(*args):
        with ThreadPoolExecutor(1) as pool:
            pool.submit(write, url, f"UPDATE users SET email = 'during@example.com' WHERE id = '{user}'").result()
        return await real(*args)

    monkeypatch.setattr(untouched, hooked, engine_writes_first)
    run = load_run(tmp_path / ".wizard", last=True)
    said = (r"was written during the rollback \(executions 1 changed, users 1 changed; e\.g\. executions \[1\], "
            r"users \[\S+\], where it measured 1 row\(s\) written since the run\): nothing was changed")
    with pytest.raises(StepError, match=said) as stopped:
        asyncio.run(rollback_run(run, lambda e: None))
    monkeypatch.undo()
    assert stopped.value.unchanged and revision(url) == head()
    assert read(url, f"SELECT email FROM users WHERE id = '{user}'") == [("during@example.com",)]

    again = wizard("rollback", "--last", "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "holds: executions 1 changed, users 1 changed" in " ".join(again.stdout.split())
    assert revision(url) is None
    assert read(url, f"SELECT email FROM users WHERE id = '{user}'") == [("during@example.com",)]
    assert read(url, "SELECT status FROM executions WHERE id = 1") == [("since",)]

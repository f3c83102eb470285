"""`wizard migrate` end to end: every source row lands in PostgreSQL or in quarantine, the source stays as it was."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from move_helpers import (compared, fetch, hashable, sha256, source_rows, source_tables, tables_in,
                          target_compared)
from wizard import sample
from wizard.move import normalize as n
from wizard.db import quote
from wizard.errors import BadInput, Refused
from wizard.events import Event, Warn
from wizard.journal import FINISHED, file_table, list_runs, load_run
from wizard.move.run import MoveOptions, run_move
from wizard.target_lock import target_lock
from wizard.rollback import since
from wizard.rollback.run import plan_rollback, rollback_run
from wizard.move.scan import SET_NULL
from wizard.urls import parse_url

WIZARD = Path(sys.executable).with_name("wizard")
KEY = "sk-proj-abcdefghijklmnop1234"


def move(source: Path, target: str, state: Path, events: list | None = None, **kw):
    options = MoveOptions(parse_url(f"sqlite:///{source}"), parse_url(target), state_dir=state, yes=True, **kw)
    return asyncio.run(run_move(options, events.append if events is not None else (lambda e: None)))


def quarantined(folder: Path) -> dict[str, dict]:
    """table -> {key: line} from the run's quarantine files."""
    out: dict[str, dict] = {}
    for path in sorted((folder / "quarantine").glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        out[file_table(path)] = {hashable(line["pk"]): line for line in lines}
    return out


@pytest.fixture
def dirty_db(tmp_path: Path) -> Path:
    return sample.build_dirty(tmp_path / "dirty.db", executions=400)


def test_dirty_database_every_row_copied_equal_or_in_quarantine(dirty_db: Path, pg_url: str, tmp_path: Path) -> None:
    before = sha256(dirty_db)
    result = move(dirty_db, pg_url, tmp_path / "state", on_orphans="quarantine")
    assert sha256(dirty_db) == before  # the source is never written
    assert result.state == FINISHED
    held = quarantined(Path(result.report_json).parent)
    for table in source_tables(dirty_db):
        rows = source_rows(dirty_db, table)
        lines = held.get(table.name, {})
        target = fetch(pg_url, f"SELECT * FROM {quote(table.name)}")
        assert len(rows) == len(target) + len(lines), table.name  # every row: copied or in quarantine
        for line in lines.values():
            assert line["reason"] and line["rule"] and line["table"] == table.name
        kept = [(k, v) for k, v in rows if hashable(k[0] if len(k) == 1 else list(k)) not in lines]
        if table.key_is_rowid:  # no key in the target to pair rows by: compare them as multisets
            assert sorted(map(repr, (compared(table, v) for _, v in kept))) == \
                sorted(map(repr, (target_compared(table, r) for r in target)))
            continue
        by_key = {tuple(r[k] for k in table.key): target_compared(table, r) for r in target}
        for key, values in kept:
            assert by_key[tuple(n.canonical(table.column(c).kind, n.convert(table.column(c).kind, v)[0])
                                for c, v in zip(table.key, key))] == compared(table, values), (table.name, key)
    # The rows of step 1, by key and reason.
    assert held["users"][sample.BAD_USER]["row"]["hashed_password"] == "***"
    assert held["workflows"][sample.ORPHAN_WORKFLOW]["rule"] == "dangling foreign key"
    assert "in quarantine" in held["workflows"][sample.OWNED_BY_BAD_USER]["reason"]
    assert set(held["executions"]) == {sample.DANGLING_EXECUTION, sample.BAD_JSON_EXECUTION,
                                       sample.BAD_DATE_EXECUTION, *sample.CHILD_EXECUTIONS, *sample.EPOCH_EXECUTIONS}
    assert set(held["plugin_audit"]) == {2, 3, 4, 5, 6, 7, 8, 9}  # 2: a boolean spelled 'yes'
    # Conversions are counted per column in the report; the NUL bytes are gone from the target.
    report = json.loads(Path(result.report_json).read_text())
    assert report["conversions"]["executions"]["error"] == {n.NUL_REMOVED: 1}
    assert report["conversions"]["users"]["is_active"] == {n.BOOL_TEXT: 2}
    assert report["conversions"]["workflows"]["created_at"] == {n.TS_OFFSET: 1}
    assert fetch(pg_url, "SELECT error FROM executions WHERE id = $1", sample.NUL_EXECUTION)[0][0] == "badbyte"
    assert fetch(pg_url, "SELECT created_at::text FROM workflows WHERE id = $1",
                 sample.SPELLED_WORKFLOW)[0][0] == "2025-03-01 10:00:00"
    assert {t["table"]: t["status"] for t in report["tables"]} == {t.name: "ok" for t in source_tables(dirty_db)}
    assert (Path(result.report_json).parent / "report.md").read_text().startswith(f"# Move {result.run_id}")
    # Indexes and foreign keys are back, the bookkeeping is gone, the next insert works.
    assert "wizard_move" not in tables_in(pg_url) and "wizard_copy_checkpoint" not in tables_in(pg_url)
    names = {r[0] for r in fetch(pg_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"ix_executions_status", "ix_executions_workflow_id", "ix_workflows_owner_id", "ix_plugin_audit_kind"} <= names
    fks = {r[0] for r in fetch(pg_url, "SELECT conname FROM pg_constraint WHERE contype = 'f'")}
    assert {"executions_workflow_id_fkey", "workflows_owner_id_fkey", "plugin_audit_execution_id_fkey"} <= fks
    top = fetch(pg_url, "SELECT max(id) FROM executions")[0][0]
    wid = fetch(pg_url, "SELECT id FROM workflows LIMIT 1")[0][0]
    new = fetch(pg_url, "INSERT INTO executions (workflow_id, status) VALUES ($1, 'pending') RETURNING id", wid)
    # past the quarantined rows' ids too (still in the file): a rollback carries the engine's row back beside them
    db = sqlite3.connect(dirty_db)
    in_file = db.execute("SELECT max(id) FROM executions").fetchone()[0]
    db.close()
    assert in_file > top and new[0][0] == in_file + 1


def test_abort_stops_before_anything_is_written_and_lists_the_rows(dirty_db: Path, pg_url: str,
                                                                    tmp_path: Path) -> None:
    events: list[Event] = []
    with pytest.raises(Refused, match=r"15 row\(s\) PostgreSQL will not take.*nothing was written"):
        move(dirty_db, pg_url, tmp_path / "state", events)
    assert tables_in(pg_url) == []
    listed = "\n".join(e.message for e in events if isinstance(e, Warn))
    assert "workflows.owner_id: 1 row(s) points to no users row" in listed
    assert str(sample.BAD_JSON_EXECUTION) in listed
    run = load_run(tmp_path / "state")
    assert run.state() == "failed"
    # The backup taken alongside the checks is not kept when they refuse.
    assert "backup_discarded" in [r["kind"] for r in run.records()]
    assert sorted(p.name for p in run.folder.iterdir()) == ["journal.jsonl"]


def test_null_policy_clears_dangling_nullable_keys_and_quarantines_the_rest(dirty_db: Path, pg_url: str,
                                                                            tmp_path: Path) -> None:
    result = move(dirty_db, pg_url, tmp_path / "state", on_orphans="null")
    assert fetch(pg_url, "SELECT owner_id FROM workflows WHERE id = $1", sample.ORPHAN_WORKFLOW)[0][0] is None
    assert fetch(pg_url, "SELECT count(*) FROM executions WHERE id = $1", sample.CHILD_EXECUTIONS[2])[0][0] == 1
    held = quarantined(Path(result.report_json).parent)
    assert sample.DANGLING_EXECUTION in held["executions"]  # NOT NULL: cannot be cleared
    report = json.loads(Path(result.report_json).read_text())
    assert report["conversions"]["workflows"]["owner_id"] == {SET_NULL: 2}
    nulled = [json.loads(line) for line in (Path(result.report_json).parent / "nulled" / "workflows.jsonl")
              .read_text().splitlines()]
    assert {line["pk"]: (line["columns"], line["was"]["owner_id"]) for line in nulled} == {
        sample.ORPHAN_WORKFLOW: (["owner_id"], "no-such-user"), sample.OWNED_BY_BAD_USER: (["owner_id"], sample.BAD_USER)}
    assert report["conversions"]["plugin_audit"]["execution_id"] == {SET_NULL: 2}


def test_switch_and_settings_move_keep_every_other_byte(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    original = (f"# the engine's settings\r\nDATABASE_URL=sqlite:///{engine_db}\r\nexport OPENAI_API_KEY='{KEY}'\r\n"
                f"DEBUG=1  # keep me\r\n").encode()
    env.write_bytes(original)
    os.chmod(env, 0o640)
    target = parse_url(pg_url)
    state = tmp_path / "state"
    result = move(engine_db, pg_url, state, env_file=env)
    after = env.read_bytes()
    assert after == (f"# the engine's settings\r\nDATABASE_URL=\"{target.async_str()}\"\r\nDEBUG=1  # keep me\r\n"
                     ).encode()
    assert env.stat().st_mode & 0o777 == 0o640
    settings = json.loads(fetch(pg_url, "SELECT settings_data FROM settings WHERE user_id = 'anonymous'")[0][0])
    assert {"id": "openai", "name": "OpenAI", "type": "openai", "apiKey": KEY, "enabled": True} in settings["providers"]
    assert len(settings["providers"]) == 2  # the sample's own provider is kept
    for path in state.rglob("*"):
        if path.is_file() and path.name != "env.backup":
            assert KEY not in path.read_text(errors="replace"), path
    # Rollback: .env byte for byte, and the move's tables dropped in the named database.
    run = load_run(state, result.run_id)
    described = [a.describe() for a in plan_rollback(run)]
    assert any(f"database {target.database}" in d and "drop the" in d for d in described)
    asyncio.run(rollback_run(run, lambda e: None, env_file=env))
    assert env.read_bytes() == original
    assert tables_in(pg_url) == []


@pytest.mark.parametrize("key", [True, False], ids=["settings move after it", "nothing written after it"])
def test_the_end_state_recorded_beside_the_verification_is_the_target_as_the_move_leaves_it(
        key: bool, engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    """The end state is recorded while the rows are verified; a settings move that writes to the target after
    it has it taken again, so a rollback finds nothing written since, and then finds what the engine wrote."""
    env = tmp_path / ".env"
    env.write_bytes(f"DATABASE_URL=sqlite:///{engine_db}\n".encode() + (f"OPENAI_API_KEY={KEY}\n".encode() if key
                                                                           else b""))
    result = move(engine_db, pg_url, tmp_path / "state", env_file=env)
    folder = Path(result.report_json).parent
    target = parse_url(pg_url)
    assert not asyncio.run(since.measure(target, folder, "", "move")).any
    fetch(pg_url, "UPDATE workflows SET name = name || ' (edited)' WHERE id = (SELECT min(id) FROM workflows)")
    written = asyncio.run(since.measure(target, folder, "", "move"))
    assert written.describe().endswith("workflows 1 changed"), written.describe()


@pytest.mark.parametrize("had_row", [True, False], ids=["settings row changed", "settings row made"])
def test_verify_of_the_run_expects_the_settings_move_and_names_it(engine_db: Path, pg_url: str, tmp_path: Path,
                                                                  had_row: bool) -> None:
    from wizard.verify.run import load_changed, verify

    if not had_row:
        with sqlite3.connect(engine_db) as conn:
            conn.execute("DELETE FROM settings WHERE user_id = 'anonymous'")
    env = tmp_path / ".env"
    env.write_bytes(f"DATABASE_URL=sqlite:///{engine_db}\nOPENAI_API_KEY={KEY}\n".encode())
    result = move(engine_db, pg_url, tmp_path / "state", env_file=env)
    source, target = parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url)
    changed = load_changed(load_run(tmp_path / "state", result.run_id).folder)
    (settings,) = [v for v in asyncio.run(verify(source, target, changed=changed)).tables if v.table == "settings"]
    assert (settings.status, settings.different, settings.only_target) == ("ok", 0, 0)
    assert settings.note.startswith("1 row(s) changed on purpose (OPENAI_API_KEY moved into provider 'openai'")
    # Without the run's record, the same row is a difference: nothing else hides it.
    (alone,) = [v for v in asyncio.run(verify(source, target)).tables if v.table == "settings"]
    assert (alone.different, alone.only_target) == ((1, 0) if had_row else (0, 1))


def test_another_apps_database_is_copied_as_it_is_with_reflected(pg_url: str, tmp_path: Path) -> None:
    from wizard.verify.run import verify

    crm = tmp_path / "crm.db"
    with sqlite3.connect(crm) as conn:
        conn.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), "
            "amount NUMERIC, issued DATETIME);"
            "CREATE INDEX ix_invoices_customer ON invoices (customer_id);"
            "INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace');"
            "INSERT INTO invoices VALUES (1, 1, 12.5, '2024-01-02 10:00:00'), (2, 2, 7, '2024-01-03T11:00:00Z');")
    before = sha256(crm)
    with pytest.raises(Refused, match="pass --reflected to copy its tables as they are"):
        move(crm, pg_url, tmp_path / "refused")
    assert tables_in(pg_url) == []
    with pytest.raises(BadInput, match="a --reflected copy has none"):
        move(crm, pg_url, tmp_path / "refused", reflected=True, to="head")
    result = move(crm, pg_url, tmp_path / "state", reflected=True)
    assert tables_in(pg_url) == ["customers", "invoices"]  # no alembic_version: no engine schema was made
    assert [tuple(r) for r in fetch(pg_url, "SELECT id, customer_id, issued::text FROM invoices ORDER BY id")] == [
        (1, 1, "2024-01-02 10:00:00"), (2, 2, "2024-01-03 11:00:00")]
    assert fetch(pg_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'invoices' "
                         "AND indexname = 'ix_invoices_customer'")
    assert fetch(pg_url, "SELECT nextval(pg_get_serial_sequence('customers', 'id'))")[0][0] == 3
    report = asyncio.run(verify(parse_url(f"sqlite:///{crm}"), parse_url(pg_url)))
    assert report.ok, report.summary()
    assert sha256(crm) == before
    asyncio.run(rollback_run(load_run(tmp_path / "state", result.run_id), lambda e: None))
    assert tables_in(pg_url) == []


def test_to_head_upgrades_the_verified_target(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    result = move(engine_db, pg_url, tmp_path / "state", to="head")
    assert fetch(pg_url, "SELECT version_num FROM alembic_version")[0][0] == "0004"
    assert result.report.upgraded_to == "0004"
    state = json.loads(fetch(pg_url, "SELECT state::text FROM executions ORDER BY id LIMIT 1")[0][0])
    assert isinstance(state["nodes"], list)  # 0004 ran on the copied rows


def test_target_with_the_engines_tables_is_refused(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    fetch(pg_url, "CREATE TABLE workflows (id text)")
    with pytest.raises(Refused, match="target empty"):
        move(engine_db, pg_url, tmp_path / "state")
    assert tables_in(pg_url) == ["workflows"]


def test_a_second_move_to_the_same_target_is_refused_naming_the_holder(engine_db: Path, pg_url: str,
                                                                       tmp_path: Path) -> None:
    async def go() -> str:
        async with target_lock(parse_url(pg_url), "wizard move 20260101-000000-abcdef"):
            options = MoveOptions(parse_url(f"sqlite:///{engine_db}"), parse_url(pg_url), state_dir=tmp_path / "s2",
                                  yes=True)
            try:
                await run_move(options)
            except Refused as exc:
                return exc.message
            return "not refused"

    said = asyncio.run(go())
    assert "wizard move 20260101-000000-abcdef" in said and "holds database" in said
    assert tables_in(pg_url) == []
    assert list_runs(tmp_path / "s2") == []  # refused before it began: no run to clean up or resume


def test_cli_json_lines_summary_and_exit_codes(dirty_db: Path, pg_url: str, tmp_path: Path) -> None:
    base = [str(WIZARD), "migrate", "--source", f"sqlite:///{dirty_db}", "--target", pg_url,
            "--state-dir", str(tmp_path / "state"), "--yes", "--json"]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 3, refused.stderr
    assert "Traceback" not in refused.stderr
    assert len([line for line in refused.stderr.splitlines() if line.startswith("error:")]) == 1
    done = subprocess.run(base + ["--on-orphans", "quarantine"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {line["event"] for line in lines} >= {"StepStarted", "Progress", "StepFinished", "Summary"}
    summary = lines[-1]
    assert summary["event"] == "Summary" and summary["totals"]["quarantined"] == 21
    assert any(line["event"] == "Progress" and line["item"] == "executions" and line["rate"] for line in lines)


def _moved_with_quarantine(source: Path, pg_url: str, state: Path) -> Path:
    """`wizard migrate --on-orphans quarantine`, finished and verified; its run folder."""
    done = subprocess.run([str(WIZARD), "migrate", "--source", f"sqlite:///{source}", "--target", pg_url,
                           "--state-dir", str(state), "--yes", "--on-orphans", "quarantine"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    (run,) = (state / "runs").iterdir()
    return run


def test_quarantine_files_of_tables_named_with_a_slash_stay_in_the_quarantine_folder(engine_db: Path, pg_url: str,
                                                                                     tmp_path: Path) -> None:
    """A side file is named after its table: 'a/b' went into a folder of its own, where the verification did not
    look (the move failed: differences found), and '../journal' appended its quarantine to the run's journal."""
    conn = sqlite3.connect(engine_db)
    for name in ("a/b", "../journal"):
        conn.execute(f"CREATE TABLE {quote(name)} (id INTEGER PRIMARY KEY, n BIGINT)")
        conn.execute(f"INSERT INTO {quote(name)} VALUES (1, 5), (2, '1_000')")
    conn.commit()
    conn.close()
    run = _moved_with_quarantine(engine_db, pg_url, tmp_path / "state")
    assert {t: list(held) for t, held in quarantined(run).items()} == {"a/b": [2], "../journal": [2]}
    assert all("kind" in json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines())


def test_columns_named_rowid_are_not_taken_for_the_rowid(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    """A table's rowid was read as `rowid`, which a column of that name (in any case) takes for itself: a table
    with no primary key and such a column was keyed by its values (one bad row put every row sharing its value in
    quarantine), and a primary key column called rowid was taken for no primary key (the target got none: the
    move failed; and a foreign key to it was not carried, its parent said to have no primary key)."""
    conn = sqlite3.connect(engine_db)
    conn.executescript("""
        CREATE TABLE logs ("ROWID" INTEGER, n BIGINT);
        INSERT INTO logs VALUES (0, 1), (0, '1_000'), (0, 3), (NULL, 4);
        CREATE TABLE codes ("rowid" TEXT PRIMARY KEY, v TEXT);
        INSERT INTO codes VALUES ('b', 'x'), ('a', 'y');
        CREATE TABLE uses (id INTEGER PRIMARY KEY, code TEXT REFERENCES codes);
        INSERT INTO uses VALUES (1, 'a');
    """)
    conn.commit()
    conn.close()
    run = _moved_with_quarantine(engine_db, pg_url, tmp_path / "state")
    assert [line["row"] for line in quarantined(run)["logs"].values()] == [{"ROWID": 0, "n": "1_000"}]
    assert sorted(fetch(pg_url, "SELECT * FROM logs"), key=str) == sorted([(0, 1), (0, 3), (None, 4)], key=str)
    assert fetch(pg_url, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                         "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'codes'::regclass AND i.indisprimary") == [
        ("rowid",)]
    assert fetch(pg_url, "SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = 'uses'::regclass "
                         "AND contype = 'f'") == [("codes",)]


def test_a_table_that_refers_to_itself_cascades_to_every_level(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    conn = sqlite3.connect(engine_db)
    conn.executescript("""
        CREATE TABLE tree (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES tree (id), payload JSON);
        INSERT INTO tree VALUES (1, NULL, 'not json'), (2, 1, '{}'), (3, 2, '{}'), (4, 99, '{}'), (5, NULL, '[]'),
                                (6, 5, '{}');
    """)
    conn.commit()
    conn.close()
    result = move(engine_db, pg_url, tmp_path / "state", on_orphans="quarantine")
    held = quarantined(Path(result.report_json).parent)["tree"]
    assert {k: v["rule"] for k, v in held.items()} == {
        1: "text that is not valid JSON in a JSON column", 2: "parent row in quarantine",
        3: "parent row in quarantine", 4: "dangling foreign key"}
    assert [r[0] for r in fetch(pg_url, "SELECT id FROM tree ORDER BY id")] == [5, 6]
    assert fetch(pg_url, "SELECT count(*) FROM pg_constraint WHERE conname = 'tree_parent_id_fkey'")[0][0] == 1


def test_a_wal_database_with_committed_frames_not_yet_checkpointed(engine_db: Path, pg_url: str,
                                                                   tmp_path: Path) -> None:
    """The engine left its last commits in the -wal file: the move reads them, and writes neither file."""
    writer = sqlite3.connect(engine_db)
    try:
        writer.execute("PRAGMA journal_mode = wal")
        writer.execute("INSERT INTO executions (id, workflow_id, status) SELECT 999999, id, 'pending' FROM workflows "
                       "LIMIT 1")
        writer.commit()  # in the -wal only: the open connection has not checkpointed it
        main, wal = sha256(engine_db), sha256(Path(f"{engine_db}-wal"))
        move(engine_db, pg_url, tmp_path / "state")
        assert (sha256(engine_db), sha256(Path(f"{engine_db}-wal"))) == (main, wal)
    finally:
        writer.close()
    assert fetch(pg_url, "SELECT count(*) FROM executions WHERE id = 999999")[0][0] == 1


def test_without_yes_and_without_a_terminal_the_move_is_refused(engine_db: Path, pg_url: str, tmp_path: Path) -> None:
    done = subprocess.run([str(WIZARD), "migrate", "--source", f"sqlite:///{engine_db}", "--target", pg_url,
                           "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 3, done.stderr
    assert "not confirmed" in done.stderr and "--yes" in done.stderr
    assert tables_in(pg_url) == []
    assert not list((tmp_path / "state").rglob("*.backup"))


def test_a_failure_is_named_for_where_it_happened_not_always_a_lost_connection() -> None:
    import socket

    from wizard.move.run import _describe_failure

    with pytest.raises(OSError) as full:  # this machine's disk, as a full state directory says it
        with open("/dev/full", "w") as f:
            f.write("x")
    with socket.socket() as s:  # a port nothing listens on: what the network says
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError) as refused:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert _describe_failure(full.value) == "this machine refused: [Errno 28] No space left on device"
    assert _describe_failure(refused.value).startswith("lost the connection to the target ([Errno 111]")

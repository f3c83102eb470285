"""`wizard migrate` off MySQL/MariaDB to PostgreSQL, against the real MariaDB and PostgreSQL.

The source is a 1.0.0 engine database on MariaDB holding the sample's rows (tests/engine_data.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine_data import build_1_0_0, read, write
from move_helpers import execute, fetch, tables_in
from wizard import commands
from wizard.cli import main
from wizard.errors import Interrupted, Refused
from wizard.events import Progress, StopRequest
from wizard.move.run import MoveOptions
from wizard.mysql.reader import connect_sync
from wizard.mysql.source import BAD_JSON, NO_SUCH_DATE
from wizard.urls import parse_url

EMOJI = "deploy \U0001f680 \u00e9t\u00e9"
COUNTS = {"users": 5, "workflows": 20, "executions": 300, "settings": 1}


@pytest.fixture
def source(engine_db: Path, mysql_url: str) -> str:
    return build_1_0_0(mysql_url, engine_db)


def _move(source: str, target: str, tmp_path: Path, **kw) -> commands.MoveResult:
    options = MoveOptions(parse_url(source), parse_url(target), state_dir=tmp_path / "state", yes=True, **kw)
    return asyncio.run(commands.migrate(options))


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _checksums(url: str) -> list[tuple]:
    return read(url, "CHECKSUM TABLE users, workflows, executions, settings EXTENDED")


def test_a_mysql_database_moves_and_verifies_with_no_row_lost(source: str, pg_url: str, tmp_path: Path):
    before = _checksums(source)
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL={source}\n")
    result = _move(source, pg_url, tmp_path, env_file=env)
    assert result.state == "finished"
    assert result.verification is not None and result.verification.ok
    assert not [c for c in result.preflight.checks if c.name == "source in use"]  # its own lock's connection
    assert {t["table"]: t["equal"] for t in result.verification.to_dict()["tables"]} == COUNTS
    assert {r.table: (r.copied, r.quarantined) for r in result.report.tables} == {
        t: (n, 0) for t, n in COUNTS.items()}
    assert _checksums(source) == before  # the source is never written
    assert "wizard_move" not in tables_in(pg_url)
    assert fetch(pg_url, "SELECT version_num FROM alembic_version")[0][0] == "0001"
    # The sequence goes past the highest id: the engine's next execution does not collide.
    top = fetch(pg_url, "SELECT max(id) FROM executions")[0][0]
    assert fetch(pg_url, "SELECT nextval(pg_get_serial_sequence('executions', 'id'))")[0][0] > top
    assert "postgresql" in env.read_text()
    # The rollback restores .env and drops the target's tables.
    asyncio.run(commands.rollback(commands.find_run(tmp_path / "state", result.run_id)))
    assert env.read_text() == f"DATABASE_URL={source}\n"
    assert not [t for t in tables_in(pg_url) if t in COUNTS]


def _plant_odd_values(source: str) -> dict[str, object]:
    """A zero date, invalid JSON (MariaDB's check switched off), an emoji, microseconds in a DATETIME(6)."""
    write(source, "ALTER TABLE executions MODIFY started_at DATETIME(6) NULL")
    write(source, "UPDATE executions SET started_at = '2024-05-06 07:08:09.123456' WHERE id = 3")
    write(source, "UPDATE executions SET completed_at = '0000-00-00 00:00:00' WHERE id = 8")
    (bad_json,) = read(source, "SELECT id FROM workflows ORDER BY id LIMIT 1")[0]
    (emoji,) = read(source, "SELECT id FROM workflows ORDER BY id LIMIT 1 OFFSET 1")[0]
    write(source, f"UPDATE workflows SET name = '{EMOJI}' WHERE id = '{emoji}'")
    conn = connect_sync(parse_url(source))
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION check_constraint_checks = 0")  # MariaDB's CHECK (json_valid(...)) let through
            cur.execute("UPDATE workflows SET definition = '{not json' WHERE id = %s", (bad_json,))
        conn.commit()
    finally:
        conn.close()
    children = [r[0] for r in read(source, f"SELECT id FROM executions WHERE workflow_id = '{bad_json}'")]
    return {"bad_json": bad_json, "emoji": emoji, "children": children}


def test_odd_values_are_held_and_listed_never_passed_on(source: str, pg_url: str, tmp_path: Path):
    planted = _plant_odd_values(source)
    with pytest.raises(Refused, match="nothing was written"):
        _move(source, pg_url, tmp_path)  # abort, the default: stops before anything is written
    assert not [t for t in tables_in(pg_url) if t in COUNTS]

    result = _move(source, pg_url, tmp_path, on_orphans="quarantine")
    assert result.state == "finished" and result.verification.ok
    held = {}
    for path in sorted((result.report_json.parent / "quarantine").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            held[(record["table"], record["pk"])] = record["reason"]
    assert BAD_JSON in held[("workflows", planted["bad_json"])]
    assert NO_SUCH_DATE in held[("executions", 8)]
    for child in planted["children"]:  # their workflow is held: they would dangle
        assert "in quarantine" in held[("executions", child)]
    copied = {r.table: r.copied for r in result.report.tables}
    assert copied["workflows"] == 19 and copied["executions"] == 300 - len({8, *planted["children"]})
    assert fetch(pg_url, "SELECT name FROM workflows WHERE id = $1", planted["emoji"])[0][0] == EMOJI
    started = fetch(pg_url, "SELECT started_at FROM executions WHERE id = 3")
    assert started and started[0][0].microsecond == 123456


def _stopped(source: str, pg_url: str, tmp_path: Path) -> MoveOptions:
    """A move stopped after its first checkpoint in executions; its options, set to resume."""
    stop = StopRequest()

    def emit(event: object) -> None:
        if isinstance(event, Progress) and event.step == "copy" and event.item == "executions" and event.done:
            stop.set("test")

    options = MoveOptions(parse_url(source), parse_url(pg_url), state_dir=tmp_path / "state", yes=True, chunk_rows=50)
    with pytest.raises(Interrupted, match="--resume"):
        asyncio.run(commands.migrate(options, emit, stop))
    partial = fetch(pg_url, "SELECT count(*) FROM executions")[0][0]
    assert 0 < partial < 300
    options.resume = True
    return options


def test_a_stop_mid_copy_then_resume_equals_an_uninterrupted_move(source: str, pg_url: str, tmp_path: Path):
    options = _stopped(source, pg_url, tmp_path)
    result = asyncio.run(commands.migrate(options))
    assert result.state == "finished" and result.verification.ok
    assert fetch(pg_url, "SELECT count(*), count(DISTINCT id) FROM executions")[0] == (300, 300)



def test_a_rollback_after_the_engine_wrote_to_the_target_refuses_unless_told(source: str, pg_url: str,
                                                                             tmp_path: Path):
    result = _move(source, pg_url, tmp_path)
    execute(pg_url, "UPDATE executions SET status = 'written since' WHERE id = 1")
    run = commands.find_run(tmp_path / "state", result.run_id)
    with pytest.raises(Refused, match="1 row.* written to the target since .*--restore-backup"):
        asyncio.run(commands.rollback_plan(run))
    assert fetch(pg_url, "SELECT status FROM executions WHERE id = 1")[0][0] == "written since"
    asyncio.run(commands.rollback(run, restore_backup=True))
    assert not [t for t in tables_in(pg_url) if t in COUNTS]
    saved = "".join(p.read_text() for p in (result.report_json.parent / "written-since").rglob("*") if p.is_file())
    assert "written since" in saved


def test_a_resume_is_refused_when_the_source_was_written_since(source: str, pg_url: str, tmp_path: Path):
    options = _stopped(source, pg_url, tmp_path)
    write(source, "UPDATE executions SET status = 'changed' WHERE id = 299")
    with pytest.raises(Refused, match="changed since run"):
        asyncio.run(commands.migrate(options))


def test_a_source_that_does_not_let_us_in_is_bad_input_before_any_run(mysql_url: str, pg_url: str, tmp_path: Path):
    code, out = _cli("migrate", "--source", mysql_url.replace("wizard_test_", "no_such_"), "--target", pg_url,
                     "--state-dir", str(tmp_path / "state"), "--yes")
    assert code == 2 and "does not exist" in out and "Traceback" not in out
    assert not (tmp_path / "state" / "runs").exists() or not list((tmp_path / "state" / "runs").iterdir())

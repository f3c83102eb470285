"""MySQL and MariaDB: the engine's schema history on a real server, `wizard plan`, `wizard backup`, `wizard upgrade`
and its rollback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

from engine_data import build_1_0_0, read
from mysql_server import admin
from test_cli_errors import WIZARD, wizard
from wizard import commands, schema
from wizard.backup import sha256_file
from wizard.db import connect, write_transaction
from wizard.errors import Refused, StepError
from wizard.mysql.lock import lock_name
from wizard.urls import parse_url

pytestmark = pytest.mark.slow  # whole upgrades and rollbacks on MariaDB: `pytest -m slow` (CI runs it)

COUNTS = {"users": 5, "workflows": 20, "executions": 300, "settings": 1}  # conftest's engine_db


async def _upgrade(url: str, to: str, stamp: str | None = None) -> None:
    async with connect(parse_url(url)) as conn:
        async with write_transaction(conn):
            await schema.upgrade(conn, to, stamp=stamp)


def test_plan_recognises_a_1_0_0_database(mysql_url: str, engine_db: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    report = asyncio.run(commands.plan(parse_url(mysql_url)))
    info = report.source
    assert info.engine.split()[0] in ("MariaDB", "MySQL") and info.engine.split()[1][0].isdigit()
    assert info.size and info.size > 0
    assert info.tables == COUNTS
    assert info.revision == "0001" and info.schema == "1.0.0, no revision recorded: its tables match revision 0001"
    assert [(p.id, p.record_only) for p in report.pending] == [("0001", True), ("0002", False), ("0003", False),
                                                               ("0004", False)]


def test_the_history_runs_on_mysql_and_plan_reads_its_revision(mysql_url: str, engine_db: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    asyncio.run(_upgrade(mysql_url, "head", stamp="0001"))
    report = asyncio.run(commands.plan(parse_url(mysql_url)))
    assert report.source.schema == "at revision 0004" and report.pending == []
    assert report.source.tables == {**COUNTS, "alembic_version": 1}
    # 0004's data revision went through every execution; 0001's DATETIME(6) kept the microseconds.
    (arrays,) = read(mysql_url, "SELECT count(*) FROM executions WHERE JSON_TYPE(JSON_EXTRACT(state, '$.nodes')) "
                                "= 'ARRAY'")[0]
    assert arrays == COUNTS["executions"]
    assert read(mysql_url, "SELECT count(*) FROM executions WHERE MICROSECOND(started_at) > 0")[0][0] > 0


def test_wizard_plan_takes_a_mysql_url(mysql_url: str, engine_db: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    for spelling in ("mysql://", "mysql+asyncmy://", "mariadb://"):
        url = mysql_url.replace("mysql://", spelling, 1)
        done = wizard("plan", "--source", url, cwd=engine_db.parent)
        assert done.returncode == 0, done.stderr
        assert "1.0.0, no revision recorded" in " ".join(done.stdout.split())


def test_mysql_pwd_gives_a_url_without_a_password_its_password(mysql_url: str, mysql_server: str,
                                                                  engine_db: Path, tmp_path: Path) -> None:
    """README: a password may come through MYSQL_PWD, as for MySQL's own clients. The Python drivers do not read
    it: plan and backup were refused with 'Access denied' while the rollback alone took it."""
    build_1_0_0(mysql_url, engine_db)
    user, password = f"wizard_pwd_{uuid.uuid4().hex[:8]}", "s3cret#pw"
    admin(mysql_server, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        admin(mysql_server, f"GRANT ALL ON *.* TO '{user}'@'%'")  # the dump, and its proof in a scratch database
        url = make_url(mysql_url).set(username=user, password=None).render_as_string(hide_password=False)

        def run(*args: str, pwd: str | None) -> subprocess.CompletedProcess:
            env = {k: v for k, v in os.environ.items() if k != "MYSQL_PWD"} | ({"MYSQL_PWD": pwd} if pwd else {})
            return subprocess.run([WIZARD, *args], cwd=tmp_path, capture_output=True, text=True, env=env,
                                  stdin=subprocess.DEVNULL, timeout=120)

        refused = run("plan", "--source", url, pwd=None)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        planned = run("plan", "--source", url, pwd=password)
        assert planned.returncode == 0, planned.stderr
        assert "1.0.0, no revision recorded" in " ".join(planned.stdout.split())
        backed = run("backup", "--source", url, "--state-dir", str(tmp_path / "state"), pwd=password)
        assert backed.returncode == 0, backed.stderr
        shown = planned.stdout + planned.stderr + backed.stdout + backed.stderr
        assert password not in shown and f"{user}:***@" in shown
        kept = [p for p in (tmp_path / "state").rglob("*") if p.is_file() and p.suffix != ".sql"]
        assert kept and not [p for p in kept if password.encode() in p.read_bytes()]
    finally:
        admin(mysql_server, f"DROP USER '{user}'@'%'")


def _checksums(url: str) -> dict[str, int]:
    """CHECKSUM TABLE of each engine table: the server's own digest of every row."""
    return {t: read(url, f"CHECKSUM TABLE {t}")[0][1] for t in (*COUNTS, "alembic_version")}


def _proof_databases(url: str) -> set[str]:
    """The scratch databases backups are proven in, this test's and any other's on the server."""
    return {name for name, in read(url, "SHOW DATABASES LIKE 'wizard\\_proof\\_%'")}


def _fake_dump(folder: Path, pipe: str) -> Path:
    """A bin folder whose mariadb-dump is the real one with its output through `pipe` (the mysql client as it is)."""
    folder.mkdir()
    dump = folder / "mariadb-dump"
    dump.write_text(f"#!/bin/sh\n{shutil.which('mariadb-dump') or shutil.which('mysqldump')}"
                    f' "$@" | {pipe}\n')
    dump.chmod(0o755)
    (folder / "mariadb").symlink_to(shutil.which("mariadb") or shutil.which("mysql"))
    return folder


def test_backup_is_a_proven_mysqldump(mysql_url: str, engine_db: Path, tmp_path: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    asyncio.run(_upgrade(mysql_url, "head", stamp="0001"))
    state_dir = tmp_path / "state"
    others = _proof_databases(mysql_url)  # another run's on a shared server
    done = asyncio.run(commands.backup(parse_url(mysql_url), state_dir))
    record, path = done.record, Path(done.record.path)
    assert record.kind == "mysqldump" and record.revision == "0004"
    assert dict(record.row_counts) == {**COUNTS, "alembic_version": 1}
    assert path.parent == state_dir / "runs" / done.run_id and path.stat().st_mode & 0o777 == 0o600
    assert sha256_file(path) == record.sha256
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    assert _proof_databases(mysql_url) == others  # the scratch database went
    # The dump, restored by hand into the emptied database, gives back every row of every table.
    before = _checksums(mysql_url)
    u = make_url(mysql_url)
    admin(mysql_url, "DROP TABLE " + ", ".join(f"`{u.database}`.{t}" for t in ("settings", "executions", "workflows",
                                                                             "users", "alembic_version")))
    assert read(mysql_url, "SHOW TABLES") == []
    with open(path, "rb") as dump:
        subprocess.run([shutil.which("mariadb") or "mysql", "-h", u.host, "-P", str(u.port or 3306), "-u", u.username,
                        u.database], stdin=dump, check=True)
    assert _checksums(mysql_url) == before
    journal = (path.parent / "journal.jsonl").read_text()
    assert '"kind": "mysqldump"' in journal and record.sha256 in journal


def test_a_dump_cut_short_or_missing_rows_is_no_backup(mysql_url: str, engine_db: Path, tmp_path: Path,
                                                        monkeypatch) -> None:
    build_1_0_0(mysql_url, engine_db)
    cases = {"cut": ("head -c 20000", "stopped before its end (no '-- Dump completed' line)"),
             "rows": ("sed '/^INSERT INTO `executions`/,/);$/d'", "restores other row counts: executions 0 (the table has "
                                                             "300): it cannot be trusted")}
    others = _proof_databases(mysql_url)
    for name, (pipe, says) in cases.items():
        monkeypatch.setenv("WIZARD_MYSQL_BIN", str(_fake_dump(tmp_path / name, pipe)))
        with pytest.raises(StepError) as failed:
            asyncio.run(commands.backup(parse_url(mysql_url), tmp_path / "state"))
        assert says in failed.value.message
    runs = list((tmp_path / "state" / "runs").iterdir())
    assert [p.name for r in runs for p in r.iterdir()] == ["journal.jsonl", "journal.jsonl"]  # no dump kept
    assert _proof_databases(mysql_url) == others


ENGINE = ("users", "workflows", "executions", "settings")


def _engine_checksums(url: str) -> dict[str, int]:
    return {t: read(url, f"CHECKSUM TABLE {t}")[0][1] for t in ENGINE}


def _journal(state_dir: Path, run_id: str) -> list[dict]:
    return [json.loads(line) for line in (state_dir / "runs" / run_id / "journal.jsonl").read_text().splitlines()]


def test_upgrade_commits_each_revision_as_a_step_and_rollback_restores_1_0_0(mysql_url: str, engine_db: Path,
                                                                               tmp_path: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    before = _engine_checksums(mysql_url)
    db, state_dir = parse_url(mysql_url), tmp_path / "state"
    assert "each revision on its own" in asyncio.run(commands.upgrade_plan(db)).how
    result = asyncio.run(commands.upgrade(db, None, state_dir))
    assert (result.from_revision, result.to_revision, result.applied) == (None, "0004", ["0002", "0003", "0004"])
    assert asyncio.run(commands.plan(db)).source.schema == "at revision 0004"
    # One journaled step per revision, each with the downgrade that undoes it alone.
    undos = [(r["step"], r["undo"]["to"], r["undo"]["drop_version_table"]) for r in _journal(state_dir, result.run_id)
             if r["kind"] == "step_finished" and r["step"].startswith("revision ")]
    assert undos == [("revision 0001", "0001", True), ("revision 0002", "0001", False),
                     ("revision 0003", "0002", False), ("revision 0004", "0003", False)]
    # Nothing written since: the backup comes back, 1.0.0 with every row as it was.
    said = asyncio.run(commands.rollback(commands.find_run(state_dir, result.run_id)))
    assert any("revision none recorded (1.0.0)" in s for s in said)
    assert read(mysql_url, "SHOW TABLES LIKE 'alembic\\_version'") == []
    assert _engine_checksums(mysql_url) == before


def test_rollback_after_rows_were_written_downgrades_and_keeps_them(mysql_url: str, engine_db: Path,
                                                                     tmp_path: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    db, state_dir = parse_url(mysql_url), tmp_path / "state"
    result = asyncio.run(commands.upgrade(db, None, state_dir))
    admin(mysql_url, f"INSERT INTO `{make_url(mysql_url).database}`.executions (workflow_id, status, state) "
                     "SELECT id, 'pending', '{\"nodes\": []}' FROM "
                     f"`{make_url(mysql_url).database}`.workflows ORDER BY id LIMIT 1")
    run = commands.find_run(state_dir, result.run_id)
    plan = asyncio.run(commands.rollback_plan(run))
    assert [line.split(" from ")[0] for line in plan.described()] == [f"downgrade {mysql_url}"] * 4
    assert all("committed on its own (MySQL); the 1 row(s) written since stay" in line for line in plan.described())
    # the last downgrade, which brings the database to the backup's revision, puts every other row back
    assert ["then every other row put back as the backup" in line for line in plan.described()] == [False] * 3 + [True]
    asyncio.run(commands.rollback(run, expected=plan.described()))
    report = asyncio.run(commands.plan(db))
    assert report.source.schema == "1.0.0, no revision recorded: its tables match revision 0001"
    assert report.source.tables["executions"] == COUNTS["executions"] + 1
    (nodes,) = read(mysql_url, "SELECT state FROM executions ORDER BY id DESC LIMIT 1")[0]
    assert json.loads(nodes) == {"nodes": {}}  # kept, and turned back by 0004's downgrade like every other row


def _session(url: str) -> pymysql.connections.Connection:
    """Another client on the test's database, as the engine would be."""
    u = make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, autocommit=True)


def test_a_second_wizard_and_a_connected_engine_are_refused(mysql_url: str, engine_db: Path, tmp_path: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    db, state_dir = parse_url(mysql_url), tmp_path / "state"
    before = _engine_checksums(mysql_url)
    other = _session(mysql_url)
    try:
        # Another wizard's upgrade holds the database's lock (from another state directory).
        with other.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (lock_name(db),))
        with pytest.raises(Refused) as held:
            asyncio.run(commands.upgrade(db, None, state_dir))
        assert f"holds database {db.database}" in held.value.message
        assert read(mysql_url, "SHOW TABLES LIKE 'alembic\\_version'") == []
        with other.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (lock_name(db),))
        result = asyncio.run(commands.upgrade(db, None, state_dir))
        # The engine still connected: rolling back would lose what it writes meanwhile.
        with pytest.raises(Refused) as busy:
            asyncio.run(commands.rollback(commands.find_run(state_dir, result.run_id)))
        assert f"database {db.database} has other sessions connected: connection {other.thread_id()}" in \
            busy.value.message
    finally:
        other.close()
    asyncio.run(commands.rollback(commands.find_run(state_dir, result.run_id)))
    assert _engine_checksums(mysql_url) == before

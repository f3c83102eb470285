"""MySQL/MariaDB without the clients (WIZARD_MYSQL_BIN an empty folder): the wizard's own streamed dump
(wizard.mysql.stream_dump) is the backup, proven as mysqldump's is, restored on rollback through the driver, and
restorable by the real mysql client too, every value byte for byte (CHECKSUM TABLE equal)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

from engine_data import build_1_0_0, read
from mysql_server import fresh_database
from test_cli_errors import wizard
from test_rollback_mysql import _engine_writes_pg, _off, plant_lost_microseconds
from wizard import commands
from wizard.backup import sha256_file
from wizard.errors import StepError
from wizard.events import Warn
from wizard.journal import load_run
from wizard.mysql import stream_dump
from wizard.rollback.run import rollback_run
from wizard.urls import parse_url

EVERY_BYTE = bytes(range(256))
ODD_TEXT = "emoji \U0001f680 back\\slash \\N 'single' \"double\" `tick` new\nline\r\x1a\x00 end; -- not a comment"
# latin1 text: é and, as latin1's bytes C3 A9, what UTF-8 would read as é too
LAST_INSTANT = "9999-12-31 23:59:59.999999"
NOT_JSON = '{not json "\\'
# A table of the test's own beside the engine's (none of the engine's columns is binary): every kind of value a
# literal could get wrong.
ODD_TABLE = """CREATE TABLE odd_values (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  raw VARBINARY(300), big BLOB, words TEXT, old VARCHAR(40) CHARACTER SET latin1, at DATETIME(6), day DATE,
  stamp TIMESTAMP(6) NULL DEFAULT NULL, doc JSON, amount DECIMAL(20,6), ratio DOUBLE, flags BIT(8)
) ENGINE=InnoDB"""
ODD_ROWS = [
    (EVERY_BYTE, EVERY_BYTE[::-1] * 300, ODD_TEXT, "caf\u00e9 \u00c3\u00a9 \u00ff", LAST_INSTANT, "0000-00-00",
     "2038-01-19 03:14:07.999999", NOT_JSON, "-12345678901234.000001", 0.1, b"\x81"),
    (b"", b"", "", "\u00c3\u00a9", "0000-00-00 00:00:00.000000", "2024-02-29", None, '{"a": [1, "\U0001f680"]}', "0", 1e308, b"\x00"),
    (None, None, "NULL", "NULL", None, None, None, None, None, None, None),
]
ENGINE = ("users", "workflows", "executions", "settings")
TABLES = (*ENGINE, "alembic_version", "odd_values")


@pytest.fixture
def no_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """mysqldump and mysql hidden from the wizard (and from the `wizard` processes the test starts)."""
    empty = tmp_path / "no-clients"
    empty.mkdir()
    monkeypatch.setenv("WIZARD_MYSQL_BIN", str(empty))
    return empty


def _connect(url: str) -> pymysql.connections.Connection:
    u = make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, autocommit=True, charset="utf8mb4")


def _add_odd_values(url: str) -> None:
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(ODD_TABLE)
            cur.execute("SET SESSION check_constraint_checks = 0, time_zone = '+00:00', sql_mode = ''")
            cur.executemany("INSERT INTO odd_values (raw, big, words, old, at, day, stamp, doc, amount, ratio, flags) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", ODD_ROWS)
            cur.execute("INSERT INTO odd_values (id) VALUES (9)")
            cur.execute("DELETE FROM odd_values WHERE id = 9")  # AUTO_INCREMENT 10 now, past the last row
    finally:
        conn.close()


def _checksums(url: str, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    """CHECKSUM TABLE of each table: the server's own digest of every row's bytes."""
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKSUM TABLE " + ", ".join(tables))
            return {name.rsplit(".", 1)[1]: n for name, n in cur.fetchall()}
    finally:
        conn.close()


def _odd_values(url: str) -> list[tuple]:
    """Each stored value's bytes, as HEX() gives them (no driver conversion in between)."""
    columns = "raw, big, words, old, at, day, stamp, doc, amount, ratio, flags"
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT id, {', '.join(f'HEX({c})' for c in columns.split(', '))} FROM odd_values ORDER BY id")
            return list(cur.fetchall())
    finally:
        conn.close()


def _next_id(url: str) -> int:
    return read(url, "SELECT auto_increment FROM information_schema.tables WHERE table_schema = DATABASE() AND "
                     "table_name = 'odd_values'")[0][0]


def _engine_with_odd_values(url: str, engine_db: Path) -> None:
    build_1_0_0(url, engine_db)
    asyncio.run(_upgrade_to_head(url))
    _add_odd_values(url)


async def _upgrade_to_head(url: str) -> None:
    from wizard import schema
    from wizard.db import connect, write_transaction

    async with connect(parse_url(url)) as conn:
        async with write_transaction(conn):
            await schema.upgrade(conn, "head", stamp="0001")


def test_without_the_clients_the_backup_is_the_wizards_own_dump_proven_and_byte_exact(
        mysql_url: str, mysql_server: str, engine_db: Path, tmp_path: Path, no_clients: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _engine_with_odd_values(mysql_url, engine_db)
    before, values = _checksums(mysql_url), _odd_values(mysql_url)
    assert values[0][1] == EVERY_BYTE.hex().upper() and values[0][6] == b"0000-00-00".hex().upper()
    events: list = []
    done = asyncio.run(commands.backup(parse_url(mysql_url), tmp_path / "state", events.append))
    record, path = done.record, Path(done.record.path)
    (warned,) = [e.message for e in events if isinstance(e, Warn)]
    assert warned.startswith(f"mysqldump is not installed in {no_clients} (WIZARD_MYSQL_BIN): the backup is the "
                             "wizard's own dump") and warned.endswith("for mysqldump's")
    assert record.kind == stream_dump.KIND and record.revision == "0004"
    assert dict(record.row_counts)["odd_values"] == 3 and dict(record.row_counts)["executions"] == 300
    assert "restored into a scratch database: 6 tables, their definitions equal" in record.check
    assert path.stat().st_mode & 0o777 == 0o600 and sha256_file(path) == record.sha256
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == stream_dump.FORMAT and lines[-2:] == [stream_dump.COMPLETED, b""]
    assert b"FOREIGN_KEY_CHECKS=0" in lines[8] and b"SQL_MODE='NO_AUTO_VALUE_ON_ZERO'" in lines[9]
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    assert read(mysql_url, "SHOW DATABASES LIKE 'wizard\\_proof\\_%'") == []
    # Restored through the driver (no client), and by the real mysql client as an operator would.
    for how in ("driver", "mysql client"):
        scratch = next(fresh := fresh_database(mysql_server))
        try:
            if how == "driver":
                asyncio.run(stream_dump.load(path, parse_url(scratch)))
            else:
                u = make_url(scratch)
                with open(path, "rb") as dump:
                    subprocess.run([shutil.which("mariadb") or "mysql", "-h", u.host, "-P", str(u.port or 3306),
                                    "-u", u.username, u.database], stdin=dump, check=True)
            assert _checksums(scratch) == before, how
            assert _odd_values(scratch) == values, how
            assert _next_id(scratch) == _next_id(mysql_url) == 10, how
        finally:
            next(fresh, None)


def test_a_file_not_in_the_streamed_format_is_refused_before_anything_runs(mysql_url: str, tmp_path: Path) -> None:
    good = [stream_dump.FORMAT, b"CREATE TABLE planted (id INT);", stream_dump.COMPLETED]
    cases = {"mysqldump's": [b"-- MariaDB dump 10.19", *good[1:]],
             "cut short": good[:2],
             "a statement over two lines": [good[0], b"CREATE TABLE planted (", b"id INT);", good[2]],
             "not UTF-8": [good[0], b"CREATE TABLE planted (id INT COMMENT '\xe9');", good[2]]}
    for name, lines in cases.items():
        path = tmp_path / f"{name}.sql"
        path.write_bytes(b"\n".join(lines) + b"\n")
        with pytest.raises(StepError, match="not restoring it without the mysql client"):
            asyncio.run(stream_dump.load(path, parse_url(mysql_url)))
        assert read(mysql_url, "SHOW TABLES") == [], name


def test_a_dump_the_server_stops_is_one_line(mysql_url: str, tmp_path: Path) -> None:
    """A table gone between the listing and the dump (named here, never there): StepError with the server's line."""
    path = tmp_path / "dump.sql"
    with pytest.raises(StepError, match=r"the wizard's own dump of .* failed: ERROR 1146: Table .*gone.* doesn't exist"):
        asyncio.run(stream_dump.write(parse_url(mysql_url), ["gone"], path))


def test_rollback_of_an_upgrade_without_the_clients_restores_every_value(mysql_url: str, engine_db: Path,
                                                                        tmp_path: Path, no_clients: Path) -> None:
    build_1_0_0(mysql_url, engine_db)
    _add_odd_values(mysql_url)
    engine = _checksums(mysql_url, (*ENGINE, "odd_values"))
    values = _odd_values(mysql_url)
    state = str(tmp_path / "state")
    upgraded = wizard("upgrade", "--db", mysql_url, "--yes", "--state-dir", state, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    assert "the backup is the wizard's own dump" in upgraded.stderr
    rolled = wizard("rollback", "--last", "--yes", "--state-dir", state, cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    assert "revision none recorded (1.0.0)" in " ".join(rolled.stdout.split())
    assert read(mysql_url, "SHOW TABLES LIKE 'alembic\\_version'") == []
    assert _checksums(mysql_url, (*ENGINE, "odd_values")) == engine
    assert _odd_values(mysql_url) == values





@pytest.mark.slow
def test_a_move_off_mariadb_without_the_clients_is_restored_from_its_own_dump(
        mysql_url: str, pg_url: str, engine_db: Path, tmp_path: Path, no_clients: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The move's backup is the wizard's own dump; a carry-back that goes wrong (the microseconds lost, as
    tests/test_rollback_mysql.py plants it) restores the source from it, through the driver, every value as it was
    (the odd ones in the engine's own columns: a move off MySQL carries the engine's tables only)."""
    build_1_0_0(mysql_url, engine_db)
    conn = _connect(mysql_url)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE workflows SET description = %s ORDER BY id LIMIT 1", (ODD_TEXT.replace("\x00", ""),))
            cur.execute("UPDATE workflows SET description = 'NULL' ORDER BY id DESC LIMIT 1")
            cur.execute("UPDATE executions SET error = NULL, started_at = %s ORDER BY id LIMIT 1", (LAST_INSTANT,))
    finally:
        conn.close()
    before = _checksums(mysql_url, ENGINE)
    folder = tmp_path / "engine"
    folder.mkdir()
    _off(mysql_url, pg_url, folder)
    (run,) = (folder / ".wizard" / "runs").iterdir()
    assert f'"kind": "{stream_dump.KIND}"' in (run / "journal.jsonl").read_text()
    # Its proof, the restore through the driver, ran beside the copy, and the switch waited for it.
    (proof,) = [r for r in load_run(folder / ".wizard").finished_steps() if r["step"] == "backup_check"]
    assert "restored into a scratch database" in proof["check"]
    _engine_writes_pg(pg_url)
    plant_lost_microseconds(monkeypatch)
    with pytest.raises(StepError, match="it differs from the target .* restored from the move's backup"):
        asyncio.run(rollback_run(load_run(folder / ".wizard"), lambda e: None, env_file=folder / ".env"))
    assert _checksums(mysql_url, ENGINE) == before

"""A SQLite file whose name holds '?', '#', '%' and a space: every step opens that very file, and no other.

A hand-built `file:` URI reads '?' as the start of its query and '#' as its fragment, so
`file:/x/we?ird #1%.db?mode=rw` opens (and, without mode, creates) `/x/we`. db.sqlite_uri escapes them.

And files a killed writer left: a hot rollback journal, committed frames in a -wal; each left as it was, and
a WAL-mode file in a folder SQLite cannot make its -shm in.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from test_cli_errors import WIZARD, wizard
from wizard.backup import sha256_file
from wizard.db import sqlite_uri

pytestmark = pytest.mark.slow  # odd paths and leftover journals, a wizard process each: `pytest -m slow` (CI runs it)

AWKWARD = "we?ird #1%.db"


def url_of(path: Path) -> str:
    """How an operator writes such a path in a URL: percent-escaped."""
    return "sqlite:///" + quote(str(path))


def test_sqlite_uri_names_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / AWKWARD
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    read_only = sqlite3.connect(sqlite_uri(path), uri=True)
    assert read_only.execute("SELECT x FROM t").fetchall() == [(1,)]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        read_only.execute("INSERT INTO t VALUES (2)")
    read_only.close()
    writable = sqlite3.connect(sqlite_uri(path, "rw"), uri=True)
    writable.execute("INSERT INTO t VALUES (2)")
    writable.commit()
    writable.close()
    immutable = sqlite3.connect(sqlite_uri(path, immutable=True), uri=True)
    assert immutable.execute("SELECT count(*) FROM t").fetchone() == (2,)
    immutable.close()
    with pytest.raises(sqlite3.OperationalError):  # mode=rw never makes a new file
        sqlite3.connect(sqlite_uri(tmp_path / "missing?.db", "rw"), uri=True)
    assert [p.name for p in tmp_path.iterdir()] == [AWKWARD]


def test_upgrade_verify_and_rollback_of_a_file_with_an_awkward_name(engine_db: Path) -> None:
    folder = engine_db.parent
    path = engine_db.rename(folder / AWKWARD)
    before = sha256_file(path)
    url = url_of(path)
    upgrade = wizard("upgrade", "--db", url, "--yes", cwd=folder)
    assert upgrade.returncode == 0, upgrade.stderr
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]
    conn.close()
    twin = folder / f"twin {AWKWARD}"  # verify takes two databases: the upgraded file and a copy of it
    shutil.copy(path, twin)
    same = wizard("verify", "--source", url_of(twin), "--target", url, cwd=folder)
    assert same.returncode == 0, same.stdout + same.stderr
    twin.unlink()
    rollback = wizard("rollback", "--last", "--yes", cwd=folder)
    assert rollback.returncode == 0, rollback.stderr
    assert sha256_file(path) == before
    assert sorted(p.name for p in folder.iterdir()) == [".wizard", AWKWARD]  # no `we` beside it


def test_a_move_from_a_file_with_an_awkward_name(engine_db: Path, pg_url: str) -> None:
    folder = engine_db.parent
    path = engine_db.rename(folder / AWKWARD)
    before = sha256_file(path)
    move = wizard("migrate", "--source", url_of(path), "--target", pg_url, "--yes", cwd=folder)
    assert move.returncode == 0, move.stderr
    assert "verified: 4 tables, 326 rows equal" in move.stdout, move.stdout
    assert sha256_file(path) == before
    assert sorted(p.name for p in folder.iterdir()) == [".wizard", AWKWARD]


def killed_writing(path: Path, *statements: str) -> None:
    """A process that runs `statements` on `path` and dies with os._exit: no rollback, no checkpoint, no close."""
    script = "import os, sqlite3, sys\nconn = sqlite3.connect(sys.argv[1], isolation_level=None)\n" \
             "for statement in sys.argv[2:]:\n    conn.execute(statement)\nos._exit(0)\n"
    subprocess.run([sys.executable, "-c", script, str(path), *statements], check=True)


def test_a_hot_journal_left_by_a_crash_is_refused_in_one_line_and_left_alone(engine_db: Path, pg_url: str) -> None:
    folder, before = engine_db.parent, sha256_file(engine_db)
    # journal_mode=DELETE, killed mid-transaction: its changed pages already in the file (the cache spilled), the
    # original pages in engine.db-journal, which that makes "hot"
    killed_writing(engine_db, "PRAGMA cache_size = 1", "BEGIN",
                   "UPDATE executions SET error = 'never committed ' || id, status = 'failed'")
    journal = folder / "engine.db-journal"
    assert journal.exists() and sha256_file(engine_db) != before  # mid-transaction on disk
    left = {p.name: sha256_file(p) for p in (engine_db, journal)}
    url = f"sqlite:///{engine_db}"
    for args in (["plan", "--source", url, "--target", pg_url], ["backup", "--source", url],
                 ["verify", "--source", url, "--target", pg_url],
                 ["migrate", "--source", url, "--target", pg_url, "--yes"]):
        done = wizard(*args, cwd=folder)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: {engine_db} has a hot journal beside it (engine.db-journal): a process writing it stopped in "
            f"the middle of a transaction, and SQLite undoes that the next time the file is opened for writing, which "
            f"the wizard never does to a source: keep the -journal file, open the database once (sqlite3 {engine_db} "
            f"'PRAGMA quick_check' as its owner), then run again"], done.stderr
        # plan used to open it read-write, and so rolled the transaction back itself
        assert {p.name: sha256_file(p) for p in (engine_db, journal)} == left, args[0]
    recovered = sqlite3.connect(engine_db)  # what the line says to do: the crashed transaction undone
    assert recovered.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    recovered.close()
    assert sha256_file(engine_db) == before and not journal.exists()
    move = wizard("migrate", "--source", url, "--target", pg_url, "--yes", cwd=folder)
    assert move.returncode == 0, move.stderr
    assert "verified: 4 tables, 326 rows equal" in move.stdout, move.stdout


def test_plan_leaves_a_wal_files_frames_where_they_are(engine_db: Path, pg_url: str) -> None:
    # committed frames left in the -wal: the last connection to close would checkpoint them into the file
    killed_writing(engine_db, "PRAGMA journal_mode = WAL", "PRAGMA wal_autocheckpoint = 0",
                   "UPDATE executions SET error = 'only in the wal'")
    wal = engine_db.with_name("engine.db-wal")
    left = {p.name: sha256_file(p) for p in (engine_db, wal)}
    done = wizard("plan", "--source", f"sqlite:///{engine_db}", "--target", pg_url, cwd=engine_db.parent)
    assert done.returncode == 0, done.stderr
    assert ["executions", "300", "engine"] in [line.split() for line in done.stdout.splitlines()], done.stdout
    # plan used to open it read-write, and so checkpointed the -wal into the file on closing
    assert {p.name: sha256_file(p) for p in (engine_db, wal) if p.exists()} == left


def test_a_wal_file_in_a_read_only_folder_is_refused_in_one_line(engine_db: Path, pg_url: str) -> None:
    """A read-only bind mount of its folder, in a mount namespace of the wizard's own (unshare -m), so the mount is
    never seen outside that process and goes with it."""
    data = engine_db.parent / "data"
    data.mkdir()
    source = engine_db.rename(data / "engine.db")
    killed_writing(source, "PRAGMA journal_mode = WAL", "PRAGMA wal_autocheckpoint = 0",
                   "UPDATE executions SET error = 'only in the wal'")
    data.joinpath("engine.db-shm").unlink()  # copied without it (with one, SQLite reads a read-only folder's file)
    mount = 'mount --bind data data && mount -o remount,ro,bind data && exec "$0" "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount, "true"], cwd=data.parent, capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only bind mount here: {probe.stderr.decode()[-300:]}")
    url = f"sqlite:///{source}"
    for args in (["plan", "--source", url, "--target", pg_url], ["backup", "--source", url],
                 ["verify", "--source", url, "--target", pg_url],
                 ["migrate", "--source", url, "--target", pg_url, "--yes"]):
        done = subprocess.run(["unshare", "-m", "sh", "-c", mount, str(WIZARD), *args], cwd=data.parent,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        # it used to be a traceback (plan, verify), or 'PRAGMA quick_check says: unable to open database file:
        # restore it from a backup first' (migrate)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [
            f"error: {source} is in WAL mode, and reading it needs engine.db-shm beside it, which SQLite cannot make "
            f"({data} is not writable here): copy the file and its -wal, if there is one, to a writable folder and "
            f"name that copy, or make the folder writable, then run again"], done.stderr
    assert sorted(p.name for p in data.iterdir()) == ["engine.db", "engine.db-wal"]

"""A SQLite file whose name holds '?', '#', '%' and a space: every step opens that very file, and no other.

A hand-built `file:` URI reads '?' as the start of its query and '#' as its fragment, so
`file:/x/we?ird #1%.db?mode=rw` opens (and, without mode, creates) `/x/we`. db.sqlite_uri escapes them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest

from test_cli_errors import wizard
from wizard.backup import sha256_file
from wizard.db import sqlite_uri

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
    same = wizard("verify", "--source", url, "--target", url, cwd=folder)
    assert same.returncode == 0, same.stdout + same.stderr
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

"""A PostgreSQL target made in an encoding other than UTF8 (createdb -E LATIN1): the first character outside it
stopped the copy half-way after a passing pre-flight (exit 1: character with byte sequence 0xc4 0x80 in encoding
"UTF8" has no equivalent in encoding "LATIN1"). SQL_ASCII, which stores the bytes unchecked, takes every value.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from fault_support import migrate, rows_lost, small_engine_file, the_run
from move_helpers import execute, tables_in

pytestmark = pytest.mark.slow  # whole moves and upgrades, a wizard process each: `pytest -m slow` (CI runs it)


@pytest.fixture
def encoded(pg_server: str):
    """Make a database in an encoding: encoded('LATIN1') -> its URL; each dropped after the test."""
    made = []

    def make(encoding: str) -> str:
        name = f"wizard_test_{encoding.lower()}_{uuid.uuid4().hex[:8]}"
        execute(pg_server, f"CREATE DATABASE \"{name}\" ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' "
                           f"TEMPLATE template0")
        made.append(name)
        return make_url(pg_server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)

    yield make
    for name in made:
        execute(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_target_not_in_utf8_is_refused_up_front(tmp_path: Path, encoded) -> None:
    source = small_engine_file(tmp_path / "engine.db", "UPDATE users SET username = 'Ādám' WHERE rowid = 1")
    latin1 = encoded("LATIN1")
    refused = migrate(source, latin1, tmp_path / "refused")
    database = make_url(latin1).database
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: pre-flight check 'encoding' failed: database {database} is encoded in LATIN1, which refuses every "
        "character outside it: move to a database made with CREATE DATABASE name ENCODING 'UTF8' TEMPLATE template0 "
        "(createdb -E UTF8 -T template0 name)")
    assert tables_in(latin1) == []
    sql_ascii = encoded("SQL_ASCII")
    moved = migrate(source, sql_ascii, tmp_path / "state")
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert rows_lost(source, sql_ascii, the_run(tmp_path / "state")) == 0

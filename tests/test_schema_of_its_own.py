"""Issue 15: a target schema of its own. A role that owns only schema `app` (no CREATE on the database, no
rights on public) gets the whole journey inside `app`, and public is left as it was."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from move_helpers import execute, fetch
from wizard import sample
from wizard.envfile import value_in
from wizard.schema import ENGINE_TABLES, VERSION_TABLE

WIZARD = Path(sys.executable).with_name("wizard")
IN_SCHEMA = "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1"


@pytest.fixture
def app_role(pg_url: str) -> Iterator[str]:
    """The test database with a role that owns schema app and may do nothing else; its URL (no schema in it)."""
    role = f"wizard_app_{uuid.uuid4().hex[:8]}"
    execute(pg_url, f"CREATE ROLE {role} LOGIN PASSWORD 'app-secret'",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC", f"REVOKE CREATE ON DATABASE {make_url(pg_url).database} "
            "FROM PUBLIC", f"CREATE SCHEMA app AUTHORIZATION {role}",
            "CREATE TABLE public.kept (id int PRIMARY KEY, note text)", "INSERT INTO public.kept VALUES (1, 'mine')")
    try:
        yield make_url(pg_url).set(username=role, password="app-secret").render_as_string(hide_password=False)
    finally:
        execute(pg_url, "DROP SCHEMA IF EXISTS app CASCADE")
        execute(make_url(pg_url).set(database="postgres").render_as_string(hide_password=False),
                f"DROP ROLE IF EXISTS {role}")


def wizard(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(WIZARD), *args], capture_output=True, text=True)
    assert done.returncode == 0, f"wizard {args[0]}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


@pytest.mark.slow  # over 15 s: run by `pytest -m slow`
def test_a_role_that_owns_only_schema_app_moves_upgrades_and_rolls_back_inside_it(app_role: str, pg_url: str,
                                                                                   tmp_path: Path) -> None:
    source = sample.build(tmp_path / "engine.db", executions=300, workflows=20, users=5)
    state, src = str(tmp_path / "state"), f"sqlite:///{source}"
    env = tmp_path / ".env"
    env.write_text(f"DATABASE_URL={src}\n")
    moved = wizard("migrate", "--source", src, "--target", app_role, "--schema", "app", "--yes", "--state-dir", state,
                   "--env-file", str(env))
    said = " ".join((moved.stdout + moved.stderr).split())  # rich wraps lines
    assert "rows equal" in said
    # .env's URL has no options (the engine's asyncpg takes none): the role's own search_path must find app.
    assert "ALTER ROLE" in said and "SET search_path = app" in said
    assert "options" not in value_in(env.read_bytes(), "DATABASE_URL")
    assert set(r[0] for r in fetch(pg_url, IN_SCHEMA, "app")) == {*ENGINE_TABLES, VERSION_TABLE}
    conn = sqlite3.connect(source)
    for table in ENGINE_TABLES:  # rows lost = 0 (the sample has nothing to quarantine)
        assert fetch(pg_url, f"SELECT count(*) FROM app.{table}")[0][0] == \
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.close()
    # The URL's own spelling of the schema does the same as --schema.
    in_app = make_url(app_role).update_query_dict({"options": "-csearch_path=app"}).render_as_string(
        hide_password=False)
    wizard("verify", "--source", src, "--target", in_app)
    wizard("upgrade", "--db", app_role, "--schema", "app", "--yes", "--state-dir", state)
    assert fetch(pg_url, "SELECT version_num FROM app.alembic_version")[0][0] == "0004"
    wizard("rollback", "--last", "--yes", "--state-dir", state, "--db", in_app)  # the upgrade
    assert fetch(pg_url, "SELECT version_num FROM app.alembic_version")[0][0] == "0001"
    wizard("verify", "--source", src, "--target", app_role, "--schema", "app")
    runs = sorted(p.name for p in (tmp_path / "state" / "runs").iterdir())
    wizard("rollback", "--run", runs[0], "--yes", "--state-dir", state, "--db", in_app)  # the move
    assert fetch(pg_url, IN_SCHEMA, "app") == []
    assert [r[0] for r in fetch(pg_url, IN_SCHEMA, "public")] == ["kept"]
    assert [tuple(r) for r in fetch(pg_url, "SELECT * FROM public.kept")] == [(1, "mine")]
    assert env.read_text() == f"DATABASE_URL={src}\n"

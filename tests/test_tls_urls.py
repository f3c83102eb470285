"""libpq's TLS parameters in a URL: one reading of them for asyncpg, for pg_dump's environment and for the
engine's .env, and the client key's password masked wherever the URL shows."""

from __future__ import annotations

import stat
from pathlib import Path

from wizard.backup import libpq_env
from wizard.envfile import database_url
from wizard.urls import parse_url

URL = ("postgresql://app:pw@db.example.com:5432/engine?sslmode=verify-full&sslrootcert=/etc/ca.crt"
       "&sslcert=/etc/client.crt&sslkey=/etc/client.key&sslpassword=key-S3cret")


def test_asyncpg_gets_every_tls_parameter_as_libpq_reads_them() -> None:
    kwargs = parse_url(URL).pg_connect_kwargs()
    assert kwargs["dsn"] == ("postgresql://?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt&sslcert=%2Fetc%2Fclient.crt"
                             "&sslkey=%2Fetc%2Fclient.key&sslpassword=key-S3cret")
    assert (kwargs["host"], kwargs["database"], kwargs["password"]) == ("db.example.com", "engine", "pw")


def test_pg_dump_gets_them_in_its_environment_and_the_keys_password_in_a_service_file_that_is_a_pipe() -> None:
    with libpq_env(parse_url(URL)) as env:
        assert {k: env[k] for k in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY")} == {
            "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/etc/ca.crt", "PGSSLCERT": "/etc/client.crt",
            "PGSSLKEY": "/etc/client.key"}
        service = Path(env["PGSERVICEFILE"])
        assert str(service).startswith("/dev/fd/") and stat.S_ISFIFO(service.stat().st_mode)
        assert env["PGSERVICE"] == "wizard" and service.read_text() == "[wizard]\nsslpassword=key-S3cret\n"
        assert not any("key-S3cret" in v for v in env.values())
    assert not service.exists()  # its descriptor closed


def test_the_client_keys_password_never_shows() -> None:
    shown = parse_url(URL).masked()
    assert "key-S3cret" not in shown and "pw@" not in shown
    assert shown == ("postgresql://app:***@db.example.com:5432/engine?sslcert=/etc/client.crt&sslkey=/etc/client.key"
                     "&sslmode=verify-full&sslpassword=***&sslrootcert=/etc/ca.crt")


def test_asyncpgs_spelling_is_read_as_libpqs() -> None:
    db = parse_url("postgresql+asyncpg://app@db:5432/engine?ssl=require")
    assert db.tls() == {"sslmode": "require"} and db.sync_str() == "postgresql://app@db:5432/engine?sslmode=require"


def test_the_env_spelling_goes_there_and_back(tmp_path: Path) -> None:
    """What the switch writes (DATABASE_URL ...?ssl=<mode>, PGSSLROOTCERT...) reads back as the same target."""
    settings = parse_url(URL).env_settings()
    assert settings["DATABASE_URL"] == "postgresql+asyncpg://app:pw@db.example.com:5432/engine?ssl=verify-full"
    env = tmp_path / ".env"
    env.write_text("".join(f'{k}="{v}"\n' for k, v in settings.items()))
    back = parse_url(database_url(env))
    assert back.tls() == {k: v for k, v in parse_url(URL).tls().items() if k != "sslpassword"}

"""Bad input through the real `wizard` script: exit 2, one line that says what to do, no traceback, nothing changed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from wizard.backup import sha256_file

WIZARD = str(Path(sys.executable).with_name("wizard"))


def wizard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([WIZARD, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)


def _assert_one_line_error(result: subprocess.CompletedProcess, code: int, says: str) -> None:
    assert "Traceback" not in result.stderr
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert says in lines[0]


def _commands(url: str) -> list[list[str]]:
    return [["plan", "--source", url], ["backup", "--source", url], ["upgrade", "--db", url, "--yes"]]


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path: Path, engine_db: Path) -> Path:
    """A folder with an engine database and a file that is not one; every file in it must stay as it is."""
    (tmp_path / "notes.db").write_text("these are notes, not a database\n")
    return tmp_path


SQLITE_CASES = [
    ("sqlite:///missing.db", "does not exist"),
    ("sqlite:///notes.db", "is not a SQLite database"),
    ("engine.db", "cannot read the source URL"),
    ("mysql://root@localhost/engine", "does not move"),
]


@pytest.mark.parametrize("url, says", SQLITE_CASES)
def test_bad_sqlite_input(workdir: Path, url: str, says: str) -> None:
    before = _files(workdir)
    for command in _commands(url):
        result = wizard(*command, cwd=workdir)
        _assert_one_line_error(result, 2, says.replace("source", "database") if command[0] == "upgrade" else says)
    assert _files(workdir) == before  # no .wizard either: a run never started


def test_unknown_revision(workdir: Path) -> None:
    before = _files(workdir)
    result = wizard("upgrade", "--db", "sqlite:///engine.db", "--to", "0099", "--yes", cwd=workdir)
    _assert_one_line_error(result, 2, "revision '0099' is not in the engine's history")
    assert _files(workdir) == before


def test_server_not_answering(workdir: Path) -> None:
    for command in _commands("postgresql://postgres@127.0.0.1:1/engine"):
        _assert_one_line_error(wizard(*command, cwd=workdir), 2, "no server answers there")
    assert not (workdir / ".wizard").exists()


def test_database_that_does_not_exist(workdir: Path, pg_server: str) -> None:
    url = make_url(pg_server).set(database="wizard_no_such_db").render_as_string(hide_password=False)
    for command in _commands(url):
        _assert_one_line_error(wizard(*command, cwd=workdir), 2, "database 'wizard_no_such_db' does not exist")
    assert not (workdir / ".wizard").exists()


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A throwaway server that checks passwords (the suite's usual server may trust everyone).

    pgserver's own cluster, with one role that must log in by scram-sha-256; outside
    pytest's basetemp for the reason conftest's pg_server gives.
    """
    pgserver = pytest.importorskip("pgserver")
    folder = Path(tempfile.mkdtemp(prefix="wizard-test-pw-"))
    data = folder / "data"
    server = pgserver.get_server(str(data), cleanup_mode="stop")
    try:
        hba = data / "pg_hba.conf"
        hba.write_text("local all wizard_pw scram-sha-256\nhost all wizard_pw all scram-sha-256\n" + hba.read_text())
        server.psql("CREATE ROLE wizard_pw LOGIN PASSWORD 'right-password';\n"
                    "CREATE DATABASE pwdb OWNER wizard_pw;\nSELECT pg_reload_conf();\n")
        yield make_url(server.get_uri()).set(username="wizard_pw", database="pwdb").render_as_string(False)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def test_wrong_password(workdir: Path, password_server: str) -> None:
    right = make_url(password_server).set(password="right-password").render_as_string(hide_password=False)
    ok = wizard("plan", "--source", right, cwd=workdir)  # the server does check: the right password gets in
    assert ok.returncode == 0 and "empty: none of the engine's tables" in ok.stdout, ok.stderr
    wrong = make_url(password_server).set(password="wrong-password").render_as_string(hide_password=False)
    for command in _commands(wrong):
        result = wizard(*command, cwd=workdir)
        _assert_one_line_error(result, 2, "the password was refused")
        assert "wrong-password" not in result.stderr + result.stdout
    assert not (workdir / ".wizard").exists()


def test_upgrade_without_yes_and_without_a_terminal_is_refused(workdir: Path) -> None:
    before = _files(workdir)
    result = wizard("upgrade", "--db", "sqlite:///engine.db", cwd=workdir)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "pass --yes" in result.stderr.strip().splitlines()[-1]
    assert _files(workdir) == before


def test_rollback_needs_to_be_told_which_run(workdir: Path) -> None:
    _assert_one_line_error(wizard("rollback", "--yes", cwd=workdir), 2, "--run ID")
    _assert_one_line_error(wizard("rollback", "--last", "--yes", cwd=workdir), 2, "no runs in")

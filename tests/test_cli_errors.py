"""Bad input through the real `wizard` script: exit 2, one line that says what to do, no traceback, nothing changed.

The bad inputs a move, a plan, a backup, an upgrade and a verification share (files that are not the engine's
database, URLs, servers, passwords, revisions, run ids) are in tests/faults/test_bad_input.py; these are the
headless commands' own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path: Path, engine_db: Path) -> Path:
    """A folder with an engine database and a file that is not one; every file in it must stay as it is."""
    (tmp_path / "notes.db").write_text("these are notes, not a database\n")
    return tmp_path


def test_upgrade_without_yes_and_without_a_terminal_is_refused(workdir: Path) -> None:
    before = _files(workdir)
    result = wizard("upgrade", "--db", "sqlite:///engine.db", cwd=workdir)
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "pass --yes" in result.stderr.strip().splitlines()[-1]
    assert _files(workdir) == before


def test_rollback_needs_to_be_told_which_run(workdir: Path) -> None:
    _assert_one_line_error(wizard("rollback", "--yes", cwd=workdir), 2, "--run ID")
    _assert_one_line_error(wizard("rollback", "--last", "--yes", cwd=workdir), 2, "no runs in")


def test_plan_with_a_schema_and_no_target_says_so(engine_db: Path) -> None:
    """--schema names the target's schema: without --target, plan ignored it and answered as if it were not given."""
    result = wizard("plan", "--source", f"sqlite:///{engine_db}", "--schema", "engine", cwd=engine_db.parent)
    _assert_one_line_error(result, 2, "--schema names the target's schema: give --target with it")

"""What the headless commands print, as an operator meets it at 80 columns and into a pipe: the real `wizard`
script on real SQLite files and the real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from test_cli_errors import WIZARD
from engine_data import build_pg_1_0_0
from wizard import sample


def wizard(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess:
    """The script with its stdout and stderr into pipes, as `wizard ... | cat` has them, COLUMNS set."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([WIZARD, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, env=env)


def _assert_fits(stdout: str, columns: int) -> None:
    for line in stdout.splitlines():
        assert not line.endswith(" "), f"padded: {line!r}"
        if "─" in line or line.startswith(" "):  # a table's line (a sentence in a pipe stays whole)
            assert len(line) <= columns, f"wider than {columns}: {line!r}"


def _rows(stdout: str, name: str) -> list[list[str]]:
    """The rows of `name`, one per table that lists it."""
    return [line.split() for line in stdout.splitlines() if line.startswith(name + " ")]


def test_move_and_verification_tables_fit_80_columns_whole_and_unpadded(engine_db: Path, pg_url: str) -> None:
    folder = engine_db.parent
    moved = wizard("migrate", "--source", "sqlite:///engine.db", "--target", pg_url, "--yes", cwd=folder)
    assert moved.returncode == 0, moved.stderr
    _assert_fits(moved.stdout, 80)
    # the move's table and the verification's, each with every figure whole: 300 executions copied and equal
    move_row, verify_row = _rows(moved.stdout, "executions")
    assert move_row[:6] == ["executions", "300", "300", "0", "300", "ok"]
    assert verify_row == ["executions", "300", "300", "0", "300", "0", "0", "0", "ok"]
    assert "quarant." in moved.stdout and "quarantin..." not in moved.stdout

    verified = wizard("verify", "--source", "sqlite:///engine.db", "--target", pg_url, cwd=folder)
    assert verified.returncode == 0, verified.stderr
    _assert_fits(verified.stdout, 80)
    assert _rows(verified.stdout, "executions") == [verify_row]

    # Narrower than the table: one block per table, every figure whole on its own line.
    narrow = wizard("verify", "--source", "sqlite:///engine.db", "--target", pg_url, cwd=folder, columns=40)
    assert narrow.returncode == 0, narrow.stderr
    _assert_fits(narrow.stdout, 40)
    block = narrow.stdout.split("\nexecutions\n")[1].splitlines()[:8]
    assert [line.split() for line in block] == [
        ["source", "300"], ["target", "300"], ["quarant.", "0"], ["equal", "300"], ["differ", "0"],
        ["only", "source", "0"], ["only", "target", "0"], ["status", "ok"]]


def test_upgrade_output_in_a_pipe_has_no_padded_line(engine_db: Path) -> None:
    result = wizard("upgrade", "--db", "sqlite:///engine.db", "--yes", cwd=engine_db.parent)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) > 5
    _assert_fits(result.stdout, 80)


def test_help_gives_each_command_one_whole_sentence_at_80_columns(tmp_path: Path) -> None:
    result = wizard("--help", cwd=tmp_path)
    listed = result.stdout.split("Commands:\n")[1].splitlines()
    assert len(listed) == 9
    for line in listed:
        assert len(line) <= 80 and re.fullmatch(r"  [a-z]+ +[A-Z][^.]*\.", line), line


def _reader_gone_at_once(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The script with a stdout whose reader has gone before the first line (`| head -0`): every write fails."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run([WIZARD, *args], cwd=cwd, stdout=writer, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    finally:
        os.close(writer)


@pytest.mark.slow  # over 15 s: run by `pytest -m slow`
def test_a_closed_output_ends_a_read_only_command_quietly_with_0(engine_db: Path, pg_url: str) -> None:
    folder = engine_db.parent
    assert wizard("migrate", "--source", "sqlite:///engine.db", "--target", pg_url, "--yes", "--json",
                  cwd=folder).returncode == 0
    upgraded = shutil.copy(engine_db, folder / "upgraded.db")
    assert wizard("upgrade", "--db", f"sqlite:///{upgraded}", "--yes", cwd=folder).returncode == 0
    for args in (["verify", "--source", "sqlite:///engine.db", "--target", pg_url, "--json"],
                 ["verify", "--source", "sqlite:///engine.db", "--target", pg_url],
                 ["plan", "--source", "sqlite:///engine.db"], ["status"], ["status", "--json"],
                 ["upgrade", "--db", "sqlite:///engine.db", "--sql"],
                 ["rollback", "--last"]):  # its plan is a display: nothing is asked, nothing undone
        result = _reader_gone_at_once(*args, cwd=folder)
        # progress may have gone to stderr; no word of a stop, an error or a question
        assert result.returncode == 0 and not re.search("stopped|error|refused|Undo", result.stderr), (args, result)
    runs = json.loads(wizard("status", "--json", cwd=folder).stdout)["runs"]
    assert [run["state"] for run in runs] == ["finished", "finished"]  # the upgrade was not rolled back


def test_a_refused_move_says_the_backup_it_announced_was_removed(tmp_path: Path, pg_url: str) -> None:
    sample.build_dirty(tmp_path / "dirty.db", executions=300)  # rows PostgreSQL will not take: the checks refuse
    result = wizard("migrate", "--source", "sqlite:///dirty.db", "--target", pg_url, "--yes", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    (backup,) = re.findall(r"^ok backup (\S+)", result.stderr, re.M)  # made beside the checks, announced
    assert not Path(backup).exists()
    assert f"removed the backup {backup}" in " ".join(result.stderr.split())


def _revision_comment(sql: str, rev: str) -> str:
    """The comment that stands for data revision `rev` in `wizard upgrade --sql`, its lines joined."""
    block = sql.split(f"-- {rev} rewrites ")[1].split("\n\n")[0]
    return " ".join(block.replace("\n-- ", " ").split())


def test_upgrade_sql_shows_what_each_data_revision_does_to_the_rows_there(engine_db: Path, pg_url: str) -> None:
    conn = sqlite3.connect(engine_db)
    with conn:  # one state the rewrite leaves alone, one that is not JSON (SQLite only: PostgreSQL refuses it)
        (first, state), second = conn.execute("SELECT id, state FROM executions ORDER BY id LIMIT 2").fetchall()
        conn.execute("UPDATE executions SET state = '{\"nodes\": []}' WHERE id = ?", (second[0],))
    build_pg_1_0_0(pg_url, engine_db)
    with conn:
        conn.execute("UPDATE executions SET state = '{not json' WHERE id = (SELECT max(id) FROM executions)")
    conn.close()
    node = next(iter(json.loads(state)["nodes"]))
    for url, changed, not_json in (("sqlite:///engine.db", 298, True), (pg_url, 299, False)):
        result = wizard("upgrade", "--db", url, "--sql", cwd=engine_db.parent)
        assert result.returncode == 0, result.stderr
        said = _revision_comment(result.stdout, "0004")
        assert said.startswith("executions.state in Python, 2,000 rows a batch: no SQL to show. Its rule: execution "
                               "nodes array: state.nodes from {id: {...}} to [{\"id\": id, ...}], order kept")
        assert f"On this database now: {changed} of its 300 rows change." in said
        assert ("1 hold text that is not JSON: they are left as they are." in said) is not_json
        # the example is the first row it changes, its node keyed by id before, an array item with its id after
        assert f"For example the row id {first} " in said
        assert f'before: {{"nodes": {{"{node}": {{' in said and f'after: {{"nodes": [{{"id": "{node}", ' in said
        assert "On this database now: 20 of its 20 rows change." in _revision_comment(result.stdout, "0003")

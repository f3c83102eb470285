"""Odd names and schemas (tests/odd_sources.py, NAME_ODDITIES) through the real `wizard migrate`: each ends in
a finished move that `wizard verify` passes with no row lost, or in a pre-flight refusal (exit 3) that names
the table and column, with nothing written to the target."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fault_support import first_line, wizard
from move_helpers import fetch, tables_in
from odd_sources import BY_NAME, NAME_ODDITIES, Oddity, build
from wizard.db import quote
from wizard.move.pgnames import pg_name


def _source(tmp_path: Path, oddity: Oddity) -> Path:
    return build(tmp_path / "x.db", oddity)


def _migrate(source: Path, target: str, state: Path, oddity: Oddity, *extra: str):
    reflected = [] if oddity.engine else ["--reflected"]
    return wizard("migrate", "--source", f"sqlite:///{source}", "--target", target, "--yes", "--state-dir",
                  str(state), *reflected, *extra)


def _carried_counts(path: Path) -> dict[str, int]:
    """Rows per table of the source, but virtual tables and their shadow tables (not carried, by design)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[1] for r in conn.execute("PRAGMA main.table_list")
                 if r[2] == "table" and not r[1].startswith("sqlite_")]
        engine = "executions" in names
        return {n: conn.execute(f"SELECT count(*) FROM {quote(n)}").fetchone()[0] for n in names
                if not (engine and n == "alembic_version")}
    finally:
        conn.close()


def _moved(source: Path, target: str, state: Path) -> tuple[int, dict]:
    """(rows lost, report.json) after `wizard verify` of the move's run passed."""
    (run,) = (state / "runs").iterdir()
    verified = wizard("verify", "--source", f"sqlite:///{source}", "--target", target, "--json",
                      "--state-dir", str(state), "--run", run.name)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    summary = json.loads(verified.stdout.splitlines()[-1])
    assert summary["ok"] and summary["tables"], summary["summary"]
    counts = _carried_counts(source)
    made = set(tables_in(target)) - {"alembic_version"}
    assert made == {pg_name(t) for t in counts} - {"alembic_version"}  # and nothing else: no virtual table
    lost = 0
    for table, n in counts.items():
        lost += max(0, n - fetch(target, f"SELECT count(*) FROM {quote(pg_name(table))}")[0][0])
    return lost, json.loads((run / "report.json").read_text())


@pytest.mark.slow  # a whole move per case: the matrix runs with -m slow, out of the default run
@pytest.mark.parametrize("oddity", NAME_ODDITIES, ids=[o.name for o in NAME_ODDITIES])
def test_odd_source_moves_whole_or_is_refused_up_front(oddity: Oddity, tmp_path: Path, pg_url: str,
                                                       survived) -> None:
    source = _source(tmp_path, oddity)
    before = source.read_bytes()
    result = _migrate(source, pg_url, tmp_path / "state", oddity)
    shown = f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert source.read_bytes() == before
    where = " (in an engine database)" if oddity.engine else ""
    if not oddity.expect.refused:
        assert result.returncode == 0, shown
        lost, report = _moved(source, pg_url, tmp_path / "state")
        assert lost == 0
        planned = wizard("plan", "--source", f"sqlite:///{source}", "--json")
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout.splitlines()[-1])
        plan_said = plan["not_carried"] + [f"{a} is {b}" for a, b in plan["renamed"].items()]
        for words in oddity.expect.named:
            assert any(words in line for line in plan_said), plan_said
            assert any(words in note for note in report["notes"]), report["notes"]
        undone = wizard("rollback", "--run", report["run_id"], "--yes", "--state-dir", str(tmp_path / "state"))
        assert undone.returncode == 0, undone.stderr[-2000:]
        assert tables_in(pg_url) == []  # the rollback found every table the move made, under its name there
        said = f"; plan and the report name {', '.join(oddity.expect.named)}" if oddity.expect.named else ""
        survived(fault=f"an odd source{where}: {oddity.name}",
                 did=f"moved; `wizard verify` passed row by row{said}; rollback dropped every table it made",
                 rows_lost=lost)
    else:
        said = first_line(result.stderr)
        assert result.returncode == 3, shown
        for word in oddity.expect.named:
            assert word in result.stderr, shown
        assert tables_in(pg_url) == []
        survived(input=f"an odd source{where}: {oddity.name}", exit_code=3, message=said.removeprefix("error: "),
                 changed="nothing in the target (its tables checked), the source byte-identical")


def test_autoincrement_high_water_mark_is_the_next_id(tmp_path: Path, pg_url: str) -> None:
    """SQLite hands out 1001 after 1000 was given and deleted (sqlite_sequence); so must PostgreSQL."""
    oddity = BY_NAME["AUTOINCREMENT past the highest id"]
    source = _source(tmp_path, oddity)
    assert _migrate(source, pg_url, tmp_path / "state", oddity).returncode == 0
    assert fetch(pg_url, "INSERT INTO tickets (v) VALUES ('new') RETURNING id")[0][0] == 1001


def test_ids_of_zero_and_below_leave_the_next_id_at_one(tmp_path: Path, pg_url: str) -> None:
    """setval refuses a value below the sequence's minimum (1): the sequences step failed after the copy."""
    oddity = BY_NAME["ids of 0 and below only"]
    source = _source(tmp_path, oddity)
    moved = _migrate(source, pg_url, tmp_path / "state", oddity)
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert fetch(pg_url, "INSERT INTO credits (v) VALUES ('new') RETURNING id")[0][0] == 1


def test_defaults_that_translate_are_carried(tmp_path: Path, pg_url: str) -> None:
    oddity = BY_NAME['text default ""']
    source = _source(tmp_path, oddity)
    assert _migrate(source, pg_url, tmp_path / "state", oddity).returncode == 0
    fetch(pg_url, "INSERT INTO notes (id) VALUES (2)")
    assert [tuple(r) for r in fetch(pg_url, "SELECT body, n FROM notes WHERE id = 2")] == [("", 7)]

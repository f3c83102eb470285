"""Upgrade in place: consent for a 1.0.0 baseline, a proven backup first, one transaction, a journal."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine_data import build_pg_1_0_0, columns, counts, revision
from wizard.backup import sha256_file
from wizard.errors import BadInput, Interrupted, Refused
from wizard.events import StepFinished, StopRequest
from wizard.journal import INTERRUPTED, list_runs
from wizard.lock import StateLock
from wizard.upgrade import run_upgrade, upgrade_sql
from wizard.urls import parse_url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, engine_db: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{engine_db}"
    return build_pg_1_0_0(request.getfixturevalue("pg_url"), engine_db)


def _upgrade(url: str, state: Path, accept: bool = True, target: str | None = None, **kw):
    return asyncio.run(run_upgrade(parse_url(url), target, state, kw.pop("emit", lambda e: None), accept, **kw))


def test_a_1_0_0_database_is_upgraded_only_with_consent(engine_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    rows = counts(engine_url)
    with pytest.raises(Refused, match="pass --yes"):
        _upgrade(engine_url, state, accept=False)
    assert revision(engine_url) is None and not list_runs(state)

    result = _upgrade(engine_url, state)
    assert (result.from_revision, result.baseline, result.to_revision) == (None, "0001", "0004")
    assert result.applied == ["0002", "0003", "0004"]
    assert result.counts["0004"]["rows"] == 300
    assert revision(engine_url) == "0004" and "tags" in columns(engine_url, "workflows")
    assert {t: n for t, n in counts(engine_url).items() if t != "alembic_version"} == rows
    assert sha256_file(result.backup.path) == result.backup.sha256

    (run,) = list_runs(state)
    assert run.state() == "finished"
    steps = [(r["kind"], r.get("step")) for r in run.records() if r["kind"].startswith("step")]
    assert steps == [("step_started", "backup"), ("step_finished", "backup"), ("step_started", "schema")] + [
        (k, f"revision {rev}") for rev in ("0002", "0003", "0004") for k in ("step_started", "step_finished")
    ] + [("step_finished", "schema"), ("step_started", "end state"), ("step_finished", "end state")]
    undos = [r["undo"] for r in run.finished_steps() if r.get("undo")]
    assert [u["action"] for u in undos] == ["restore_database", "downgrade", "save_since"]
    assert undos[1] == {"action": "downgrade", "db": parse_url(engine_url).absolute().masked(), "from": "0004",
                        "to": "0001", "drop_version_table": True}


def test_stopping_between_revisions_rolls_the_whole_upgrade_back(engine_url: str, tmp_path: Path) -> None:
    """One transaction: the baseline and 0002 were applied when the stop came, and neither stays."""
    stop = StopRequest()

    def emit(event: object) -> None:
        if isinstance(event, StepFinished) and event.summary == "applied 0002":
            stop.set("test stop")

    with pytest.raises(Interrupted, match="transaction was rolled back"):
        _upgrade(engine_url, tmp_path / "state", emit=emit, stop=stop)
    assert revision(engine_url) is None
    assert "tags" not in columns(engine_url, "workflows")
    (run,) = list_runs(tmp_path / "state")
    assert run.state() == INTERRUPTED


def test_upgrade_to_a_revision_then_on_to_head(engine_db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{engine_db}"
    first = _upgrade(url, tmp_path / "state", target="0002")
    assert first.applied == ["0002"] and revision(url) == "0002"
    second = _upgrade(url, tmp_path / "state", accept=False)  # a recorded revision needs no consent
    assert (second.from_revision, second.applied, second.baseline) == ("0002", ["0003", "0004"], None)
    again = _upgrade(url, tmp_path / "state")
    assert again.run_id is None and again.applied == []
    assert len(list_runs(tmp_path / "state")) == 2
    with pytest.raises(BadInput, match="past 0002"):
        _upgrade(url, tmp_path / "state", target="0002")


def test_unknown_shapes_and_revisions_are_refused_before_any_run(engine_db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{engine_db}"
    with pytest.raises(BadInput, match="'0099' is not in the engine's history"):
        _upgrade(url, tmp_path / "state", target="0099")
    conn = sqlite3.connect(engine_db)
    conn.execute("ALTER TABLE workflows DROP COLUMN description")
    conn.commit()
    conn.close()
    before = sha256_file(engine_db)
    with pytest.raises(Refused, match="workflows lacks description"):
        _upgrade(url, tmp_path / "state")
    assert sha256_file(engine_db) == before and not list_runs(tmp_path / "state")


def test_a_second_run_on_the_same_state_dir_is_refused(engine_db: Path, tmp_path: Path) -> None:
    before = sha256_file(engine_db)
    with StateLock(tmp_path / "state").acquire("other-run", "migrate"):
        with pytest.raises(Refused, match="run other-run \\(migrate"):
            _upgrade(f"sqlite:///{engine_db}", tmp_path / "state")
    assert sha256_file(engine_db) == before and not list_runs(tmp_path / "state")


def test_sql_preview_changes_nothing(engine_db: Path) -> None:
    before = sha256_file(engine_db)
    sql = asyncio.run(upgrade_sql(parse_url(f"sqlite:///{engine_db}"), None))
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    assert "ALTER TABLE workflows ADD COLUMN tags JSON" in sql
    assert "0004 rewrites executions.state" in sql
    assert sha256_file(engine_db) == before

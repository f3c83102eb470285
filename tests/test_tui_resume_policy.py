"""A move interrupted and resumed from the TUI carries on as `wizard migrate --resume` does: with the orphan
policy, the --to and the copy-as-it-is its journal recorded, not the screens' defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_tui_journeys import pg_counts, sha256
from tui_support import make_app, press, screen_text, settle
from wizard import commands, sample
from wizard.errors import Interrupted
from wizard.events import StopRequest
from wizard.journal import list_runs, load_run
from wizard.move import run as move_run


async def test_a_move_with_null_resumed_from_the_tui_keeps_its_policy(tmp_path: Path, pg_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = sample.build_dirty(tmp_path / "dirty.db", executions=400)
    source_sha = sha256(db)
    state = tmp_path / "state"
    stop = StopRequest()
    copy_table = move_run.copy_table

    async def stop_while_copying(*args: object, **kw: object) -> object:
        stop.set("the test stops it")  # heeded at the copy's next checkpoint
        return await copy_table(*args, **kw)

    monkeypatch.setattr(move_run, "copy_table", stop_while_copying)
    options = commands.MoveOptions(source=commands.parse_url(f"sqlite:///{db}"), target=commands.parse_url(pg_url),
                                   state_dir=state, yes=True, on_orphans="null")
    with pytest.raises(Interrupted):
        await commands.migrate(options, stop=stop)
    monkeypatch.setattr(move_run, "copy_table", copy_table)
    (run,) = list_runs(state)
    assert run.started()["policy"] == "null"

    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert f"Resume run {run.id}" in screen_text(app)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        assert app.session.log.state == "done", app.session.log.error
    run = load_run(state, run.id)
    assert run.state() == "finished"
    assert list((run.folder / "nulled").glob("*.jsonl"))  # the null policy acted, as the run was begun with
    counts = await pg_counts(pg_url)
    assert counts["executions"] > 0
    assert sha256(db) == source_sha

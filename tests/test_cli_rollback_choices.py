"""`wizard rollback` lists what the TUI's confirmation lists: with rows written since the run, the path that keeps
them, and the other choice, restoring the backup anyway (the confirmation's r, the CLI's --restore-backup), with
what that loses and where it saves it first."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from engine_data import write
from test_faces_agree import rows_of
from wizard import commands, sample
from wizard.journal import load_run

WIZARD = str(Path(sys.executable).with_name("wizard"))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([WIZARD, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=300)


async def test_rollback_names_the_restore_backup_choice_the_tui_offers(tmp_path: Path) -> None:
    db = sample.build(tmp_path / "engine.db", executions=100, workflows=5, users=2)
    state = tmp_path / "state"
    assert (await asyncio.to_thread(cli, "upgrade", "--db", f"sqlite:///{db}", "--yes", "--state-dir", str(state), cwd=tmp_path)).returncode == 0
    await asyncio.to_thread(write, f"sqlite:///{db}", "INSERT INTO executions (id, workflow_id, status, state) SELECT 900 + id, workflow_id, "
                             "'new', '{\"nodes\": []}' FROM executions WHERE id <= 3")
    before = rows_of(db)

    said = await asyncio.to_thread(cli, "rollback", "--last", "--state-dir", str(state), cwd=tmp_path)
    assert said.returncode == 3, said.stderr  # no terminal to ask on: refused, nothing undone
    plan = await commands.rollback_plan(load_run(state))
    alternative = commands.rollback_alternative(plan)
    assert alternative is not None  # what the TUI's confirmation offers as r
    shown = " ".join(said.stdout.split())
    assert " ".join(plan.path().split()) in shown, shown
    assert " ".join(alternative.path().split()) in shown, shown
    assert "--restore-backup" in shown, shown
    assert rows_of(db) == before


def _as_an_older_wizard_left_it(run_folder: Path) -> None:
    """The run's journal without its end-state record, as a wizard before that record wrote it."""
    journal = run_folder / "journal.jsonl"
    kept = [line for line in journal.read_text().splitlines() if '"step": "end state"' not in line]
    journal.write_text("\n".join(kept) + "\n")


async def test_a_rollback_only_the_restore_gets_past_is_offered_as_r_by_the_tui(tmp_path: Path) -> None:
    """A finished run with no end state (an older wizard): what was written since cannot be measured, so keeping it
    is refused; the CLI says to pass --restore-backup, and the TUI offers that as r on its confirmation (no y), in
    words that name the key, not the flag. Both end with the file the backup holds."""
    from screens.confirm import ConfirmRollback
    from tui_support import make_app, press, screen_text, settle

    files = {}
    for face in ("cli", "tui"):
        (tmp_path / face).mkdir()
        files[face] = sample.build(tmp_path / face / "engine.db", executions=60, workflows=4, users=2)
    original = files["cli"].read_bytes()
    for face, db in files.items():
        state = tmp_path / face / "state"
        up = await asyncio.to_thread(cli, "upgrade", "--db", f"sqlite:///{db}", "--yes", "--state-dir", str(state),
                                     cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        _as_an_older_wizard_left_it(load_run(state).folder)

    cli_state = tmp_path / "cli" / "state"
    refused = await asyncio.to_thread(cli, "rollback", "--last", "--yes", "--state-dir", str(cli_state), cwd=tmp_path)
    assert refused.returncode == 3 and "--restore-backup" in refused.stderr, refused.stderr
    planned = await asyncio.to_thread(cli, "rollback", "--last", "--restore-backup", "--state-dir", str(cli_state),
                                      cwd=tmp_path)  # no terminal to ask on: the plan, then refused
    assert "was not measured" in " ".join(planned.stdout.split()), planned.stdout
    assert "did not finish" not in planned.stdout, planned.stdout  # it did: it recorded no end state
    done = await asyncio.to_thread(cli, "rollback", "--last", "--yes", "--restore-backup", "--state-dir",
                                   str(cli_state), cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    app = make_app(tmp_path / "tui" / "state", source_text=f"sqlite:///{files['tui']}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter", "ctrl+r")  # Roll back a run: the Runs screen, then its confirmation
        assert isinstance(app.screen, ConfirmRollback), screen_text(app)
        shown = " ".join(screen_text(app).split())
        assert "Restore backup (r)" in shown and "Roll back (y)" not in shown, shown
        assert "recorded no end state" in app.screen.question and "--" not in app.screen.question, app.screen.question
        assert "r on the rollback's confirmation" in app.screen.question
        assert app.screen.check_action("answer", (True,)) is False  # no y, not shown: keeping the rows is refused
        assert "Yes" not in screen_text(app).splitlines()[-1], screen_text(app)
        # Nothing was measured: the confirmation does not say that nothing was written.
        assert "was not measured" in app.screen.question and "nothing was written since" not in app.screen.question
        await press(pilot, "y")
        assert isinstance(app.screen, ConfirmRollback) and files["tui"].read_bytes() != original
        await press(pilot, "r")
        assert app.session.log.state == "done", app.session.log.error
        assert "rolled back and checked" in " ".join(screen_text(app).split()), screen_text(app)
    assert files["tui"].read_bytes() == files["cli"].read_bytes() == original
    assert load_run(tmp_path / "tui" / "state").state() == load_run(cli_state).state() == "rolled back"


async def test_nothing_written_since_is_said_once_by_both_faces(tmp_path: Path) -> None:
    """With nothing written since an upgrade, the plan said so twice in near-identical lines (the database's
    measurement, then the path): now once, naming the database, on the CLI's plan and the TUI's confirmation."""
    from screens.confirm import ConfirmRollback
    from tui_support import make_app, press, screen_text, settle

    db = sample.build(tmp_path / "engine.db", executions=60, workflows=4, users=2)
    original = db.read_bytes()
    state = tmp_path / "state"
    up = await asyncio.to_thread(cli, "upgrade", "--db", f"sqlite:///{db}", "--yes", "--state-dir", str(state),
                                 cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    said = await asyncio.to_thread(cli, "rollback", "--last", "--state-dir", str(state), cwd=tmp_path)
    assert said.returncode == 3, said.stderr  # no terminal to ask on: the plan, then refused
    shown = " ".join(said.stdout.split())
    once = f"nothing was written to {db} since the upgrade finished: the fast path (restore the backup) loses nothing"
    assert once in shown and shown.count("nothing was written") == 1, shown

    app = make_app(state, source_text=f"sqlite:///{db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "end", "enter", "ctrl+r")
        assert isinstance(app.screen, ConfirmRollback), screen_text(app)
        question = " ".join(app.screen.question.split())
        assert once in question and question.count("nothing was written") == 1, question
        await press(pilot, "y")
        assert app.session.log.state == "done", app.session.log.error
    assert db.read_bytes() == original

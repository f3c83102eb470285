"""The service words a remedy as the CLI takes it (a flag); the TUI shows the same sentence with its key and screen
(commands.in_keys), so its screens never name a flag the operator has no way to pass there."""

from __future__ import annotations

import pytest

from wizard import commands
from wizard.errors import BadInput
from wizard.move.preflight import TargetInfo
from wizard.rollback.run import Credentials


def test_a_target_holding_a_partial_copy_names_the_start_screens_resume() -> None:
    info = TargetInfo(server_version="15", can_create=True, tables=["users", "workflows"], run_id="20261208-x")
    said = info.held_problem
    assert "--resume it" in said  # the CLI's words
    shown = commands.in_keys(said)
    assert "--" not in shown and "resume it (Resume, on the Start screen), or roll it back" in shown, shown


def test_a_password_the_journal_masked_names_the_runs_screens_u(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(BadInput) as refused:
        Credentials().resolve("postgresql://app:***@127.0.0.1:5432/engine")
    assert "pass --db with the full URL" in refused.value.message
    shown = commands.in_keys(refused.value.message)
    assert "--db" not in shown and "give the full URL with u on the Runs screen" in shown, shown


def test_a_rollback_command_is_ctrl_r() -> None:
    said = "roll this run back (wizard rollback --run 20261208-004700-2c2519) and move again"
    assert commands.in_keys(said) == "roll this run back (Ctrl+R) and move again"

"""Switching the engine to a moved database: DATABASE_URL in .env pointed at the target.

The one place .env is switched: `point_at` journals the step with its undo
("restore_env", keyed "env_file": .env back byte for byte) before the file
changes, then rewrites it. A move with --env-file calls it with the backup of .env
it took at its backup step; the TUI moves without --env-file and lets the operator
look at the verification first, then `switch_env` backs .env up and switches on
their word, in the move's run, so ctrl+r and `wizard rollback` undo it with the
rest of the move.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wizard import envfile
from wizard.rollback import since
from wizard.backup import backup_env, keep_switched_env
from wizard.errors import BadInput
from wizard.events import Emit, StepFinished, StepStarted, ignore
from wizard.journal import Run
from wizard.lock import StateLock
from wizard.move.settings import KEPT_WHY, move_openai_key
from wizard.pgsession import without_options
from wizard.urls import DbUrl

STEP = "switch"


def preview(env_file: Path, target: DbUrl) -> tuple[str, str]:
    """The DATABASE_URL line as the file has it now, and as the switch will write it; masked."""
    from wizard.secrets import mask

    data = env_file.read_bytes()
    shown = without_options(target).async_url().render_as_string(hide_password=True)
    before = envfile.line_of(data, "DATABASE_URL")
    after = envfile.line_of(envfile.set_variable(data, "DATABASE_URL", shown), "DATABASE_URL")
    return mask(before if before is not None else "DATABASE_URL (not set)"), mask(after or "")


def point_at(run: Run, env_file: Path, target: DbUrl, backup: dict[str, Any]) -> str:
    """Point DATABASE_URL in `env_file` at `target` (every other byte kept), as `run`'s step "switch" whose undo
    restores `backup` (.env's, taken already); the sentence that says so."""
    # Absolute: a rollback run from another folder restores this file, not a .env where it runs.
    undo = {"action": "restore_env", "env_file": str(env_file.absolute()), "backup": backup}
    # The undo is journalled before .env changes, so a kill before step_finished is undone too.
    run.step_started(STEP, f"switch DATABASE_URL in {env_file}", undo=undo)
    data = env_file.read_bytes()
    for name, value in without_options(target).env_settings().items():
        data = envfile.set_variable(data, name, value)
    keep_switched_env(data, run.folder)
    envfile.write_atomically(env_file, data)
    run.step_finished(STEP, undo=undo, env_file=str(env_file))
    return f"DATABASE_URL in {env_file} is now {target.masked()}"


async def switch_env(run: Run, env_file: Path, target: DbUrl, emit: Emit = ignore) -> list[str]:
    """Back up .env, point DATABASE_URL at `target`, move OPENAI_API_KEY into its settings; what was done."""
    if not env_file.is_file():
        raise BadInput(f"{env_file} does not exist: point the engine at the target yourself")
    with StateLock(run.folder.parent.parent).acquire(run.id, "switch"):
        emit(StepStarted(STEP, f"point DATABASE_URL in {env_file} at the target"))
        said = [point_at(run, env_file, target, backup_env(env_file, run.folder).to_dict())]
        if run.started().get("reflected"):  # as the move with --env-file does: no engine settings to take the key
            if envfile.value_in(env_file.read_bytes(), "OPENAI_API_KEY"):
                said.append(f"OPENAI_API_KEY stays in {env_file}: {KEPT_WHY}")
            emit(StepFinished(STEP, "; ".join(said)))
            return said
        moved = await move_openai_key(env_file, target, run.folder)
        if moved is not None:
            said.append(moved.describe(env_file))
            run.step_finished("settings", result=said[-1])  # undone by the .env restore and the tables' drop
            await since.record_again(run, target, emit)
        emit(StepFinished(STEP, "; ".join(said)))
        return said

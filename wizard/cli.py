"""`wizard`: the headless subcommands, and the door to the TUI.

Thin: parse options, call the service layer, render its events (rich progress
on stderr, or JSON lines on stdout with --json), map errors to exit codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

from wizard.errors import ExitCode, Interrupted, WizardError
from wizard.events import Event, Progress, StepFailed, StepFinished, StepStarted, StopRequest, Warn
from wizard.secrets import mask

out = Console(highlight=False)  # data: stdout
err = Console(stderr=True, highlight=False)  # diagnostics and progress: stderr


class EventPrinter:
    """Renders service events: progress bars on stderr, or one JSON object a line on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._bars: RichProgress | None = None
        self._tasks: dict[tuple[str, str], Any] = {}

    def __call__(self, event: Event) -> None:
        if self.as_json:
            record = {"event": type(event).__name__, **dataclasses.asdict(event)}
            print(mask(json.dumps(record, default=str)), flush=True)
            return
        if isinstance(event, Progress):
            self._progress(event)
            return
        self.close_bars()
        if isinstance(event, StepStarted):
            err.print(f"[bold]>[/] {mask(event.title)}")
        elif isinstance(event, StepFinished):
            err.print(f"[green]ok[/] {mask(event.summary)}")
        elif isinstance(event, Warn):
            err.print(f"[yellow]warning[/] {mask(event.message)}")
        elif isinstance(event, StepFailed):
            err.print(f"[red]failed[/] {mask(event.error)}")

    def _progress(self, event: Progress) -> None:
        if self._bars is None:
            self._bars = RichProgress(
                TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err, transient=False,
            )
            self._bars.start()
        key = (event.step, event.item)
        rate = f"{event.rate:,.0f}/s" if event.rate else ""
        if key not in self._tasks:
            self._tasks[key] = self._bars.add_task(event.item, total=event.total, rate=rate)
        self._bars.update(self._tasks[key], completed=event.done, total=event.total, rate=rate)

    def close_bars(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
            self._tasks.clear()


def run(work: Callable[[EventPrinter, StopRequest], Awaitable[int | None]], as_json: bool = False) -> None:
    """Run one headless command: errors become one line and an exit code, never a traceback."""
    printer = EventPrinter(as_json)
    stop = StopRequest()

    async def main() -> int | None:
        loop = asyncio.get_running_loop()
        # A lost SSH session (SIGHUP) stops at the next checkpoint, like Ctrl+C.
        for sig, why in ((signal.SIGHUP, "terminal hung up"), (signal.SIGTERM, "terminated")):
            loop.add_signal_handler(sig, stop.set, why)
        return await work(printer, stop)

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        printer.close_bars()
        err.print("interrupted (Ctrl+C): nothing half-written was kept; `wizard status` shows the run")
        sys.exit(ExitCode.INTERRUPTED)
    except Interrupted as exc:
        printer.close_bars()
        err.print(mask(exc.message))
        sys.exit(ExitCode.INTERRUPTED)
    except WizardError as exc:
        printer.close_bars()
        if as_json:
            print(json.dumps({"event": "Error", "error": mask(exc.message), "exit_code": int(exc.exit_code)}))
        err.print(f"[red]error:[/] {mask(exc.message)}")
        sys.exit(exc.exit_code)
    printer.close_bars()
    sys.exit(code or ExitCode.OK)


state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where runs, journals and backups are kept (default ./.wizard, or WIZARD_STATE_DIR).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Events as JSON lines on stdout.")
env_file_option = click.option(
    "--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The engine's .env (default ./.env); DATABASE_URL in it is the default source.",
)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="engine-migration-wizard")
@env_file_option
@click.option("--source", help="Source database URL, for the wizard (default: DATABASE_URL from the .env file).")
@click.option("--target", help="Target PostgreSQL URL, for the wizard.")
@state_dir_option
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, source: str | None, target: str | None,
         state_dir: Path | None) -> None:
    """Move the workflow engine's database to PostgreSQL, upgrade it, roll it back.

    With no subcommand, opens the wizard (the TUI); the options here are the wizard's.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui, env_file=env_file, source=source, target=target, state_dir=state_dir)
    elif any(v is not None for v in (env_file, source, target, state_dir)):
        err.print(f"error: put the options after the subcommand: wizard {ctx.invoked_subcommand} --option ...")
        sys.exit(ExitCode.BAD_INPUT)


@main.command()
@env_file_option
@click.option("--source", help="Source database URL (default: DATABASE_URL from the .env file).")
@click.option("--target", help="Target PostgreSQL URL.")
@state_dir_option
def tui(env_file: Path | None, source: str | None, target: str | None, state_dir: Path | None) -> None:
    """Open the wizard."""
    require_terminal()
    from wizard.app import run_app

    sys.exit(run_app(env_file=env_file, source=source, target=target, state_dir=state_dir))


def require_terminal() -> None:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        err.print("error: the wizard needs a terminal; without one, use the headless commands (wizard --help)")
        sys.exit(ExitCode.BAD_INPUT)


@main.command()
@click.option("--executions", default=200_000, show_default=True, help="How many executions the sample holds.")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to build it (default: a new temporary folder).")
def demo(executions: int, folder: Path | None) -> None:
    """A sample engine database and a throwaway PostgreSQL, then the wizard, ready for the move."""
    require_terminal()
    from wizard.app import run_app
    from wizard.demo import prepare

    printer = EventPrinter(as_json=False)
    try:
        ready = asyncio.run(prepare(executions, folder, printer))
    except WizardError as exc:
        err.print(f"[red]error:[/] {mask(exc.message)}")
        sys.exit(exc.exit_code)
    err.print(f"demo folder: {ready.folder} (.env, engine.db, state); target: {mask(ready.target)}")
    sys.exit(run_app(env_file=ready.env_file, source=None, target=ready.target, state_dir=ready.state_dir))

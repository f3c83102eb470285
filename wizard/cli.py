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


@main.command("verify")
@click.option("--source", help="Source database URL (default: DATABASE_URL from the .env file).")
@click.option("--target", required=True, help="The database that should hold the source's rows.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Markdown report here, and its JSON alongside.")
@click.option("--run", "run_id", default=None, help="A move run: its quarantine and conversions count in.")
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable).")
@env_file_option
@state_dir_option
@json_option
def verify_command(source: str | None, target: str, report_file: Path | None, run_id: str | None,
                   tables: tuple[str, ...], env_file: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Compare the target with the source row by row, and its schema with its revision.

    Exit 0 when everything matches, 1 when anything differs, 2 on bad input.
    """
    from wizard import verify_report
    from wizard.envfile import DEFAULT_ENV_FILE, database_url
    from wizard.journal import load_run, resolve_state_dir
    from wizard.urls import parse_url
    from wizard.verify import load_quarantine, verify

    async def work(printer: EventPrinter, stop: StopRequest) -> int:
        src = parse_url(source or database_url(env_file or DEFAULT_ENV_FILE), "source")
        dst = parse_url(target, "target")
        run_folder = load_run(resolve_state_dir(state_dir), run_id).folder if run_id else None
        quarantined = load_quarantine(run_folder) if run_folder else None
        report = await verify(src, dst, printer, quarantined, list(tables) or None, stop=stop)
        printer.close_bars()
        if report_file:
            report_file.parent.mkdir(parents=True, exist_ok=True)
            written, _ = verify_report.write(report_file, report, verify_report.copy_facts(run_folder) if run_folder else None)
            err.print(f"report: {written}")
        if as_json:
            print(mask(json.dumps({"event": "VerifySummary", **report.to_dict()}, default=str)), flush=True)
        else:
            _print_verification(report, verify_report)
        return ExitCode.OK if report.ok else ExitCode.FAILED

    run(work, as_json)


def _print_verification(report: Any, rows: Any) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title="row-level verification", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, header in enumerate(rows.HEADERS):
        table.add_column(header, justify="left" if i in (0, len(rows.HEADERS) - 1) else "right", no_wrap=True)
    for row in rows.table_rows(report):
        table.add_row(*row[:-1], row[-1] if row[-1] == "ok" else f"[b red]{row[-1]}[/]")
    # A pipe or a file gets every column whole; a terminal gets its own width.
    (out if out.is_terminal else Console(highlight=False, width=120)).print(table)
    for f in report.schema:
        if f.status in ("fail", "warn"):
            out.print(f"[{'red' if f.status == 'fail' else 'yellow'}]schema {f.status}[/] {mask(f.detail)}")
    for v in report.tables:
        for d in v.diffs[:10]:
            what = ", ".join(c.column for c in d.columns) or d.kind.replace("_", " ")
            out.print(f"  {v.table} {d.pk!r}: {mask(what)}{': ' + mask(d.reason) if d.reason else ''}")
        more = v.different + v.only_source + v.only_target - min(len(v.diffs), 10)
        if more > 0:
            out.print(f"  ... and {more:,} more in {v.table} (--json or --report lists the first {len(v.diffs)})")
    rate = f", {report.rows_per_second:,.0f} rows/s" if report.rows_per_second else ""
    colour = "green" if report.ok else "red"
    out.print(f"[{colour}]{mask(report.summary())}[/] ({report.elapsed:.1f} s{rate})")


@main.command()
@click.option("--source", help="The engine's SQLite database (default: DATABASE_URL from the .env file).")
@click.option("--target", required=True, help="An empty PostgreSQL database: postgresql://user@host:5432/db.")
@click.option("--to", "to", default=None, help="After the move, upgrade the target to this revision (or head).")
@click.option("--yes", is_flag=True, help="Move without asking first.")
@click.option("--resume", is_flag=True, help="Carry on the interrupted move of this source to this target.")
@click.option("--jobs", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Tables copied, and indexes built, at once.")
@click.option("--on-orphans", type=click.Choice(["abort", "null", "quarantine"]), default=None,
              help="Rows PostgreSQL will not take as they are: abort (default, before anything is written), "
                   "null (clear a dangling nullable foreign key, quarantine the rest), quarantine.")
@env_file_option
@state_dir_option
@json_option
def migrate(source: str | None, target: str, to: str | None, yes: bool, resume: bool, jobs: int,
            on_orphans: str | None, env_file: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Move the engine's SQLite database to PostgreSQL: checks, backup, schema, copy, verify, switch .env.

    With --env-file, DATABASE_URL in it is switched to the target and OPENAI_API_KEY moves into the
    settings. Ctrl+C stops after the current chunk; --resume carries on from there.
    """
    from wizard.envfile import DEFAULT_ENV_FILE, database_url
    from wizard.move import MoveOptions, run_move
    from wizard.urls import parse_url

    async def work(printer: EventPrinter, stop: StopRequest) -> int:
        _stop_on_ctrl_c(stop)
        options = MoveOptions(
            source=parse_url(source or database_url(env_file or DEFAULT_ENV_FILE), "source"),
            target=parse_url(target, "target"), state_dir=state_dir, to=to, yes=yes, resume=resume, jobs=jobs,
            on_orphans=on_orphans, env_file=env_file, confirm=None if as_json else _confirm_move(printer),
        )
        result = await run_move(options, printer, stop)
        printer.close_bars()
        if as_json:
            print(mask(json.dumps({"event": "Summary", **result.to_dict()}, default=str)), flush=True)
        else:
            _print_move(result)
        return ExitCode.OK

    run(work, as_json)


def _stop_on_ctrl_c(stop: StopRequest) -> None:
    """Ctrl+C asks the copy to stop at its next checkpoint; a second one abandons the chunk in hand."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        err.print("[yellow]stopping after the current chunk[/] (Ctrl+C again to stop now)")
        stop.set("Ctrl+C")
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, first)


def _confirm_move(printer: EventPrinter) -> Callable[[Any], bool]:
    def confirm(report: Any) -> bool:
        printer.close_bars()
        if not sys.stdin.isatty():
            return False
        return click.confirm("Create the tables and copy the rows into the target now?", default=False, err=True)

    return confirm


def _print_move(result: Any) -> None:
    from rich import box
    from rich.table import Table

    report = result.report
    table = Table(title=f"move {result.run_id}", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("table", "source rows", "copied", "quarantined", "target rows", "status", "rows/s"):
        table.add_column(header, justify="left" if header in ("table", "status") else "right")
    for t in report.tables:
        table.add_row(t.table, f"{t.source_rows:,}", f"{t.copied:,}", f"{t.quarantined:,}",
                      f"{t.target_rows:,}" if t.target_rows is not None else "", t.status,
                      f"{t.rows_per_second:,.0f}" if t.rows_per_second else "")
    out.print(table)
    for note in report.notes:
        out.print(mask(note))
    out.print(f"report: {result.report_md}")

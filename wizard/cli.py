"""`wizard`: the headless subcommands, and the door to the TUI.

Thin: map click options onto the command layer (wizard.commands), render its
events (rich progress on stderr, or JSON lines on stdout with --json) and its
results, map errors to exit codes. It composes no service calls itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

from wizard import commands
from wizard.errors import BadInput, ExitCode, Interrupted, Refused, WizardError
from wizard.grid import Grid
from wizard.events import Event, Progress, StepFailed, StepFinished, StepStarted, StopRequest, Warn, ignore
from wizard.secrets import mask


class _Output:
    """sys.stdout or sys.stderr (looked up at each use, as Rich does), surviving the loss of what reads it.

    A lost SSH session makes every write to its terminal fail with EIO, sometimes before the SIGHUP is
    handled or with none sent, and a closed pipe fails with EPIPE. Either would turn into an error of the step
    in hand; instead the stream is silenced and `lost` (set by run()) asks the run to stop at its next
    checkpoint, as SIGHUP does. `closed`: its pipe's reader went (`wizard verify | head` has what it wanted)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost: Callable[[str], None] | None = None
        self.closed = False

    def _stream(self) -> Any:
        stream = getattr(sys, self.name)
        return getattr(stream, "rich_proxied_file", stream)  # under Rich's live display, the stream it proxies

    def write(self, text: str) -> int:
        try:
            return self._stream().write(text)
        except OSError as exc:
            self._failed(exc)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream().flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        if exc.errno not in (errno.EIO, errno.EPIPE):
            raise exc
        self.gone(terminal=exc.errno == errno.EIO)

    def gone(self, terminal: bool) -> None:
        """What reads this stream is gone (its terminal hung up, or its pipe closed): silence it, say so."""
        try:
            fd = self._stream().fileno()
        except (OSError, ValueError):  # not a real file (a test's capture): nothing to silence
            fd = None
        if fd is not None:
            _silence([fd, *_terminals()] if terminal else [fd])
        self.closed = self.closed or not terminal
        if self.lost is not None:
            self.lost("terminal hung up" if terminal else "output closed")

    # What Rich asks of its file besides writing. Nothing else is passed through: Rich takes a
    # `rich_proxied_file` it finds for the stream to write to, and would go round this one.
    def isatty(self) -> bool:
        return self._stream().isatty()

    def fileno(self) -> int:
        return self._stream().fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream(), "encoding", "utf-8")


class _Console(Console):
    """In a pipe or a file every line is written whole (a path is not wrapped at the width) and with no spaces
    at its end; tables still fit the width (a Grid lays itself out for it)."""

    def print(self, *objects: Any, **options: Any) -> None:
        if self.is_terminal:
            return super().print(*objects, **options)
        with self.capture() as captured:
            super().print(*objects, **{**options, "soft_wrap": True})
        self.file.write("\n".join(line.rstrip() for line in captured.get().split("\n")))


stdout, stderr = _Output("stdout"), _Output("stderr")
out = _Console(file=stdout, highlight=False)  # data: stdout
err = _Console(file=stderr, highlight=False)  # diagnostics and progress: stderr


class EventPrinter:
    """Renders service events: progress bars on stderr, or one JSON object a line on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._bars: RichProgress | None = None
        self._drawn_on_terminal = False
        self._tasks: dict[tuple[str, str], Any] = {}

    def __call__(self, event: Event) -> None:
        if self.as_json:
            record = {"event": type(event).__name__, **dataclasses.asdict(event)}
            print(mask(json.dumps(record, default=str)), file=stdout, flush=True)
            return
        if isinstance(event, Progress):
            self._progress(event)
            return
        self.close_bars()
        if isinstance(event, StepStarted):
            err.print(f"[bold]>[/] {escape(mask(event.title))}")
        elif isinstance(event, StepFinished):
            err.print(f"{'[green]ok[/]' if event.passed else '[red]failed[/]'} {escape(mask(event.summary))}")
        elif isinstance(event, Warn):
            err.print(f"[yellow]warning[/] {escape(mask(event.message))}")
        elif isinstance(event, StepFailed):
            err.print(f"[red]failed[/] {escape(mask(event.error))}")

    def _progress(self, event: Progress) -> None:
        if self._bars is None:
            self._bars = RichProgress(
                TextColumn("{task.description:<24}", markup=False), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err, transient=False,
            )
            self._bars.start()
            self._drawn_on_terminal = err.is_terminal
        elif self._drawn_on_terminal and not err.is_terminal:
            # A hung-up terminal stops answering isatty() before any write fails, and Rich's live display then
            # stops drawing without an error: the loss would go unseen until the step's next line.
            self._drawn_on_terminal = False
            stderr.gone(terminal=True)
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


def run(work: Callable[[EventPrinter, StopRequest], Awaitable[int | None]], as_json: bool = False,
        reads_only: bool = False) -> None:
    """Run one headless command: errors become one line and an exit code, never a traceback.

    `reads_only`: a command that changes nothing (plan, verify, status, upgrade --sql). When its reader goes
    (`| head` has what it wanted) it stops at its next checkpoint and exits 0 saying nothing, as `git log | head`
    does; a command that changes things stops at its checkpoint too, and says how to carry on (exit 130)."""
    printer = EventPrinter(as_json)
    stop = StopRequest()
    stdout.closed = stderr.closed = False

    def output_lost(why: str) -> None:
        if not stop.is_set():  # the first reason stands (a Ctrl+C before the terminal went)
            stop.set(why)

    async def main() -> int | None:
        loop = asyncio.get_running_loop()
        # A lost SSH session (SIGHUP, or a write that fails there first) stops at the next checkpoint, like Ctrl+C.
        loop.add_signal_handler(signal.SIGHUP, _hung_up, stop)
        stdout.lost = stderr.lost = output_lost
        loop.add_signal_handler(signal.SIGTERM, stop.set, "terminated")
        return await work(printer, stop)

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        printer.close_bars()
        err.print("interrupted (Ctrl+C): nothing half-written was kept; `wizard status` shows the run")
        sys.exit(ExitCode.INTERRUPTED)
    except Interrupted as exc:
        printer.close_bars()
        if reads_only and _reader_gone():
            sys.exit(ExitCode.OK)
        # One line, as written: it ends with the command that resumes, to be copied whole.
        err.print(mask(exc.message), soft_wrap=True, markup=False)
        sys.exit(ExitCode.INTERRUPTED)
    except WizardError as exc:
        printer.close_bars()
        if as_json:
            print(json.dumps({"event": "Error", "error": mask(exc.message), "exit_code": int(exc.exit_code)}),
                  file=stdout, flush=True)
        # One line whatever the width: logs and scripts read it whole.
        err.print(f"[red]error:[/] {escape(mask(exc.message))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    printer.close_bars()
    sys.exit(ExitCode.OK if reads_only and _reader_gone() else code or ExitCode.OK)


def _reader_gone() -> bool:
    return stdout.closed or stderr.closed


def _hung_up(stop: StopRequest) -> None:
    """SIGHUP: the terminal is gone. What is still printed (the bars closing, the line that says how to
    resume) would fail with EIO there, and turn a clean stop into a traceback and exit 1: output to a
    terminal goes to /dev/null from now on (the journal and `wizard status` keep what it said)."""
    _silence(_terminals())
    stop.set("terminal hung up")


def _terminals() -> list[int]:
    """Of stdout and stderr, those on a terminal (a hung-up tty no longer answers isatty(): its mode does)."""
    found = []
    for fd in (1, 2):
        try:
            if stat.S_ISCHR(os.fstat(fd).st_mode):
                found.append(fd)
        except OSError:
            pass
    return found


def _silence(fds: list[int]) -> None:
    """Point these descriptors at /dev/null: writes to them succeed and go nowhere."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in set(fds):
            os.dup2(null, fd)
    finally:
        os.close(null)


state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where runs, journals and backups are kept (default ./.wizard, or WIZARD_STATE_DIR).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Events as JSON lines on stdout.")
env_file_option = click.option(
    "--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The engine's .env (default ./.env); DATABASE_URL in it is the default source.",
)
schema_option = click.option(
    "--schema", default=None,
    help="The PostgreSQL schema the engine's tables are in (default: the URL's options=-csearch_path=..., else "
         "public).")


class _Commands(click.Group):
    """The subcommands; an option click cannot take is bad input in one line, like every other (exit 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            err.print(f"error: {exc.format_message()} (see `{where} --help`)", soft_wrap=True,
                      markup=False, highlight=False)
            sys.exit(ExitCode.BAD_INPUT)


@click.group(cls=_Commands, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="engine-migration-wizard")
@env_file_option
@click.option("--source", help="Source database URL, for the wizard (default: DATABASE_URL from the .env file).")
@click.option("--target", help="Target database URL (PostgreSQL, or MySQL/MariaDB), for the wizard.")
@state_dir_option
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, source: str | None, target: str | None,
         state_dir: Path | None) -> None:
    """Move the workflow engine's database to PostgreSQL or MySQL/MariaDB, upgrade it, roll it back.

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
@click.option("--target", help="Target database URL (PostgreSQL, or MySQL/MariaDB).")
@state_dir_option
def tui(env_file: Path | None, source: str | None, target: str | None, state_dir: Path | None) -> None:
    """Open the wizard."""
    require_terminal()
    from wizard.app import run_app

    try:
        commands.runs(commands.state_dir_of(state_dir))  # every screen lists them: said once, here, not as a crash
    except WizardError as exc:
        err.print(f"[red]error:[/] {escape(mask(exc.message))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(run_app(env_file=env_file, source=source, target=target, state_dir=state_dir))


def require_terminal() -> None:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        err.print("error: the wizard needs a terminal; without one, use the headless commands (wizard --help)")
        sys.exit(ExitCode.BAD_INPUT)


@main.command()
@click.option("--executions", default=200_000, show_default=True, help="How many executions the sample holds.")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to build it (default: a new temporary folder, removed on quit).")
@click.option("--target", default=None,
              help="A PostgreSQL server to make the demo's database on (default: 127.0.0.1:5432, else one of its own).")
def demo(executions: int, folder: Path | None, target: str | None) -> None:
    """Try the wizard on a sample database and a throwaway PostgreSQL.

    The sample engine database and an empty PostgreSQL database are made first, ready for the move.
    """
    require_terminal()
    from wizard.app import run_app

    printer = EventPrinter(as_json=False)
    try:
        ready = asyncio.run(commands.prepare_demo(executions, folder, printer, target))
    except WizardError as exc:
        err.print(f"[red]error:[/] {escape(mask(exc.message))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    # Each on a line of its own, never wrapped inside: paths and URLs are copied from here.
    err.print(f"demo folder (.env, engine.db, the state): {ready.folder}", soft_wrap=True, markup=False)
    err.print(f"target ({ready.server}): {mask(ready.target)}", soft_wrap=True, markup=False)
    banner = (f"[b]Demo[/]: the sample database below, and an empty PostgreSQL database "
              f"{commands.parse_url(ready.target).database} to move it to. Keys are in the footer; Ctrl+R undoes it all.")
    code = run_app(env_file=ready.env_file, source=None, target=ready.target, state_dir=ready.state_dir,
                   banner=banner)
    err.print(asyncio.run(commands.discard_demo(ready)), soft_wrap=True, markup=False)  # nothing is left behind
    sys.exit(code)


@main.command("verify")
@click.option("--source", help="Source database URL (default: DATABASE_URL from the .env file).")
@click.option("--target", required=True, help="The database that should hold the source's rows.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Markdown report here, and its JSON alongside.")
@click.option("--run", "run_id", default=None, help="A move run: its quarantine and conversions count in.")
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable).")
@schema_option
@env_file_option
@state_dir_option
@json_option
def verify_command(source: str | None, target: str, report_file: Path | None, run_id: str | None,
                   tables: tuple[str, ...], schema: str | None, env_file: Path | None, state_dir: Path | None,
                   as_json: bool) -> None:
    """Compare the target with the source, row by row.

    The target's schema is checked against its revision too. Exit 0 when everything matches, 1 when anything
    differs, 2 on bad input.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> int:
        src = commands.resolve_url(source, env_file, "source")
        dst = commands.in_schema(commands.parse_url(target, "target"), schema)
        run = commands.find_run(state_dir, run_id) if run_id else None
        done = await commands.verify(src, dst, printer, stop, run=run, tables=list(tables), report_file=report_file)
        printer.close_bars()
        if done.report_md is not None:
            err.print(f"report: {done.report_md}", markup=False)
        if as_json:
            summary = {"event": "VerifySummary", **done.report.to_dict()}
            print(mask(json.dumps(summary, default=str)), file=stdout, flush=True)
        else:
            _print_verification(done.report)
        return ExitCode.OK if done.report.ok else ExitCode.FAILED

    run(work, as_json, reads_only=True)


def _print_verification(report: Any) -> None:
    headers = commands.VERIFY_HEADERS
    table = Grid("row-level verification", *headers, numbers=headers[1:-1])
    for row in commands.verify_rows(report):
        table.add_row(*row[:-1], row[-1] if row[-1] == "ok" else (row[-1], "bold red"))
    out.print(table)
    for v in report.tables:
        if v.note:
            out.print(f"  {v.table}: {mask(v.note)}", markup=False)
    for f in report.schema:
        if f.status in ("fail", "warn"):
            out.print(f"[{'red' if f.status == 'fail' else 'yellow'}]schema {f.status}[/] {escape(mask(f.detail))}")
    for v in report.tables:
        for d in v.diffs[:10]:
            what = ", ".join(c.column for c in d.columns) or d.kind.replace("_", " ")
            out.print(f"  {v.table} {d.pk!r}: {mask(what)}{': ' + mask(d.reason) if d.reason else ''}", markup=False)
        more = v.different + v.only_source + v.only_target - min(len(v.diffs), 10)
        if more > 0:
            out.print(f"  ... and {more:,} more in {v.table} (--json or --report lists the first {len(v.diffs)})",
                      markup=False)
    rate = f", {report.rows_per_second:,.0f} rows/s" if report.rows_per_second else ""
    colour = "green" if report.ok else "red"
    out.print(f"[{colour}]{escape(mask(report.summary()))}[/] ({report.elapsed:.1f} s{rate})")


@main.command()
@click.option("--source", help="The engine's database, SQLite or MySQL/MariaDB (default: DATABASE_URL from the .env "
                                "file).")
@click.option("--target", required=True, help="An empty database: postgresql://user@host:5432/db, or from SQLite "
                                              "mysql://user@host:3306/db.")
@click.option("--to", "to", default=None, help="After the move, upgrade the target to this revision (or head).")
@click.option("--yes", is_flag=True, help="Move without asking first.")
@click.option("--resume", is_flag=True, help="Carry on the interrupted move of this source to this target.")
@click.option("--jobs", type=click.IntRange(commands.JOBS[0], commands.JOBS[-1]), default=2, show_default=True,
              help="Tables copied, and indexes built, at once.")
@click.option("--on-orphans", type=click.Choice(list(commands.ORPHAN_POLICIES)), default=None,
              help="Rows the target will not take as they are: " + "; ".join(
                  f"{name}: {meaning}" for name, meaning in commands.ORPHAN_POLICIES.items())
              + f" (default {commands.DEFAULT_POLICY}).")
@click.option("--reflected", is_flag=True,
              help="The source holds none of the engine's tables (another app's database): copy its tables as "
                   "they are, with the type map `wizard plan` shows.")
@schema_option
@env_file_option
@state_dir_option
@json_option
def migrate(source: str | None, target: str, to: str | None, yes: bool, resume: bool, jobs: int,
            on_orphans: str | None, reflected: bool, schema: str | None, env_file: Path | None, state_dir: Path | None,
            as_json: bool) -> None:
    """Move the engine's database to PostgreSQL or MySQL/MariaDB.

    SQLite to PostgreSQL or MySQL/MariaDB, or MySQL/MariaDB to PostgreSQL. Checks, backup, schema, copy, verification, then the .env switch. With --env-file, DATABASE_URL in it is switched to the target and OPENAI_API_KEY moves into the
    settings. Ctrl+C stops after the current chunk; --resume carries on from there.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> int:
        _stop_on_ctrl_c(stop)
        options = commands.MoveOptions(
            source=commands.resolve_url(source, env_file, "source"),
            target=commands.in_schema(commands.parse_url(target, "target"), schema), state_dir=state_dir, to=to, yes=yes, resume=resume, jobs=jobs,
            on_orphans=on_orphans, env_file=env_file, reflected=reflected,
        )
        if not as_json:
            options.confirm = _confirm_move(printer, options)
        result = await commands.migrate(options, printer, stop)
        printer.close_bars()
        if as_json:
            _print_json("Summary", result.to_dict())
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


def _confirm_move(printer: EventPrinter, options: Any) -> Callable[[Any], bool]:
    def confirm(report: Any) -> bool:
        printer.close_bars()
        if not sys.stdin.isatty():
            return False
        return _ask(commands.move_question(options, report))

    return confirm


def _print_move(result: Any) -> None:
    report = result.report
    numbers = ("source", "copied", "quarant.", "target", "rows/s")
    table = Grid(f"move {result.run_id}", "table", *numbers[:-1], "status", "rows/s", numbers=numbers)
    for t in report.tables:
        table.add_row(t.table, f"{t.source_rows:,}", f"{t.copied:,}", f"{t.quarantined:,}",
                      f"{t.target_rows:,}" if t.target_rows is not None else "", t.status,
                      f"{t.rows_per_second:,.0f}" if t.rows_per_second else "")
    out.print(table)
    if result.verification is not None:
        _print_verification(result.verification)
    for note in commands.move_notes(result):
        out.print(note, markup=False)
    out.print(f"report: {result.report_md}", markup=False)


# --- plan, backup, upgrade, rollback, status: the foundation's commands ---


def _confirm(question: str, refusal: str) -> None:
    """Ask on the terminal; with no terminal, or on a no, refuse (exit 3) with `refusal`."""
    if not sys.stdin.isatty():
        raise Refused(f"no terminal to ask on: {refusal}")
    if not _ask(question):
        raise Refused("nothing was changed: the operator said no")


def _ask(question: str) -> bool:
    """y or n to `question` (the command layer's, the TUI's too): its lines but the last wrapped at word breaks
    to the terminal (click's prompt would be cut mid-word by the terminal), the last one asked."""
    *said, asked = question.split("\n")
    if said:
        err.print("\n".join(said), markup=False, highlight=False)
    return click.confirm(asked, default=False, err=True)


def _print_json(event: str, data: Any) -> None:
    print(mask(json.dumps({"event": event, **data}, default=str)), file=stdout, flush=True)


@main.command("plan")
@click.option("--source", help="The database to look at (default: DATABASE_URL from the .env file).")
@click.option("--target", help="A PostgreSQL or MySQL/MariaDB database to move to, to look at as well.")
@schema_option
@env_file_option
@state_dir_option
@json_option
def plan_command(source: str | None, target: str | None, schema: str | None, env_file: Path | None, state_dir: Path | None,
                 as_json: bool) -> None:
    """Show what a run would do, and change nothing.

    The engine, its tables and row counts, the schema's revision, the pending revisions.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> None:
        if schema is not None and not target:  # it names the target's schema: alone it would be ignored
            raise BadInput("--schema names the target's schema: give --target with it")
        report = await commands.plan(commands.resolve_url(source, env_file, "source"),
                                     commands.in_schema(commands.parse_url(target, "target"), schema) if target
                                     else None)
        if as_json:
            _print_json("Plan", report.to_dict())
        else:
            _print_plan(report)

    run(work, as_json, reads_only=True)


def _print_plan(report: Any) -> None:
    human_size = commands.human_size
    for role, info in (("source", report.source), ("target", report.target)):
        if info is None:
            continue
        out.print(f"[bold]{role}[/] {escape(mask(info.url))}")
        out.print(f"  {info.engine}, {human_size(info.size) if info.size is not None else '?'}; schema: {info.schema}",
                  markup=False)
        tables = Grid("", "table", "rows", "kind", numbers=("rows",))
        for name, rows in info.tables.items():
            tables.add_row(name, f"{rows:,}",
                           "other (not the engine's)" if name in info.other_tables else "engine")
        out.print(tables)
    pending = Grid(f"pending revisions, up to head {report.head}", "revision", "what it does", "how")
    for rev in report.pending:
        pending.add_row(rev.id, rev.description, "record only (baseline)" if rev.record_only else "apply")
    if report.pending:
        out.print(pending)
    else:
        out.print(f"pending revisions: none (head is {report.head})")
    if report.carried:
        carried = Grid("tables the engine's history does not know, as the move creates them (type map below)",
                       "table", "column", "SQLite type", "PostgreSQL type")
        for t in report.carried:
            for i, c in enumerate(t.columns):
                carried.add_row(t.name if i == 0 else "", c.name, c.sqlite, c.postgres)
        out.print(carried)
        type_map = Grid("the type map", "SQLite declared type", "PostgreSQL type", "why")
        for m in report.type_map:
            type_map.add_row(m["sqlite"], m["postgres"], m["why"])
        out.print(type_map)
    for name, target in report.renamed.items():
        out.print(f"[yellow]note[/] {escape(name)} is {escape(target)} in PostgreSQL (63 bytes of a name at most)")
    for line in report.not_carried:
        out.print(f"[yellow]note[/] {escape(line)}")
    for note in report.notes:
        out.print(f"[yellow]note[/] {escape(mask(note))}")


@main.command("backup")
@click.option("--source", help="The database to back up (default: DATABASE_URL from the .env file).")
@env_file_option
@state_dir_option
@json_option
def backup_command(source: str | None, env_file: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Back up a database, proven, in a run folder of its own.

    SQLite: an online backup checked by integrity_check; PostgreSQL: pg_dump, checked by listing it; MySQL/MariaDB:
    mysqldump (the wizard's own dump when the clients are missing), proven by a restore into a scratch database.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> None:
        done = await commands.backup(commands.resolve_url(source, env_file, "source"), state_dir, printer, stop)
        printer.close_bars()
        if as_json:
            _print_json("Backup", done.to_dict())
        else:
            _print_backup(done.run_id, done.record)

    run(work, as_json)


def _print_backup(run_id: str, record: Any) -> None:
    human_size = commands.human_size
    table = Grid(f"backup (run {run_id})", "what", "")
    for name, value in (("source", record.source), ("file", record.path), ("size", human_size(record.size)),
                        ("sha256", record.sha256), ("check", record.check),
                        ("revision", record.revision or "none recorded")):
        table.add_row(name, mask(str(value)))
    out.print(table)


@main.command("upgrade")
@click.option("--db", "db_url", help="The database to upgrade (default: DATABASE_URL from the .env file).")
@click.option("--to", "to", default=None, help="The revision to upgrade to (default: head).")
@click.option("--sql", is_flag=True, help="Print the SQL the upgrade would run, and change nothing.")
@click.option("--yes", is_flag=True, help="Upgrade (and record a 1.0.0 baseline) without asking.")
@schema_option
@env_file_option
@state_dir_option
@json_option
def upgrade_command(db_url: str | None, to: str | None, sql: bool, yes: bool, schema: str | None, env_file: Path | None,
                    state_dir: Path | None, as_json: bool) -> None:
    """Back up a database, then apply its pending revisions.

    The revisions run in one transaction; --sql shows what each would do and changes nothing.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> None:
        db = commands.in_schema(commands.resolve_url(db_url, env_file, "database"), schema)
        if sql:
            shown = await commands.upgrade_sql(db, to, emit=ignore if as_json else printer)  # stdout: the SQL alone
            printer.close_bars()
            print(mask(shown), end="", file=stdout, flush=True)
            return

        def confirm(plan: Any) -> bool:
            if not as_json:
                _print_upgrade_plan(plan)
            if not yes:  # the question the TUI's a asks
                _confirm(commands.upgrade_question(plan), f"pass --yes to upgrade {mask(str(db))} to {plan.target}")
            return True

        result = await commands.upgrade(db, to, state_dir, printer, stop, confirm)
        printer.close_bars()
        if result.run_id is None:
            err.print(f"{mask(str(db))} is at {result.to_revision}: nothing to do")
        elif as_json:
            _print_json("Upgrade", commands.upgrade_summary(result))
        else:
            _print_upgrade(result)

    run(work, as_json, reads_only=sql)


def _print_upgrade_plan(plan: Any) -> None:
    table = Grid(f"upgrade {mask(str(plan.db))} from {commands.upgrade_start(plan)} to {plan.target}", "revision", "what it does")
    for rev in plan.pending:
        table.add_row(rev.id, rev.description)
    out.print(table)
    out.print(f"the wizard backs it up first, then applies {plan.how}", markup=False)


def _print_upgrade(result: Any) -> None:
    table = Grid(f"upgrade run {result.run_id}", "what", "")
    table.add_row("from", result.from_revision or f"1.0.0 (baseline {result.baseline} recorded)")
    table.add_row("to", result.to_revision)
    table.add_row("applied", ", ".join(result.applied) or "none")
    for label, counts in commands.upgrade_counts(result):
        table.add_row(label, counts)
    table.add_row("backup", mask(result.backup.describe()))
    out.print(table)
    out.print(f"undo it with: wizard rollback --run {result.run_id}")


@main.command("rollback")
@click.option("--run", "run_id", default=None, help="The run to undo (`wizard status` lists them).")
@click.option("--last", is_flag=True, help="Undo the most recent run.")
@click.option("--yes", is_flag=True, help="Roll back without asking.")
@click.option("--restore-backup", is_flag=True,
              help="Restore the backup even though rows were written since the run (saved to the run folder first).")
@click.option("--db", "db_url", default=None,
              help="The database's full URL, when the journal's masked one needs its password back.")
@env_file_option
@state_dir_option
@json_option
def rollback_command(run_id: str | None, last: bool, yes: bool, restore_backup: bool, db_url: str | None,
                     env_file: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Undo a run, keeping what was written since.

    Newest change first; each result is checked, and the check printed.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> None:
        if bool(run_id) == last:
            raise BadInput("say which run to undo: --run ID (`wizard status` lists them) or --last")
        the_run = commands.find_run(state_dir, run_id, last)
        env = commands.env_file_or_default(env_file)
        override = commands.parse_url(db_url, "--db") if db_url else None
        if not as_json:  # the read takes a while on a large database: say what the silence is
            err.print(f"[bold]>[/] reading every row of the database run {the_run.id} left, to tell what was "
                      "written since (nothing changes before you confirm)")
        plan = await commands.rollback_plan(the_run, override, env, restore_backup)
        if as_json:
            _print_json("RollbackPlan", plan.to_dict())
        else:
            _print_since(plan)
            table = Grid(f"roll back run {the_run.id} ({the_run.journey}, {the_run.state()})", "#", "undo",
                         numbers=("#",))
            for i, line in enumerate(plan.described(), 1):
                table.add_row(str(i), line)
            out.print(table)
            alternative = commands.rollback_alternative(plan)
            if alternative is not None and not restore_backup:  # the TUI's confirmation offers it as r
                out.print(f"or restore the backup anyway (--restore-backup): {alternative.path()}", markup=False)
        if not yes:
            if _reader_gone():  # what read the plan went before its end: nothing to ask about, nothing undone
                return
            _confirm(f"Undo run {the_run.id} as listed?", f"pass --yes to roll back run {the_run.id}")
        lines = await commands.rollback(the_run, printer, override, env, restore_backup, expected=plan.described())
        printer.close_bars()
        if as_json:
            _print_json("Rollback", {"run_id": the_run.id, "verified": lines})
        else:
            for line in lines:
                out.print(f"[green]verified[/] {escape(mask(line))}")

    run(work, as_json)


def _print_since(plan: Any) -> None:
    """What was written since the run, per database and table, then the path the rollback takes."""
    for since in plan.since:
        if not since.any:
            continue
        table = Grid(mask(f"written to {since.where} since the {since.journey} finished"), "table", "added",
                     "changed", "removed", "e.g. keys", numbers=("added", "changed", "removed"))
        for t in since.tables:
            if t.any:
                d = t.to_dict()
                shown = ", ".join(json.dumps(k) for kind in ("added", "changed", "removed")
                                  for k in d["examples"][kind][:2])
                table.add_row(t.table, f"{d['added']:,}", f"{d['changed']:,}", f"{d['removed']:,}", shown)
        out.print(table)
    for line in plan.lines():
        out.print(escape(line))


@main.command("status")
@state_dir_option
@json_option
def status_command(state_dir: Path | None, as_json: bool) -> None:
    """List every run in the journal.

    Its id, journey, state, start and steps.
    """
    async def work(printer: EventPrinter, stop: StopRequest) -> None:
        found = await commands.status(state_dir)
        folder, runs = found.state_dir, found.runs
        if as_json:
            _print_json("Status", found.to_dict())
            return
        if not runs:
            out.print(f"no runs in {folder}")
            return
        table = Grid(f"runs in {folder}", "id", "journey", "state", "started", "steps")
        for r in runs:
            steps = f"{r['steps']} done" + (f", failed at {r['failed_step']}" if r["failed_step"] else "")
            table.add_row(r["id"], r["journey"], r["state"], r["started"][:19].replace("T", " "), steps)
        out.print(table)
        for run_id in found.rollbacks_unfinished():
            out.print(f"run {run_id}: its rollback stopped part-way; `wizard rollback --run {run_id}` goes on from "
                      f"where it stopped")

    run(work, as_json, reads_only=True)

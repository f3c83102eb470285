"""Runs: every run in the journal, its state and steps; rollback of any of them, with its proof."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, RichLog, Static

from screens.confirm import Ask
from screens.state import DONE, RUNNING
from screens.widgets import ProgressList, StepScreen, Wrapped, esc, write_new_lines
from wizard import commands
from wizard.commands import Run, parse_url
from wizard.errors import WizardError
from wizard.secrets import mask


class RunsScreen(StepScreen):
    STEP = "runs"
    OWNS_ROLLBACK_KEY = True  # ctrl+r is the highlighted run's (wizard.app)
    STEP_TITLE = "runs in the journal"
    runs: dict[str, Run] = {}  # filled on mount; the footer asks check_action before that
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("ctrl+r", "rollback_selected", "Roll back this run", id="rollback"),
        Binding("u", "database_url", "Database URL", id="db_url",
                tooltip="The full URL of the database the run changed, when its journal keeps it without the password"),
    ]

    def __init__(self, rollback: str | None = None, restore_backup: bool = False,
                 expected: list[str] | None = None) -> None:
        super().__init__()
        self.rollback_id = rollback  # confirmed already: start at once
        self.restore_backup = restore_backup  # the choice confirmed, and the actions shown for it
        self.expected = expected
        self.rolling_back: str | None = None

    def body(self) -> Iterable[Widget]:
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        # Every step the journal holds, then what ctrl+r would undo: scrolled, never cut, at 80x24.
        with VerticalScroll(id="details"):
            yield Wrapped("", id="steps")
            yield Wrapped("", id="undo")
        yield ProgressList(unit="", id="bars")
        yield RichLog(id="log", wrap=True, markup=False, max_lines=500, min_width=20)
        yield Wrapped("", id="status")

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Roll back"
        self._written = 0
        self._watching = False  # the rollback's own events, not the journey's last ones
        self.query_one("#log", RichLog).display = False
        self._fill()
        if self.rollback_id:
            self.select(self.rollback_id)
            self.start_rollback(self.rollback_id)

    def _fill(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        self.runs = {run.id: run for run in reversed(commands.runs(self.session.state_dir))}  # newest first
        # What `wizard status` says of each run (a run whose process is gone is interrupted, not running).
        summaries = {run.id: commands.run_summary(run) for run in self.runs.values()}
        rows = {key: (key, s["journey"], s["state"], s["started"][:19].replace("T", " "), str(s["steps"]))
                for key, s in summaries.items()}
        # Widths given, not measured: DataTable measures new rows only when it next goes idle, and a refill
        # after a rollback gets no event that would make it, so the cells stayed cut to their headers.
        labels = ("run", "journey", "state", "started", "steps")
        for i, label in enumerate(labels):
            table.add_column(label, width=max([len(label), *(len(row[i]) for row in rows.values())]))
        for key, row in rows.items():
            table.add_row(*map(Text, row), key=key)
        if not self.runs:
            self.query_one("#status", Static).update(f"No runs in {esc(self.session.state_dir)}.")
        table.focus()

    def select(self, run_id: str) -> None:
        table = self.query_one("#runs", DataTable)
        if run_id in self.runs:
            table.move_cursor(row=table.get_row_index(run_id))

    @property
    def selected(self) -> Run | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or table.cursor_row is None:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.runs.get(key)

    @on(DataTable.RowHighlighted, "#runs")
    def highlighted(self) -> None:
        run = self.selected
        if run is None:
            return
        finished = run.finished_steps()
        steps = [f"{i}. {r['step']}: {r.get('summary') or r.get('result') or 'done'}"
                 + (f" in {r['seconds']:,.1f} s" if isinstance(r.get("seconds"), (int, float)) else "")
                 for i, r in enumerate(finished, 1)]
        summary = commands.run_summary(run)
        if summary["failed_step"]:  # where and why, as `wizard status` says it
            steps.append(f"failed at {summary['failed_step']}: "
                         f"{commands.in_keys(summary['error'] or 'no reason recorded')}")
        self.query_one("#steps", Static).update(
            f"[b]The {len(finished)} steps of {esc(run.id)}[/]\n" + esc(mask("\n".join(steps) or "(none finished)")))
        undo, why_not = commands.undo_preview(run)
        self.query_one("#undo", Static).update(
            ("[b]ctrl+r measures what was written since; if nothing, it would[/]\n" if undo else "[b]ctrl+r[/]\n")
            + esc("\n".join(f"{i}. {a}" for i, a in enumerate(undo, 1)) or why_not))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rollback_selected":
            if self.rolling_back:
                return None
            run = self.selected if self.is_mounted else None
            # A run rolled back already (or with nothing to undo): the key never acts for it, so it is not shown.
            return True if run is not None and self._undoable(run) else False
        if action in ("back", "database_url"):
            return None if self.rolling_back else True
        return super().check_action(action, parameters)

    @staticmethod
    def _undoable(run: Run) -> bool:
        return bool(commands.undo_preview(run)[0])

    def action_rollback_selected(self) -> None:
        run = self.selected
        if run is not None and not self.rolling_back:
            self.wizard.confirm_rollback(run.id)

    def action_database_url(self) -> None:
        """The URL a rollback connects with (what `wizard rollback --db` takes): it must name the run's database."""
        if self.rolling_back:
            return

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                self.session.rollback_db = parse_url(text, "database")
            except WizardError as exc:
                self.query_one("#status", Static).update(f"[red]{esc(mask(exc.message))}[/]")
                return
            self.query_one("#status", Static).update(
                f"A rollback connects with {esc(self.session.rollback_db.masked())}.")

        current = self.session.rollback_db
        self.app.push_screen(Ask("The full URL of the database the run changed (its password too):",
                                 current.sync_str() if current else "", title="Database URL", url=True), answered)

    def action_back(self) -> None:
        if not self.rolling_back:
            self.wizard.go("start")

    @work(exclusive=True, exit_on_error=False, group="rollback", description="rollback")
    async def start_rollback(self, run_id: str) -> None:
        self.rolling_back = run_id
        self.refresh_bindings()
        self.query_one("#log", RichLog).display = True
        self.query_one("#bars", ProgressList).display = True
        self.query_one("#status", Static).update(f"Rolling back {esc(run_id)}...")
        await self.wizard.wait_for_journey()  # a running copy stops at its checkpoint first
        session = self.session
        run = commands.find_run(session.state_dir, run_id)
        self.wizard.start_run(lambda emit, stop: commands.rollback(
            run, emit, session.rollback_db, session.env_file, self.restore_backup, self.expected,
            typed=session.target), run=run)
        self._watching = True

    def redraw(self) -> None:
        if not self._watching:
            return
        log = self.session.log
        for step in log.steps.values():
            self.query_one("#bars", ProgressList).show(step.progress)
        self._written = write_new_lines(self.query_one("#log", RichLog), log.lines, self._written)
        if log.state == RUNNING:
            return
        status = self.query_one("#status", Static)
        if log.state == DONE:
            # The checks are what the operator reads now: the bars and the event log give them the room.
            self.query_one("#bars", ProgressList).display = False
            self.query_one("#log", RichLog).display = False
            checks = "".join(f"\n  ✓ {esc(mask(str(line)))}" for line in log.result or [])
            status.update(f"[green]Run {esc(self.rolling_back)} rolled back and checked:[/]{checks}\nEscape: start")
        else:
            status.update(f"[red]Rollback of {esc(self.rolling_back)} did not finish: {esc(log.error)}[/]")
        self.rolling_back = None
        self._watching = False
        self._fill()
        self.refresh_bindings()

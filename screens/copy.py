"""Copy: a bar per table, an overall bar, the phase, a live log; Pause and Cancel stop at a checkpoint."""

from __future__ import annotations

from typing import Iterable

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import RichLog, Static

from screens.state import DONE, FAILED, RUNNING, STOPPED
from screens.widgets import ItemProgress, ProgressList, StepScreen, Wrapped, esc, show, write_new_lines
from wizard.events import Progress

COPY_STEPS = ("copy", "indexes", "sequences")  # the service's steps this screen shows


class CopyScreen(StepScreen):
    STEP = "copy"
    STEP_TITLE = "copying the data"
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("p", "pause", "Pause", tooltip="Stop at the next checkpoint; resume later", id="pause"),
        Binding("c", "cancel", "Cancel", tooltip="Stop at the next checkpoint, then offer to roll back", id="cancel"),
        Binding("r", "resume", "Resume", tooltip="Carry on from the last checkpoint", id="resume"),
        Binding("n", "next", "Next", id="next"),
    ]

    def body(self) -> Iterable[Widget]:
        yield ItemProgress("all tables", id="overall")
        yield Wrapped("", id="phase")
        with VerticalScroll(id="tables"):
            yield ProgressList(id="bars")
        yield Wrapped("", id="steps")  # with the room (120x40): each step of the run, done or not
        yield RichLog(id="log", max_lines=1000, wrap=True, markup=False, min_width=20)
        yield Wrapped("", id="status")

    def on_mount(self) -> None:
        super().on_mount()
        self._written = 0
        self._cancelled = False
        self.on_resize()
        self.redraw()

    def redraw(self) -> None:
        log = self.session.log
        progress: dict[str, Progress] = {}
        phase = ""
        for name in COPY_STEPS:
            step = log.steps.get(name)
            if step is None:
                continue
            if name == "copy":
                progress = step.progress
            if step.title:
                phase = f"[b]Phase:[/] {name} · {esc(step.title)}"
        # A finished move is past them all, though its log may not hold each: onto MySQL there is no index step
        # (InnoDB builds them with the rows), and a resumed move did some before it stopped.
        if log.state == DONE or all(log.complete(name) for name in COPY_STEPS):
            phase = "[b]Phase:[/] done · rows copied, indexes built, sequences set"
        preflight = self.session.preflight
        if preflight is not None:  # every table has its bar from the start, at 0 until its copy begins
            progress = {**{t: Progress("copy", t, 0, rows) for t, rows in preflight.rows.items()}, **progress}
        self.query_one("#bars", ProgressList).show(progress)
        show(self.query_one("#steps", Static), self._steps())
        self.query_one("#overall", ItemProgress).show(self._overall(progress))
        show(self.query_one("#phase", Static), phase or "[b]Phase:[/] waiting for the copy to start")
        self._written = write_new_lines(self.query_one("#log", RichLog), log.lines, self._written)
        show(self.query_one("#status", Static), self._status())
        if self._cancelled and log.state != RUNNING:
            # Cancel = stop, then straight to the rollback confirmation.
            self._cancelled = False
            self.wizard.action_rollback()

    def on_resize(self) -> None:
        self.query_one("#steps").display = self.size.height >= 32

    def _steps(self) -> str:
        marks = {DONE: "[green]✓[/]", RUNNING: "[yellow]›[/]", FAILED: "[red]✗[/]"}
        return "\n".join(f"{marks.get(step.state, ' ')} {esc(name)}: {esc(step.summary or step.title)}"
                         for name, step in self.session.log.steps.items())

    def _overall(self, progress: dict[str, Progress]) -> Progress:
        """All tables as one: the pre-flight's row counts fill in for tables not yet started."""
        preflight = self.session.preflight
        totals = dict(preflight.rows) if preflight is not None else {}
        done = sum(p.done for p in progress.values())
        for item, p in progress.items():
            if p.total is not None:
                totals[item] = p.total
        rate = sum(p.rate or 0 for p in progress.values() if p.total is None or p.done < p.total) or None
        total = sum(totals.values()) if totals else None
        eta = (total - done) / rate if rate and total is not None else None
        return Progress("copy", "all tables", done, total, rate, eta)

    def _status(self) -> str:
        log = self.session.log
        if log.state == STOPPED:
            return (f"[yellow]Stopped at a checkpoint ({esc(log.error)}).[/] r resumes here, or later: "
                    "start `wizard` again and choose Resume. ctrl+r rolls back.")
        if log.state == DONE:
            verified = log.steps.get("verify")
            if verified is not None and verified.state == DONE:
                return "[green]Copied and verified row by row.[/] n: the verdict per table"
            return "[green]Copied; the row counts match.[/] n: the row-by-row verification"
        if log.state == RUNNING and self.session.stop.is_set():
            return "[yellow]Stopping at the next checkpoint...[/]"
        if log.state == RUNNING:
            return "p pause (resume later), c cancel (then roll back): both stop at a checkpoint"
        return self.run_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.session.log.state
        # Shown only when they can do something: the footer at 80 columns has no room for the rest.
        if action in ("pause", "cancel"):
            if state != RUNNING:
                return False
            return None if self.session.stop.is_set() else True
        if action == "resume":
            return state == STOPPED
        return super().check_action(action, parameters)

    def action_pause(self) -> None:
        self.session.stop.set("paused by the operator")
        self.redraw()
        self.refresh_bindings()

    def action_cancel(self) -> None:
        self._cancelled = True
        self.session.stop.set("cancelled by the operator")
        self.redraw()
        self.refresh_bindings()

    def action_resume(self) -> None:
        if self.session.log.state == STOPPED:
            self._written = 0
            self.query_one("#log", RichLog).clear()
            self.wizard.start_move(resume=True)
            self.redraw()
            self.refresh_bindings()

    def can_go_next(self) -> bool:
        # Differences stop the move at its verification: the next screen shows them row by row.
        log = self.session.log
        return log.state == DONE or (log.state == FAILED and log.steps.get("verify") is not None
                                       and log.steps["verify"].state == FAILED)

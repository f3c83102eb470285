"""The wizard's Textual app: journeys of screens over the service layer.

The app owns the session (screens.state.Session: the operator's choices, the
journey's RunLog, the run and whether it can be rolled back) and the journey's one
long command (a move, an upgrade, a rollback: wizard.commands) in a worker; it
records the command's events in the RunLog and tells the screen at most four times
a second what changed. Screens are views that call wizard.commands; they never
touch a database, and never import this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable

import rich
from textual import on
from textual.app import App
from textual.binding import Binding
from textual.clock import Clock
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState, get_current_worker

from screens.messages import RunChanged, RunEnded
from screens.state import DONE, FAILED, RUNNING, STOPPED, WAITING, Journey, RunLog, Session
from wizard import commands
from wizard.commands import Run, parse_url
from wizard.errors import ExitCode, Interrupted, WizardError
from wizard.events import Emit, Event, StepFailed, StepFinished, StopRequest
from wizard.secrets import mask

SCREENS_DIR = Path(__file__).resolve().parent.parent / "screens"
# At most four redraws a second, whatever the service sends: enough for a bar to move, and
# cheap for a slow SSH link and for the copy's threads, which share the interpreter with the drawing.
REDRAW_INTERVAL = 0.25

Work = Callable[[Emit, StopRequest], Awaitable[Any]]


def make_screen(step: str, **kwargs: Any) -> Screen:
    """The screen for a journey step, by name (imported here so screens never import each other)."""
    from screens.backup import BackupScreen
    from screens.connection import ConnectionScreen
    from screens.copy import CopyScreen
    from screens.finish import FinishScreen
    from screens.preflight import PreflightScreen
    from screens.runs import RunsScreen
    from screens.schema import SchemaScreen
    from screens.start import StartScreen
    from screens.verify import VerifyScreen

    screens: dict[str, type[Screen]] = {
        "start": StartScreen, "connection": ConnectionScreen, "preflight": PreflightScreen,
        "backup": BackupScreen, "schema": SchemaScreen, "copy": CopyScreen, "verify": VerifyScreen,
        "finish": FinishScreen, "runs": RunsScreen,
    }
    return screens[step](**kwargs)


class WizardApp(App[int]):
    CSS_PATH = [SCREENS_DIR / "app.tcss"]
    TITLE = "Engine migration wizard"
    ENABLE_COMMAND_PALETTE = False  # every action has a key in the footer
    BINDINGS = [
        Binding("ctrl+r", "rollback", "Roll back", tooltip="Undo everything this run changed", id="rollback"),
        # priority: a dialog (a modal) would keep every other app key from it, and Ctrl+Q did nothing until it was
        # answered; a dialog left unanswered has changed nothing, so leaving is safe there too.
        Binding("ctrl+q", "quit", "Quit", tooltip="Leave; a running copy stops at its next checkpoint", id="quit",
                priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, session: Session, progress_clock: Clock | None = None) -> None:
        super().__init__()
        self.session = session
        # Tests pass a MockClock so progress bars draw the same every time.
        self.progress_clock = progress_clock
        self._dirty: set[str] = set()
        self._redraw_pending = False
        self._journey_worker: Worker | None = None
        self._exit_after_stop: int | None = None
        self._leaving = False

    # --- start and stop ---

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        # A lost SSH session stops the copy at its next checkpoint, then the app exits; so does a
        # SIGINT from outside (kill -INT: Ctrl+C in the terminal is a key here), which would otherwise
        # cancel the copy mid-chunk and leave with 0.
        for sig, why in ((signal.SIGHUP, "terminal hung up"), (signal.SIGTERM, "terminated"),
                         (signal.SIGINT, "SIGINT")):
            try:
                loop.add_signal_handler(sig, self.stop_and_exit, why)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (some test runners): Ctrl+Q still stops cleanly
        self.push_screen(make_screen("start"))

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _fatal_error(self) -> None:
        """Textual's report of an unhandled exception (a bug), without the locals it lists for every frame by
        default: a password typed into the Connection screen is one of them. Its message masked too."""
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        trace = Traceback.extract(*sys.exc_info(), show_locals=False)
        for stack in trace.stacks:
            stack.exc_value = mask(stack.exc_value)
        report = Traceback(trace, width=None, suppress=[rich])
        self._exit_renderables.append(Segments(self.console.render(report, self.console.options)))
        self._close_messages_no_wait()

    def stop_and_exit(self, why: str = "quit") -> None:
        """Stop the running service call at its next checkpoint, then leave with 130."""
        if self.journey_running:
            self.session.stop.set(why)
            self._exit_after_stop = ExitCode.INTERRUPTED
            self.notify("Stopping at the next checkpoint; the run can be resumed later.", timeout=30)
        else:  # nothing to stop: a signal still says the wizard was interrupted, a quit that it was not
            self.leave(ExitCode.OK if why == "quit" else ExitCode.INTERRUPTED)

    def leave(self, return_code: int) -> None:
        """Exit once every other worker (a screen still reading a database) has ended.

        Each is cancelled once and waited for: left to the exit, a read of a SQLite file was cancelled twice
        (its screen's unmount, then the app's), the second time while SQLAlchemy closed the aiosqlite
        connection the first had interrupted, and the process never ended. A read ends at its current
        statement."""
        if not self._leaving:
            self._leaving = True
            self.run_worker(self._leave(return_code), group="leave", description="leave")

    async def _leave(self, return_code: int) -> None:
        me = get_current_worker()
        others = [w for w in self.workers if w is not me and not w.is_finished]
        for worker in others:
            if not worker.is_cancelled:  # once: a screen that closed has cancelled its own
                worker.cancel()
        running = [w for w in others if w.is_running]
        if running:
            self.notify("Leaving once this stops: " + ", ".join(w.description for w in running), timeout=30)
            await asyncio.gather(*(w.wait() for w in running), return_exceptions=True)
        self.exit(return_code=return_code)

    async def action_quit(self) -> None:
        self.stop_and_exit("quit")

    # --- navigation ---

    def begin(self, journey: Journey | None) -> None:
        """Start a journey from the Start screen (a fresh log; nothing has run yet)."""
        self.session.journey = journey
        self.session.preflight = self.session.verify = self.session.verify_report = None
        self.session.log = RunLog()
        self.session.run = None
        self.session.changed = False
        self.session.reflected, self.session.upgrade_to = False, None
        self.refresh_rollback()
        if journey is not None:
            self.go(journey.steps[0])

    def go(self, step: str, **kwargs: Any) -> None:
        self.switch_screen(make_screen(step, **kwargs))

    def step_after(self, step: str) -> str | None:
        journey = self.session.journey
        if journey is None or step not in journey.steps:
            return None
        i = journey.steps.index(step)
        return journey.steps[i + 1] if i + 1 < len(journey.steps) else None

    def step_before(self, step: str) -> str:
        journey = self.session.journey
        if journey is None or step not in journey.steps or journey.steps.index(step) == 0:
            return "start"
        return journey.steps[journey.steps.index(step) - 1]

    # --- the journey's service call ---

    @property
    def journey_running(self) -> bool:
        worker = self._journey_worker
        return worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def start_run(self, work: Work, run: Run | None = None) -> None:
        """Run `work(emit, stop)` (run_move, run_upgrade, a rollback) as the journey's one worker.

        `run` is the journal's run when it exists already (a rollback); else the run the
        service creates is found by its folder appearing.
        """
        session = self.session
        session.runs_before = frozenset(r.id for r in commands.runs(session.state_dir))
        session.stop = StopRequest()
        session.log = RunLog(state=RUNNING)
        session.run = run
        self._journey_worker = self.run_worker(
            self._run(work, session.stop), name="journey", group="journey", exclusive=True,
            exit_on_error=False, description="the journey's service call",
        )

    def move_options(self, resume: bool = False) -> commands.MoveOptions:
        """The move the session's choices make; `yes`: a face asks before it starts one (commands.move_question)."""
        session = self.session
        return commands.MoveOptions(
            source=parse_url(session.source_text, "source"), target=session.target, state_dir=session.state_dir,
            to=session.upgrade_to, yes=True, resume=resume, jobs=session.jobs, on_orphans=session.policy,
            reflected=session.reflected,
            env_file=None,  # the Finish screen switches .env, after the operator saw the verification
        )

    def start_move(self, resume: bool = False) -> None:
        options = self.move_options(resume)
        self.start_run(lambda emit, stop: commands.migrate(options, emit, stop))

    def start_upgrade(self, target_revision: str) -> None:
        """The upgrade the Schema screen showed (a 1.0.0 database's baseline said there too), on its Apply."""
        session = self.session
        db = parse_url(session.source_text, "database")
        self.start_run(lambda emit, stop: commands.upgrade(db, target_revision, session.state_dir, emit, stop))

    async def _run(self, work: Work, stop: StopRequest) -> None:
        try:
            result = await work(self.emit, stop)
        except Interrupted as exc:
            self.post_message(RunEnded(STOPPED, mask(exc.message)))
        except WizardError as exc:
            self.post_message(RunEnded(FAILED, commands.in_keys(mask(exc.message))))
        else:
            self.session.log.result = result
            self.post_message(RunEnded(DONE))

    def emit(self, event: Event) -> None:
        """The service's Emit: safe from any thread, never blocks it; coalesced into RunChanged."""
        if threading.get_ident() == self._thread_id:
            self._record(event)
        else:
            self._loop.call_soon_threadsafe(self._record, event)

    def _record(self, event: Event) -> None:
        self._dirty.add(self.session.log.feed(event))
        if isinstance(event, (StepFinished, StepFailed)):
            self._dirty.add("*changed")
        if not self._redraw_pending:
            self._redraw_pending = True
            self.set_timer(REDRAW_INTERVAL, self._redraw)

    def _redraw(self) -> None:
        self._redraw_pending = False
        dirty, self._dirty = self._dirty, set()
        if not self.screen_stack:  # a last timer can fire while the app closes
            return
        if "*changed" in dirty:
            self.refresh_rollback()
        self.screen.post_message(RunChanged(frozenset(dirty - {"*changed"})))

    @on(RunEnded)
    def _run_ended(self, message: RunEnded) -> None:
        log = self.session.log
        log.state, log.error = message.state, message.error
        if message.state == STOPPED:
            log.lines.append(f"stopped: {message.error}")
        elif message.error:
            log.lines.append(f"failed: {message.error}")
        self.refresh_rollback()
        if self._exit_after_stop is not None:
            self.leave(self._exit_after_stop)
            return
        self._redraw()
        self.screen.post_message(RunEnded(message.state, message.error))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_changed(event)

    def worker_changed(self, event: Worker.StateChanged) -> None:
        """The one path for what a service did not turn into a WizardError (a bug): say it, keep the app.

        Screens send their workers' changes here (the message does not bubble)."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        text = mask(f"unexpected error in {event.worker.description or event.worker.name}: "
                    f"{type(error).__name__}: {error}")
        if event.worker is self._journey_worker:
            self.post_message(RunEnded(FAILED, text))
        else:
            self.notify(text, title="Something went wrong", severity="error", timeout=60, markup=False)

    # --- rollback ---

    def refresh_rollback(self) -> None:
        """Find the run Ctrl+R rolls back, and whether it has changed anything rollback would undo.

        That is the journey's run once it started one; before that (the Start screen after Done, a journey
        not yet started) the newest run in the journal, so the key reaches it from every screen."""
        session = self.session
        if session.run is None and session.log.state != WAITING:
            new = [r for r in commands.runs(session.state_dir) if r.id not in session.runs_before]
            session.run = new[-1] if new else None
        last = session.run
        if last is None and session.log.state == WAITING:
            journal = commands.runs(session.state_dir)
            last = journal[-1] if journal else None
        changed = last is not None and bool(commands.undo_preview(last)[0])
        if (last and last.id, changed) != (session.last_run and session.last_run.id, session.changed):
            # Only on a change: every refresh rebuilds the footer, which under a busy copy stays blank until
            # the loop has time for it.
            session.last_run, session.changed = last, changed
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rollback":
            if isinstance(self.screen, ModalScreen) or self._screen_owns_rollback():
                return False  # a dialog's footer offers the dialog's keys only; the Runs screen has its own ctrl+r
            return True if self.session.changed else None
        return True

    def action_rollback(self) -> None:
        run = self.session.last_run
        if run is not None and self.session.changed and not isinstance(self.screen, ModalScreen) \
                and not self._screen_owns_rollback():
            self.confirm_rollback(run.id)

    def _screen_owns_rollback(self) -> bool:
        """The screen's ctrl+r rolls back the run it shows (the Runs screen's highlighted one): where it does not
        act for that run, the app's must not stand in for it with the session's own run."""
        return bool(getattr(self.screen, "OWNS_ROLLBACK_KEY", False))

    def confirm_rollback(self, run_id: str) -> None:
        """Measure what was written since the run, show it and exactly what will be undone; one more key
        rolls back, on the Runs screen."""
        self.run_worker(self._confirm_rollback(run_id), group="rollback-plan", exclusive=True, exit_on_error=False,
                        description="measure what was written since")

    async def _confirm_rollback(self, run_id: str) -> None:
        from screens.confirm import ConfirmRollback, Measuring

        session = self.session
        worker = get_current_worker()
        measuring = Measuring(run_id)
        await self.push_screen(measuring, lambda given_up: worker.cancel() if given_up else None)
        try:
            # A screen still reading the database (the Start screen's plan after Done) would count as another
            # session on it, and the rollback refuses to run beside one: let those reads end first.
            others = [w for w in self.workers if w is not worker and w is not self._journey_worker]
            await asyncio.gather(*(w.wait() for w in others if w.is_running), return_exceptions=True)
            run = commands.find_run(session.state_dir, run_id)
            # Passwords the journal masked come back from the URL given on the Runs screen, the target typed
            # in this session, or .env.
            # Where keeping the rows is refused and only restoring the backup anyway would go (the CLI's refusal that
            # says --restore-backup), the confirmation offers that alone, saying why.
            plan, alternative, refused = await commands.rollback_choices(run, session.rollback_db, session.env_file,
                                                                         typed=session.target)
        except WizardError as exc:
            self.notify(commands.in_keys(mask(exc.message)), title="Cannot roll back now", severity="warning",
                        timeout=20, markup=False)
            return
        finally:
            if measuring.is_active:
                measuring.dismiss(False)
        if not (plan or alternative).actions:
            self.notify("nothing to undo", title="Nothing to roll back", severity="warning", timeout=10, markup=False)
            return

        def answered(choice: bool | str | None) -> None:
            chosen = alternative if choice == "restore" else plan if choice else None
            if chosen is not None:
                self.go("runs", rollback=run_id, restore_backup=chosen.context.restore_backup,
                        expected=chosen.described())

        self.push_screen(ConfirmRollback(plan, alternative, commands.in_keys(mask(refused))), answered)

    async def wait_for_journey(self) -> None:
        """Ask the running service call to stop at its next checkpoint and wait for it."""
        worker = self._journey_worker
        if worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING):
            self.session.stop.set("rollback requested")
            await asyncio.gather(worker.wait(), return_exceptions=True)


def run_app(env_file: Path | None, source: str | None, target: str | None, state_dir: Path | None,
            banner: str = "") -> int:
    """Open the wizard; returns the process exit code."""
    env = commands.env_file_or_default(env_file)
    session = Session(
        state_dir=commands.state_dir_of(state_dir),
        env_file=env,
        source_text=source or (commands.database_url(env) if env is not None else None),
        source_from_env=source is None and env is not None,
        target_text=target,
        banner=banner,
    )
    app = WizardApp(session)
    app.run()
    if session.log.state == STOPPED and session.log.error:
        # Left at a checkpoint (Ctrl+Q, Ctrl+C): the shell says where the run is and how to carry on, when
        # there is still a terminal to say it on (a hang-up leaves none).
        with contextlib.suppress(OSError):
            print(f"stopped: {session.log.error}; or open the wizard again: its Start screen offers the resume",
                  file=sys.stderr, flush=True)
    return app.return_code or 0


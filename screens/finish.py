"""Finish: the .env change (applied only when confirmed), the checklist, an optional health check."""

from __future__ import annotations

from typing import Iterable

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from screens.confirm import Confirm
from screens.messages import EnvSwitched, HealthAnswered
from screens.widgets import StepScreen, Wrapped, esc
from wizard import commands
from wizard.errors import WizardError
from wizard.secrets import mask

NBSP = "\u00a0"  # keeps a - or + with its line when a long URL wraps

HEALTH_URL = "http://127.0.0.1:8000/api/version"
CHECKLIST = """[b]Now[/] (the engine's migration guide):
  1. Restart the engine: it reads DATABASE_URL and its schema at start.
  2. Test the API: GET /api/version, list workflows, run one workflow.
  3. Watch the logs for database errors for a while.
  4. Keep the run folder: its backups are the way back (ctrl+r)."""


class FinishScreen(StepScreen):
    STEP = "finish"
    STEP_TITLE = "switch over and check"
    switched = False
    switching = False  # the .env switch runs: leaving now would cancel it half way
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("a", "apply_env", "Switch .env", tooltip="Point DATABASE_URL at the target", id="apply_env"),
        Binding("h", "health", "Health check", tooltip="GET the engine's /api/version", id="health"),
        Binding("d", "done", "Done", tooltip="Back to the start", id="done"),
    ]

    def body(self) -> Iterable[Widget]:
        with VerticalScroll(id="finish"):
            yield Wrapped("", id="env")
            yield Wrapped("", id="notes")
            yield Wrapped(CHECKLIST, id="checklist")
            with Horizontal(id="health-row"):
                yield Label("Health URL ")
                yield Input(HEALTH_URL, id="health-url")
            yield Wrapped("", id="health")

    def on_mount(self) -> None:
        super().on_mount()
        self.switched = False
        self.switching = False
        self._show_env()
        self._show_notes()

    def _show_notes(self) -> None:
        """The move's report: where it is and what it says to do, as `wizard migrate` prints them."""
        notes = self.query_one("#notes", Static)
        result = self.session.log.result
        notes.display = self.moving and isinstance(result, commands.MoveResult)
        if notes.display:
            said = commands.move_notes(result, switch_offered=True)
            notes.update("".join(f"[yellow]note[/] {esc(line)}\n" for line in said)
                         + f"Report: {esc(result.report_md)}")

    @property
    def moving(self) -> bool:
        return self.session.journey is not None and self.session.journey.key == "move"

    def _env_lines(self) -> tuple[str, str] | None:
        env_file, target = self.session.env_file, self.session.target
        if not self.moving or env_file is None or target is None or not env_file.is_file():
            return None
        if self.switched:
            return self._switched_lines
        return commands.env_preview(env_file, target)

    def _show_env(self) -> None:
        env = self.query_one("#env", Static)
        lines = self._env_lines()
        if not self.moving:
            env.update("The database was upgraded in place; .env is unchanged.")
        elif lines is None:
            env.update("No .env file to switch: point the engine at the target yourself.")
        elif self.switched:
            done = "\n".join(f"  {esc(mask(line))}" for line in self._said[1:])  # [0] is the line above
            env.update(f"[green]Switched.[/] {esc(self.session.env_file)} now says:\n  {esc(lines[1])}\n{done}\n"
                       "The old file is in the run's folder; ctrl+r restores it byte for byte.")
        else:
            key = commands.env_key_preview(self.session.env_file, self.session.run)
            env.update(f"[b]{esc(self.session.env_file)}[/] will change (a applies, after a confirmation):\n"
                       f"  [red]-{NBSP}{esc(lines[0])}[/]\n  [green]+{NBSP}{esc(lines[1])}[/]"
                       + (f"\n  {esc(key)}" if key else ""))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply_env":
            if self._env_lines() is None or self.switched:
                return False  # nothing to switch (an upgrade, no .env), or done: the key will not act here
            return None if self.switching else True
        if action in ("done", "back") and self.switching:
            return None  # the switch finishes first: leaving would cancel it half way
        return super().check_action(action, parameters)

    def action_apply_env(self) -> None:
        lines = self._env_lines()
        if lines is None or self.switched:
            return
        key = commands.env_key_preview(self.session.env_file, self.session.run)
        question = (f"Rewrite DATABASE_URL in {self.session.env_file}?\n\n-{NBSP}{lines[0]}\n+{NBSP}{lines[1]}"
                    + (f"\n\n{key}" if key else ""))

        def answered(yes: bool | None) -> None:
            if yes:
                self.switching = True
                self.refresh_bindings()
                self.switch_env()

        self.app.push_screen(Confirm(question, yes_label="Switch (y)"), answered)

    @work(exclusive=True, exit_on_error=False, group="env", description="switch .env")
    async def switch_env(self) -> None:
        session = self.session
        try:
            before = commands.env_preview(session.env_file, session.target)
            said = await commands.switch_env(session.run, session.env_file, session.target)
            self.post_message(EnvSwitched((before, said)))
        except WizardError as exc:
            self.post_message(EnvSwitched(error=mask(exc.message)))

    @on(EnvSwitched)
    def env_switched(self, message: EnvSwitched) -> None:
        self.switching = False
        self.refresh_bindings()
        if message.error:
            self.query_one("#env", Static).update(f"[red]{esc(message.error)}[/]")
            return
        self.switched = True
        self._switched_lines, self._said = message.value
        self.session.banner = ""  # it described the start: a source to move, an empty target
        self.wizard.refresh_rollback()
        self._show_env()
        self.refresh_bindings()

    @on(Input.Submitted, "#health-url")
    def action_health(self) -> None:
        url = self.query_one("#health-url", Input).value.strip()
        self.query_one("#health", Static).update(f"GET {esc(url)} ...")
        self.check_health(url)

    @work(thread=True, exclusive=True, exit_on_error=False, group="health", description="health check")
    def check_health(self, url: str) -> None:
        try:
            self.post_message(HealthAnswered(commands.health(url)))
        except WizardError as exc:
            self.post_message(HealthAnswered(error=mask(exc.message)))

    @on(HealthAnswered)
    def health_answered(self, message: HealthAnswered) -> None:
        text = (f"[red]{esc(message.error)}[/]" if message.error
                else f"[green]The engine answers:[/] {esc(mask(message.value))}")
        self.query_one("#health", Static).update(text)

    def action_done(self) -> None:
        if not self.switching:
            self.wizard.go("start")

    def action_back(self) -> None:
        if not self.switching:
            super().action_back()

"""Start: what the wizard found (the source, any unfinished run), and which journey to take."""

from __future__ import annotations

from typing import Iterable

from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from screens.messages import PlanAnswered
from screens.state import MOVE, ROLLBACK, UPGRADE
from screens.widgets import StepScreen, Wrapped, esc
from wizard import commands
from wizard.commands import human_size, parse_url
from wizard.errors import WizardError
from wizard.secrets import mask


MOVABLE = ("SQLite", "MySQL", "MariaDB")  # the sources a move takes to PostgreSQL (plan's engine names)


class StartScreen(StepScreen):
    STEP = "start"
    STEP_TITLE = "what the wizard found"
    BINDINGS = [
        Binding("enter", "choose", "Choose", tooltip="Take the highlighted choice", id="choose", show=True),
        Binding("escape", "back", "Back", show=False, id="back"),
    ]

    def body(self) -> Iterable[Widget]:
        with VerticalScroll(id="found"):
            yield Wrapped(self.session.banner, id="banner")
            yield Wrapped("Reading the source...", id="source")
            yield Wrapped("", id="tables")
            yield Wrapped("", id="unfinished")
        yield Static("Choose with ↑ ↓ and Enter:", id="choose-hint")
        yield OptionList(id="choices")

    def on_mount(self) -> None:
        super().on_mount()
        self.title = "Engine migration wizard"
        self.wizard.begin(None)
        self.query_one("#banner", Static).display = bool(self.session.banner)
        session = self.session
        if session.source_from_env and session.env_file is not None:
            # After a switch (or its rollback) .env names another database: that is the source now.
            session.source_text = commands.database_url(session.env_file)
            session.plan = None
            self._forget_target_that_is_the_source()
        self._offer()
        if self.session.source_text:
            self.load_plan()
        else:
            where = self.session.env_file or ".env"
            self.query_one("#source", Static).update(
                f"[b]No source database:[/] no DATABASE_URL in {esc(where)}. "
                "Start the wizard with --env-file PATH or --source URL, or roll back a run."
            )

    def _forget_target_that_is_the_source(self) -> None:
        """After the switch the move's target is the source: a move off it goes elsewhere (MySQL/MariaDB to
        PostgreSQL only), so neither the Start screen's option nor the Connection screen's fields name it."""
        session = self.session
        try:
            source = parse_url(session.source_text, "source")
            if session.target is not None and commands.same_database(session.target, source):
                session.target = None
            if session.target_text and commands.same_database(parse_url(session.target_text, "target"), source):
                session.target_text = None
        except WizardError:
            pass  # a source that does not parse is said by load_plan, in its own words

    @work(exclusive=True, exit_on_error=False, group="plan", description="read the source")
    async def load_plan(self) -> None:
        try:
            source = parse_url(self.session.source_text, "source")
            self.post_message(PlanAnswered(await commands.plan(source)))
        except WizardError as exc:
            self.post_message(PlanAnswered(error=mask(exc.message)))

    @on(PlanAnswered)
    def show_plan(self, message: PlanAnswered) -> None:
        source = self.query_one("#source", Static)
        if message.error:
            source.update(f"[b]Source:[/] [red]{esc(message.error)}[/]")
            return
        report = self.session.plan = message.value
        info = report.source
        size = f", {human_size(info.size)}" if info.size is not None else ""
        notes = "".join(f"\n[yellow]{esc(mask(note))}[/]" for note in report.notes)
        where = f" (DATABASE_URL in {esc(self.session.env_file)})" if self.session.source_from_env else ""
        source.update(f"[b]Source{where}:[/] {esc(mask(info.url))}\n"
                      f"{esc(info.engine)}{size}, {esc(mask(info.schema))}{notes}")
        self._show_tables()
        self._offer()

    def on_resize(self) -> None:
        self._show_tables()

    def _show_tables(self) -> None:
        """At 80x24 one line, so the choices below stay in sight; with the room (120x40), a table per line
        and the revisions an upgrade would apply."""
        report = self.session.plan
        if report is None:
            return
        tables = report.source.tables
        if self.size.height < 32:
            text = "[b]Tables:[/] " + " · ".join(f"{esc(name)} [b]{rows:,}[/]" for name, rows in tables.items())
        else:
            width = max((len(name) for name in tables), default=0)
            figures = max((len(f"{rows:,}") for rows in tables.values()), default=0)
            text = "[b]Tables[/] (rows)\n" + "\n".join(f"  {esc(name.ljust(width))}  {rows:>{figures},}"
                                                      for name, rows in tables.items())
            if report.source.engine.startswith(MOVABLE):
                text += (f"\n\n[b]A move to PostgreSQL[/] would: back up the database and prove the copy, create the "
                         f"tables at its revision, copy {sum(tables.values()):,} rows in {len(tables)} tables, verify "
                         "them row by row, then point .env at PostgreSQL when you say. Ctrl+R undoes it.")
            if report.pending:
                text += f"\n\n[b]An upgrade in place[/] to {esc(report.head)} would apply:\n" + "\n".join(
                    f"  {esc(p.id)}  {esc(p.description)}" + ("  (recorded only: the tables are there)"
                                                              if p.record_only else "") for p in report.pending)
        self.query_one("#tables", Static).update(text)

    def _offer(self) -> None:
        """Unfinished runs first (resume, roll back), then the journeys."""
        unfinished = commands.unfinished(self.session.state_dir)
        options: list[Option] = []
        notes = []
        for run in reversed(unfinished):
            notes.append(f"[b yellow]Unfinished run {esc(run.id)}[/] ({esc(run.journey)}, "
                         f"{esc(commands.run_summary(run)['state'])})")
            if run.journey == "move":
                options.append(Option(f"Resume run {esc(run.id)}", id=f"resume:{run.id}"))
            options.append(Option(f"Roll back run {esc(run.id)}", id=f"rollback:{run.id}"))
        plan = self.session.plan
        movable = plan is not None and plan.source.engine.startswith(MOVABLE)
        options += [
            Option(f"Move to {self.session.move_to()}", id="move", disabled=not movable),
            Option("Upgrade in place" + ("" if plan is None or plan.pending else " (nothing pending)"), id="upgrade",
                   disabled=plan is None or not plan.pending),
            Option("Roll back a run (every run in the journal)", id="runs"),
        ]
        last = self.session.last_run
        if self.session.changed and last is not None and last not in unfinished:
            state = commands.run_summary(last)["state"]
            notes.append(f"[b]Last run[/] {esc(last.id)} ({esc(last.journey)}, {esc(state)}): "
                         "Ctrl+R rolls it back")
        self.query_one("#unfinished", Static).update("\n".join(notes))
        choices = self.query_one("#choices", OptionList)
        choices.clear_options()
        choices.add_options(options)
        choices.highlighted = next(i for i, o in enumerate(options) if not o.disabled)
        choices.focus()

    def action_choose(self) -> None:
        choices = self.query_one("#choices", OptionList)
        if choices.highlighted is not None:
            choices.action_select()

    @on(OptionList.OptionSelected, "#choices")
    def chosen(self, message: OptionList.OptionSelected) -> None:
        choice = message.option.id or ""
        if choice == "move":
            self.wizard.begin(MOVE)
        elif choice == "upgrade":
            self.wizard.begin(UPGRADE)
        elif choice == "runs":
            self.wizard.begin(ROLLBACK)
        elif choice.startswith("rollback:"):
            self.session.journey = ROLLBACK
            self.wizard.confirm_rollback(choice.split(":", 1)[1])
        elif choice.startswith("resume:"):
            session = self.session
            session.journey = MOVE
            session.resume_run = choice.split(":", 1)[1]
            # Carried on with what it was begun with, as `wizard migrate --resume` does: not this session's defaults.
            begun = commands.resumable(session.state_dir, session.resume_run)
            session.policy, session.upgrade_to, session.reflected = begun.policy, begun.to, begun.reflected
            self.wizard.go("connection")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next", "back"):
            return False  # the choices are the way on
        return super().check_action(action, parameters)

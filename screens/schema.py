"""Schema: where the database is, where it goes, the revisions between and their SQL; then Apply."""

from __future__ import annotations

from typing import Iterable

from rich.syntax import Syntax
from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from screens.messages import SqlAnswered, UpgradePlanned
from screens.state import DONE, WAITING
from screens.confirm import Confirm
from screens.widgets import ProgressList, StepScreen, Wrapped, esc, show
from wizard import commands
from wizard.commands import parse_url
from wizard.errors import WizardError
from wizard.secrets import mask

STEP = "schema"  # the service's step name for the schema
SCHEMA_STEPS = ("schema", "upgrade")  # and "revision <id>" for each revision of an upgrade


class SchemaScreen(StepScreen):
    STEP = "schema"
    STEP_TITLE = "schema revisions"
    pending: list[tuple[str, str]] = []  # set on mount; the footer asks check_action before that
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("a", "apply", "Apply", tooltip="Back up, then apply the pending revisions", id="apply"),
        Binding("n", "next", "Next", id="next"),
        # What `wizard upgrade --to` takes; said on the status line, not in the footer.
        Binding("t", "upgrade_to", "To revision", tooltip="Upgrade to an earlier revision than head", id="upgrade_to",
                show=False),
    ]

    def body(self) -> Iterable[Widget]:
        yield Wrapped("", id="revisions")
        with VerticalScroll(id="sql"):
            yield Static("Preparing the SQL preview...", id="sql-text")
        yield ProgressList(unit="rows", id="bars")
        yield Wrapped("", id="status")

    def on_mount(self) -> None:
        super().on_mount()
        plan = self.session.plan
        if self.moving:
            # The empty target is built up to the source's revision, not further.
            preflight = self.session.preflight
            self.db = self.session.target
            self.current = None
            self.baseline = False
            if self.session.reflected:  # another app's tables, created as they are: no engine revision
                self.target, self.pending = "its own tables, as they are", []
            else:
                self.target = (preflight.source_revision if preflight else None) or commands.first_revision()
                self.pending = [(r.id, r.description) for r in commands.revisions(None, self.target)]
        else:
            self.db = parse_url(self.session.source_text, "database")
            self.current = plan.source.revision if plan else None
            self.target = plan.head if plan else commands.head_revision()
            self.baseline = bool(plan and any(p.record_only for p in plan.pending))
            self.pending = [(p.id, p.description) for p in (plan.pending if plan else []) if not p.record_only]
            # The revisions it can stop at (`wizard upgrade --to`), head last.
            self.all_pending = self.pending
            self.choices = [rev for rev, _ in self.pending]
        self._show_revisions()
        self.redraw()

    choices: list[str] = []

    def _show_revisions(self, done: bool = False) -> None:
        """The database, where it is and where it goes, the revisions; once `done`, where it is now."""
        now = (f"[b]Now:[/] {esc(self.target)}   (was {esc(self.current or 'empty')})" if done else
               f"[b]Now:[/] {esc(self.current or 'empty')}   [b]Goes to:[/] {esc(self.target)}"
               + ("   [yellow](records the 1.0.0 baseline first)[/]" if self.baseline else ""))
        lines = [f"[b]{'Target' if self.moving else 'Database'}:[/] {esc(self.db.masked())}", now]
        lines += [f"  {esc(rev)}  {esc(description)}" for rev, description in self.pending] or ["  nothing pending"]
        self.query_one("#revisions", Static).update("\n".join(lines))
        if done:
            return
        if self.pending:
            self.load_sql()
        else:
            self.query_one("#sql-text", Static).update("")

    def action_upgrade_to(self) -> None:
        """The next revision to stop at, after head the first pending one."""
        if self.moving or len(self.choices) < 2 or self.session.log.state != WAITING:
            return
        self.target = self.choices[(self.choices.index(self.target) + 1) % len(self.choices)] \
            if self.target in self.choices else self.choices[-1]
        self.pending = self.all_pending[:self.choices.index(self.target) + 1]
        self.query_one("#sql-text", Static).update("Preparing the SQL preview...")
        self._show_revisions()
        self.redraw()

    @property
    def moving(self) -> bool:
        return self.session.journey is not None and self.session.journey.key == "move"

    @work(exclusive=True, exit_on_error=False, group="sql", description="SQL preview")
    async def load_sql(self) -> None:
        try:
            self.post_message(SqlAnswered(await commands.upgrade_sql(self.db, self.target, empty=self.moving)))
        except WizardError as exc:
            self.post_message(SqlAnswered(error=mask(exc.message)))

    @on(SqlAnswered)
    def show_sql(self, message: SqlAnswered) -> None:
        text = self.query_one("#sql-text", Static)
        if message.error:
            text.update(f"[red]{esc(message.error)}[/]")
        else:
            text.update(Syntax(mask(message.value), "sql", theme="ansi_dark", background_color="default",
                               word_wrap=True))

    def redraw(self) -> None:
        log = self.session.log
        progress = {item: p for name, step in log.steps.items() if name in SCHEMA_STEPS or name.startswith("revision ")
                    for item, p in step.progress.items()}
        self.query_one("#bars", ProgressList).show(progress)
        if log.state == WAITING and not self.moving:
            status = "a: a backup first, then the revisions (asks first)." if self.pending else ""
            if status and len(self.choices) > 1:
                status += " t: stop at another revision."
        elif log.complete(STEP) or log.state == DONE:
            self._show_revisions(done=True)
            applied = [name.split()[1] for name, step in log.steps.items()
                       if name.startswith("revision ") and step.state == DONE]
            status = f"[green]Schema at {esc(self.target)}[/]" \
                + (f" (applied {esc(', '.join(applied))})" if applied else "") + ". n: next step"
            result = log.result
            if isinstance(result, commands.UpgradeResult) and result.counts:
                # What each data revision did to the rows, as `wizard upgrade` prints it.
                status += "".join(f"\n{esc(label)}: {esc(counts)}" for label, counts in commands.upgrade_counts(result))
        else:
            status = self.run_status()
        show(self.query_one("#status", Static), status)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            if self.moving:
                return False  # the move applies its schema itself
            return bool(self.pending) and self.session.log.state == WAITING  # once run, never again here
        if action == "upgrade_to":
            return not self.moving and len(self.choices) > 1 and self.session.log.state == WAITING
        if action == "next" and not self.moving and self.session.log.state == WAITING:
            return False  # Apply is the way on from here
        return super().check_action(action, parameters)

    def action_apply(self) -> None:
        """Ask, naming the database and the revisions from and to, as `wizard upgrade` asks without --yes: from
        the plan the upgrade itself makes (commands.upgrade_plan), read again now."""
        if self.moving or not self.pending or self.session.log.state != WAITING:
            return
        self.plan_upgrade()

    @work(exclusive=True, exit_on_error=False, group="upgrade-plan", description="read the upgrade plan")
    async def plan_upgrade(self) -> None:
        try:
            self.post_message(UpgradePlanned(await commands.upgrade_plan(self.db, self.target)))
        except WizardError as exc:
            self.post_message(UpgradePlanned(error=mask(exc.message)))

    @on(UpgradePlanned)
    def ask_upgrade(self, message: UpgradePlanned) -> None:
        if message.error:
            show(self.query_one("#status", Static), f"[red]{esc(message.error)}[/]")
            return
        plan = message.value
        if self.session.log.state != WAITING or isinstance(self.app.screen, Confirm):
            return
        question = commands.upgrade_question(plan) + "\n\nCtrl+R undoes it afterwards."

        def answered(yes: bool | None) -> None:
            if yes and self.session.log.state == WAITING:
                self.wizard.start_upgrade(plan.target)
                self.redraw()
                self.refresh_bindings()

        self.app.push_screen(Confirm(question, yes_label="Upgrade (y)", title="Upgrade?"), answered)

    def can_go_back(self) -> bool:
        # Before Apply, going back is safe; once the upgrade runs, the way back is ctrl+r.
        return self.moving or self.session.log.state == WAITING

    def can_go_next(self) -> bool:
        # Once the run has started, the next screens are views of it: watching ahead is harmless.
        return self.session.log.state != WAITING

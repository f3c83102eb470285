"""Pre-flight: the checklist, the data scan, and the policy for rows the target will not take."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, RadioButton, RadioSet, Static

from screens.confirm import Confirm
from screens.messages import ChecksAnswered
from screens.widgets import Folded, ProgressList, StepScreen, Wrapped, esc
from wizard import commands
from wizard.commands import DEFAULT_POLICY, JOBS, ORPHAN_POLICIES, parse_url
from wizard.errors import WizardError
from wizard.secrets import mask

STATUS_STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[b red]FAIL[/]"}


class PreflightScreen(StepScreen):
    STEP = "preflight"
    STEP_TITLE = "pre-flight checks"
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("n", "next", "Start the move", tooltip="Back up the source, then copy", id="next"),
        # Said on the options line above the verdict, not in the footer: at 80 columns it has no room.
        Binding("j", "jobs(1)", "Jobs", tooltip="More tables copied, and indexes built, at once", id="jobs",
                show=False),
        Binding("J", "jobs(-1)", "Fewer jobs", tooltip="Fewer tables copied at once", id="fewer_jobs", show=False),
        Binding("t", "upgrade_to", "Then upgrade", tooltip="After the move, upgrade the target to a revision",
                id="upgrade_to", show=False),
        Binding("f", "reflected", "As is", tooltip="Another app's database: copy its tables as they are",
                id="reflected", show=False),
    ]

    def body(self) -> Iterable[Widget]:
        with VerticalScroll(id="preflight"):
            yield ProgressList(id="bars")
            yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
            yield Static("", id="scan-title")
            yield DataTable(id="scan", cursor_type="row")
            yield Static("", id="policy-title")  # names the target's server, once it has answered
            yield RadioSet(*(RadioButton(f"{key}: {meaning}", value=key == self.session.policy, id=key)
                             for key, meaning in ORPHAN_POLICIES.items()), id="policy")
        # Outside the scroll: the options and the verdict stay in sight wherever the operator has scrolled to.
        yield Wrapped("", id="options")
        yield Wrapped("Checking the source and the target (nothing is written)...", id="status")

    def on_mount(self) -> None:
        super().on_mount()
        self._show_options()
        if self.session.preflight is not None:  # answered already for this target
            self.post_message(ChecksAnswered(self.session.preflight))
        else:
            self._check()

    def _check(self) -> None:
        for widget in ("#scan", "#scan-title", "#policy-title", "#policy"):
            self.query_one(widget).display = False
        self.query_one("#bars", ProgressList).display = True
        self.query_one("#status", Static).update("Checking the source and the target (nothing is written)...")
        self.run_checks()

    # --- the move's options: what `wizard migrate` takes as --jobs, --to and --reflected ---

    def _upgrade_choices(self) -> list[str | None]:
        """Stay at the source's revision (None), or upgrade the target to a later one after the move."""
        report = self.session.preflight
        if report is None or not report.source_revision or self.session.reflected:
            return [None]
        return [None, *(r.id for r in commands.revisions(report.source_revision, commands.head_revision()))]

    def _may_reflect(self) -> bool:
        """The source holds none of the engine's tables: it can only be copied as it is."""
        plan = self.session.plan
        return self.session.reflected or (plan is not None and bool(plan.source.tables)
                                          and set(plan.source.tables) <= set(plan.source.other_tables))

    def _show_options(self) -> None:
        session = self.session
        line = f"[b]Jobs:[/] {session.jobs} (j/J)"
        if session.reflected:
            line += " · [b]its tables copied as they are[/] (f: off)"
        elif self._may_reflect():
            line += " · none of the engine's tables: f copies its tables as they are"
        else:
            line += f" · [b]then upgrade to:[/] {esc(session.upgrade_to or 'no, stay')}" \
                    + (" (t)" if len(self._upgrade_choices()) > 1 else "")
        self.query_one("#options", Static).update(line)
        self.refresh_bindings()

    def action_jobs(self, step: int) -> None:
        """One more (j) or fewer (J) of what `wizard migrate --jobs` takes, round from the last to the first."""
        jobs = self.session.jobs
        self.session.jobs = JOBS[(JOBS.index(jobs) + step) % len(JOBS)] if jobs in JOBS else JOBS[0]
        self._show_options()

    def action_upgrade_to(self) -> None:
        choices = self._upgrade_choices()
        now = self.session.upgrade_to
        self.session.upgrade_to = choices[(choices.index(now) + 1) % len(choices)] if now in choices else None
        self._show_options()
        self._show_verdict()

    def action_reflected(self) -> None:
        if not self._may_reflect():
            return
        self.session.reflected = not self.session.reflected
        self.session.upgrade_to = None
        self.session.preflight = None  # the checks answer otherwise for a copy as it is
        self._show_options()
        self._check()

    @work(exclusive=True, exit_on_error=False, group="checks", description="pre-flight checks")
    async def run_checks(self) -> None:
        try:
            source = parse_url(self.session.source_text, "source")
            # Scan progress goes through the app's coalesced path like any service event.
            report = await commands.preflight(source, self.session.target, self.wizard.emit,
                                              state_dir=self.session.state_dir, reflected=self.session.reflected)
            self.post_message(ChecksAnswered(report))
        except WizardError as exc:
            self.post_message(ChecksAnswered(error=mask(exc.message)))

    def redraw(self) -> None:
        step = self.session.log.steps.get("preflight")
        if step is not None and self.session.preflight is None:
            self.query_one("#bars", ProgressList).show(step.progress)

    @on(ChecksAnswered)
    def show(self, message: ChecksAnswered) -> None:
        status = self.query_one("#status", Static)
        if message.error:
            status.update(f"[red]{esc(message.error)}[/]\nEscape goes back to the connection.")
            return
        report = self.session.preflight = message.value
        self.query_one("#bars", ProgressList).display = False
        checks = self.query_one("#checks", DataTable)
        checks.clear(columns=True)
        # The reasons wrap in their column: at 80 columns a cut-off reason would hide what to do.
        checks.add_column("check", width=12)
        checks.add_column("result", width=6)
        checks.add_column("why", width=max(30, self.size.width - 32))
        for check in report.checks:
            checks.add_row(Text(check.name), Text.from_markup(STATUS_STYLE.get(check.status, check.status)),
                           Folded(commands.in_keys(mask(check.reason))), height=None)
        self._show_scan(report)
        self._show_options()
        self._show_verdict()
        checks.focus()

    def _show_scan(self, report) -> None:
        scan = self.query_one("#scan", DataTable)
        scan.display = bool(report.scan)
        # A table shown after being hidden keeps height 0 until laid out again (Textual 8).
        scan.call_after_refresh(scan.refresh, layout=True)
        scan.clear(columns=True)
        # What each finding is and its example keys wrap in their columns, as the checks' reasons do: at 80
        # columns they ran off the right edge ("a value that is not a boolea"), the keys out of sight.
        rest = max(30, self.size.width - 44)  # the three narrow columns, the cells' padding, the scrollbar
        keys = min(rest // 2 + 2, 38)  # a UUID key on two lines at 80 columns, on one where there is room
        for label, width in (("table", 12), ("column", 12), ("rows", 6), ("what", rest - keys),
                             ("example keys", keys)):
            scan.add_column(label, width=width)
        for finding in report.scan:
            examples = ", ".join(map(commands.shown_key, finding.examples[:3]))  # a newline or ESC in one, escaped
            what = f"{'converted: ' if finding.converted else ''}{finding.problem}"
            # Names, values and the service's words: cells as plain Text, never read as markup.
            scan.add_row(Folded(finding.table), Folded(finding.column or ""), f"{finding.count:,}", Folded(what),
                         Folded(mask(examples)), height=None)
        problems = bool(report.problems())
        self.query_one("#scan-title", Static).update(
            "[b]Data scan:[/] " + (f"rows {report.server} will not take as they are" if problems
                                   else "every row fits" + (" (after the counted conversions below)"
                                                            if report.scan else ""))
        )
        self.query_one("#policy-title", Static).update(f"[b]Rows {report.server} will not take as they are:[/]")
        self.query_one("#scan-title").display = True
        for widget in ("#policy-title", "#policy"):
            self.query_one(widget).display = problems
        policy = self.query_one("#policy", RadioSet)
        for key, meaning in ORPHAN_POLICIES.items():
            affected = report.affected.get(key, 0)
            policy.query_one(f"#{key}", RadioButton).label = f"{key}: {meaning} ({affected:,} rows)"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "upgrade_to":
            return len(self._upgrade_choices()) > 1
        if action == "reflected":
            return self._may_reflect()
        return super().check_action(action, parameters)

    @on(RadioSet.Changed, "#policy")
    def policy_chosen(self, message: RadioSet.Changed) -> None:
        self.session.policy = message.pressed.id or DEFAULT_POLICY
        self._show_verdict()

    def _blocker(self) -> str | None:
        """Why the move cannot start now, or None."""
        report = self.session.preflight
        if report is None:
            return "the checks have not answered yet"
        failed = [c.name for c in report.failed]
        if failed:
            return f"a check failed ({', '.join(failed)}): fix it, then Escape and come back to check again"
        if self.session.policy == DEFAULT_POLICY and report.affected.get(DEFAULT_POLICY, 0):
            return "with 'abort' the move stops on those rows: Tab down to the policy, choose null or quarantine"
        return None

    def _show_verdict(self) -> None:
        blocker = self._blocker()
        self.query_one("#status", Static).update(
            f"[red]Cannot start: {esc(blocker)}[/]" if blocker
            else f"[green]Ready.[/] n starts the move (policy: {self.session.policy}): backup first, then the copy."
            + (f" Then the upgrade to {esc(self.session.upgrade_to)}." if self.session.upgrade_to else "")
        )
        self.refresh_bindings()

    def can_go_next(self) -> bool:
        return self._blocker() is None

    def action_next(self) -> None:
        """Ask what `wizard migrate` asks before it writes, in its words; y starts the move."""
        if not self.can_go_next():
            return

        def answered(yes: bool | None) -> None:
            if yes and self.can_go_next():
                self.wizard.start_move()
                self.wizard.go("backup")

        question = commands.move_question(self.wizard.move_options(), self.session.preflight)
        self.app.push_screen(Confirm(question, yes_label="Move (y)", title="Start the move?"), answered)


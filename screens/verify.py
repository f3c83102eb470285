"""Verify: per table, source against target; a selected table shows its differing rows side by side."""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text
from pathlib import Path

from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from screens.confirm import Ask
from screens.messages import ReportWritten, VerifyAnswered
from screens.widgets import ProgressList, StepScreen, Wrapped, esc
from wizard import commands
from wizard.commands import parse_url
from wizard.errors import WizardError
from wizard.secrets import mask

STATUS_STYLE = {"ok": "[green]ok[/]", "differs": "[b red]DIFFERS[/]", "missing": "[b red]MISSING[/]"}


def short(value: Any, width: int = 24) -> Text:
    """A key or value of a row, cut to `width`; plain Text: a value is data, never markup. A newline or ESC in a
    text value is spelled escaped, as the refusal spells a key."""
    text = mask(commands.shown_key(value) if isinstance(value, str) else repr(value))
    return Text(text if len(text) <= width else text[: width - 1] + "…")


class VerifyScreen(StepScreen):
    STEP = "verify"
    STEP_TITLE = "verification"
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("v", "verify_again", "Verify again", tooltip="Compare the source and the target again", id="again"),
        # Said in the status line, not the footer: at 80 columns it has no room.
        Binding("o", "verify_table", "This table", tooltip="Compare the highlighted table alone", id="one",
                show=False),
        Binding("w", "write_report", "Report to...", tooltip="Write the report to a file you name", id="report"),
        Binding("n", "next", "Next", id="next"),
    ]

    def body(self) -> Iterable[Widget]:
        yield Wrapped("Comparing the source and the target row by row (nothing is written)...", id="status")
        yield ProgressList(id="bars")
        yield DataTable(id="verdicts", cursor_type="row", zebra_stripes=True)
        with Vertical(id="diff-box"):
            yield Wrapped("", id="diff-title")
            yield DataTable(id="diffs", cursor_type="row")
        yield Wrapped("", id="report")

    report = None
    only: str | None = None  # the table verified alone (o); None: every table

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#diff-box").display = False
        # The move compares row by row at its end; back here from Finish, the answer is kept too.
        done = self.session.verify or getattr(self.session.log.result, "verification", None)
        if done is not None:
            self.post_message(VerifyAnswered(done))
        else:
            self.run_verify()

    @work(exclusive=True, exit_on_error=False, group="verify", description="verify")
    async def run_verify(self, table: str | None = None) -> None:
        session = self.session
        run = session.run
        # One table's verdict is no verdict on the move: the run's report (and what Next goes by) stays the whole one.
        report_file = run.folder / "verify.md" if run is not None and table is None else None
        try:
            source = parse_url(session.source_text, "source")
            # Progress goes through the app's coalesced path, drawn by redraw() below. What the run did on
            # purpose (quarantine, NULLed keys, the settings move) counts in, as in `wizard verify --run`.
            done = await commands.verify(source, session.target, self.wizard.emit, run=run,
                                         tables=[table] if table else None, report_file=report_file)
            if report_file is not None:
                session.verify_report = done.report_md  # the report an operator attaches to the change ticket
            self.post_message(VerifyAnswered(done.report))
        except WizardError as exc:
            self.post_message(VerifyAnswered(error=mask(exc.message)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("verify_again", "write_report"):
            return True if self.report is not None else None  # not while one runs
        if action == "verify_table":
            return True if self.report is not None and self._highlighted() is not None else None
        return super().check_action(action, parameters)

    def _highlighted(self) -> str | None:
        table = self.query_one("#verdicts", DataTable)
        if not table.row_count or table.cursor_row is None:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def action_verify_again(self) -> None:
        if self.report is None:
            return
        self.report = self.session.verify = self.only = None
        self.query_one("#diff-box").display = False
        self.query_one("#status", Static).update("Comparing the source and the target again, row by row...")
        self.refresh_bindings()
        self.run_verify()

    def action_verify_table(self) -> None:
        name = self._highlighted() if self.report is not None else None
        if name is None:
            return
        self.report, self.only = None, name
        self.query_one("#diff-box").display = False
        self.query_one("#status", Static).update(f"Comparing {esc(name)} alone, row by row...")
        self.refresh_bindings()
        self.run_verify(name)

    def action_write_report(self) -> None:
        if self.report is None:
            return
        report = self.report

        def answered(path: str | None) -> None:
            if path:
                self.write_report(report, Path(path).expanduser())

        shown = self._report_path() or str(Path.cwd() / "verify.md")
        self.app.push_screen(Ask("Write the verification report (Markdown, its JSON beside it) to:", shown,
                                 title="Report to"), answered)

    @work(exclusive=True, exit_on_error=False, group="report", description="write the report")
    async def write_report(self, report: Any, path: Path) -> None:
        try:
            written = await commands.write_verify_report(report, path, self.session.run)
            self.post_message(ReportWritten(written))
        except (WizardError, OSError) as exc:
            self.post_message(ReportWritten(error=mask(getattr(exc, "message", None) or str(exc))))

    @on(ReportWritten)
    def report_written(self, message: ReportWritten) -> None:
        if message.error:
            self.query_one("#report", Static).update(f"[red]{esc(message.error)}[/]")
            return
        self.session.verify_report = message.value
        self.query_one("#report", Static).update(f"Report: {esc(message.value)}")

    def redraw(self) -> None:
        step = self.session.log.steps.get("verify")
        bars = self.query_one("#bars", ProgressList)
        bars.display = self.report is None
        if step is not None and self.report is None:
            bars.show(step.progress)

    @on(VerifyAnswered)
    def show(self, message: VerifyAnswered) -> None:
        status = self.query_one("#status", Static)
        if message.error:
            status.update(f"[red]{esc(message.error)}[/]")
            return
        self.report = report = message.value
        if self.only is None:
            self.session.verify = report
        table = self.query_one("#verdicts", DataTable)
        table.clear(columns=True)
        table.add_columns("table", "source", "target", "quarant.", "differ", "status")
        for v in report.tables:
            differing = v.different + v.only_source + v.only_target
            table.add_row(Text(v.table), f"{v.source_rows:,}", f"{v.target_rows:,}", f"{v.quarantined:,}",
                          f"{differing:,}", STATUS_STYLE.get(v.status, v.status), key=v.table)
        failed = [f"schema: {f.table} {f.what}: {f.detail}" for f in report.schema if f.status == "fail"]
        if self.only is not None:
            status.update(f"[b]{esc(self.only)} alone:[/] "
                          + ("[green]every row accounted for.[/]" if report.ok else "[b red]differences found.[/]")
                          + " v verifies every table; Enter shows its rows.")
        else:
            status.update(
                "[green]Every row accounted for: the target holds the source.[/] n: finish; o verifies the "
                "highlighted table alone"
                if report.ok else "[b red]Differences found.[/] Enter: a table's rows; o: it alone; ctrl+r: roll back"
                + "".join(f"\n{esc(mask(line))}" for line in failed[:3])
            )
        path = self._report_path()
        self.query_one("#report", Static).update(f"Report: {esc(path)}" if path else "")
        table.focus()
        self.refresh_bindings()

    def _report_path(self) -> str:
        run = self.session.run
        path = self.session.verify_report or (run.folder / "verify.md" if run is not None else None)
        return str(path) if path is not None and path.exists() else ""

    @on(DataTable.RowSelected, "#verdicts")
    def show_diffs(self, message: DataTable.RowSelected) -> None:
        verdict = next(v for v in self.report.tables if v.table == message.row_key.value)
        box = self.query_one("#diff-box")
        diffs = self.query_one("#diffs", DataTable)
        diffs.clear(columns=True)
        diffs.add_columns("key", "column", "source", "target")
        for row in verdict.diffs:
            if row.columns:
                for col in row.columns:
                    diffs.add_row(short(row.pk, 12), Text(col.column), short(col.source), short(col.target))
            else:
                diffs.add_row(short(row.pk, 12), "", *(("(row)", "(missing)") if row.kind == "only_source"
                                                    else ("(missing)", "(row)")))
        self.query_one("#diff-title", Static).update(
            f"[b]{esc(verdict.table)}[/]: {len(verdict.diffs)} differing row(s) shown"
            + (f" of {verdict.different + verdict.only_source + verdict.only_target:,}" if verdict.diffs else "")
            if verdict.diffs
            else f"[b]{esc(verdict.table)}[/]: every row equal" + (f" ({esc(verdict.note)})" if verdict.note else "")
        )
        diffs.display = bool(verdict.diffs)
        box.display = True

    def can_go_next(self) -> bool:
        report, whole = getattr(self, "report", None), self.session.verify
        return report is not None and report.ok and whole is not None and whole.ok

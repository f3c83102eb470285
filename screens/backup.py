"""Backup: the source copied and proven before anything changes; path, size, sha256, integrity."""

from __future__ import annotations

from typing import Iterable

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from screens.state import WAITING
from screens.widgets import ProgressList, StepScreen, Wrapped, show
from wizard.commands import BACKUP_CHECK_STEP, backup_needs_proof, human_size
from wizard.secrets import mask

STEP = "backup"  # the service's step name for backups
SHOWN = (("path", "saved to"), ("size", "size"), ("sha256", "sha256"), ("check", "integrity"))


class BackupScreen(StepScreen):
    STEP = "backup"
    STEP_TITLE = "backup of the source"

    def body(self) -> Iterable[Widget]:
        with VerticalScroll(id="backup"):
            yield Wrapped("", id="status")
            yield ProgressList(unit="pages", id="bars")
            yield Wrapped("", id="record", markup=False)  # paths, sums, the check's words: all data

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    def redraw(self) -> None:
        log = self.session.log
        step = log.steps.get(STEP)
        if step is not None:
            self.query_one("#bars", ProgressList).show(step.progress)
        proven = log.complete(BACKUP_CHECK_STEP)
        proof = log.steps[BACKUP_CHECK_STEP] if proven else None
        show(self.query_one("#record", Static), self._record_text(step, proof))
        status = self.run_status()
        if log.complete(STEP):
            checked = not backup_needs_proof(step.data) or proven
            taken = ("its sha256 equals the source's. Its integrity_check runs" if step.data.get("kind") == "sqlite"
                     else "the dump is written. Its restore into a scratch database runs")
            status = ("[green]Backup proven.[/] n: next step" if checked else
                      f"[green]Backup taken[/]: {taken} beside the copy, and .env changes only once it passes. "
                      "n: next step")
        elif step is None and log.state == WAITING:
            status = "The backup starts with the run."
        show(self.query_one("#status", Static), status)

    @staticmethod
    def _record_text(step, proof=None) -> str:
        if step is None or not step.data:
            return ""
        # The deferred proof's own result, once it came, is the backup's integrity: not the check it was taken with.
        data = {**step.data, **({"check": proof.data["check"]} if proof and "check" in proof.data else {})}
        lines = []
        for key, label in SHOWN:
            if key in data:
                value = data[key]
                lines.append(f"{label:>10}: {human_size(value) if key == 'size' else mask(str(value))}")
        lines += [f"  {mask(line)}" for line in step.warnings]
        return "\n".join(lines)

    def can_go_next(self) -> bool:
        # A view of the run: the next step's screen can be watched while this one finishes.
        return self.session.log.state != WAITING

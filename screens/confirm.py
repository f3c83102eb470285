"""Confirmations: modal, focus on Cancel, one deliberate key (y) to go ahead."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, LoadingIndicator, Static

from screens.widgets import KeysFooter, Wrapped
from wizard.commands import in_keys


class Confirm(ModalScreen[bool]):
    """A yes/no question. Enter on the focused Cancel, Escape and n all say no; only y says yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="yes"),
        Binding("n,escape", "answer(False)", "No", id="no"),
        # A question taller than the dialog (a rollback's at 80x24) scrolls from the keys, focus staying on Cancel.
        Binding("down", "read('down')", "More", key_display="↓", tooltip="Read on", id="more"),
        Binding("up", "read('up')", show=False),
        Binding("pagedown", "read('page_down')", show=False),
        Binding("pageup", "read('page_up')", show=False),
    ]

    ANSWERS: dict[str, object] = {"confirm": True}

    def __init__(self, question: str, yes_label: str = "Yes (y)", title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.yes_label = yes_label
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]{self.heading}[/]", id="heading")
            with VerticalScroll(id="question"):
                yield Wrapped(self.question, markup=False)  # paths in it break at their separators
            with Horizontal(id="buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary")
                yield Button(self.yes_label, id="confirm", variant="error")
        yield KeysFooter()  # the dialog's keys, not the screen's beneath

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_resize(self) -> None:
        self.refresh_bindings()  # whether the question overflows is known once it is laid out

    @on(Button.Pressed)
    def pressed(self, message: Button.Pressed) -> None:
        self.dismiss(self.ANSWERS.get(message.button.id or "", False))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_read(self, how: str) -> None:
        getattr(self.query_one("#question", VerticalScroll), f"scroll_{how}")()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "read":
            return self.query_one("#question", VerticalScroll).max_scroll_y > 0
        return True


class Ask(ModalScreen["str | None"]):
    """One line to type (a path, a URL): Enter answers it, Escape answers None. A URL's password is never drawn."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, question: str, value: str = "", title: str = "Ask", url: bool = False) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.heading = title
        self.url = url

    def compose(self) -> ComposeResult:
        from screens.widgets import UrlInput

        with Vertical(id="dialog"):
            yield Static(f"[b]{self.heading}[/]", id="heading")
            yield Wrapped(self.question, markup=False)
            yield (UrlInput if self.url else Input)(self.value, id="answer")
            yield Static("Enter: done · Escape: cancel", classes="hint")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    @on(Input.Submitted, "#answer")
    def answered(self, message: Input.Submitted) -> None:
        self.dismiss(message.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Measuring(ModalScreen[bool]):
    """Shown while a rollback reads what was written since the run, before it asks: on a large database that
    read takes a while, and a key pressed meanwhile must neither start it again nor act on the screen beneath.
    Escape gives up the read (dismissed with True); nothing has changed."""

    BINDINGS = [Binding("escape", "dismiss(True)", "Cancel", id="cancel")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]Roll back run {self.run_id}?[/]", id="heading")
            yield Wrapped("Reading every row of the database the run left, to tell what was written since. "
                          "Nothing changes until you choose; the choices follow.", markup=False)
            yield LoadingIndicator()
        yield KeysFooter()


class ConfirmRollback(Confirm):
    """What was written since the run, and exactly what rolling it back will undo, in order.

    With rows written since, a second choice (r) restores the backups anyway; it says how many rows the
    database loses and where they are saved first. Answers True (y), "restore" (r) or False.
    """

    BINDINGS = [Binding("r", "restore", "Restore backup", id="restore")]

    def __init__(self, plan: Any, alternative: Any = None, refused: str = "") -> None:
        self.alternative = alternative
        self.refused = refused  # no plan (no y): keeping the rows written since is refused, and why
        if plan is None:
            text = f"Run {alternative.run.id} ({alternative.run.journey}).\n{refused}\n\n" \
                   + "Restore the backup anyway (r):\n" + self._text(alternative, header=False)
        else:
            text = self._text(plan)
            if alternative is not None:
                text += "\n\nOr restore the backup anyway (r):\n" + self._text(alternative, header=False)
        super().__init__(text + "\n\nThen it checks the result and shows the checks.",
                         yes_label="Keep them, roll back (y)" if alternative else "Roll back (y)", title="Roll back?")

    @staticmethod
    def _text(plan: Any, header: bool = True) -> str:
        steps = "\n".join(f"{i}. {action}" for i, action in enumerate(plan.described(), 1)) or "Nothing to undo."
        said = "\n".join(map(in_keys, plan.lines())) if header else plan.path()
        lead = f"Run {plan.run.id} ({plan.run.journey}).\n{said}\n\nRolling back will, in this order:" if header \
            else f"{said}\n"
        return f"{lead}\n{steps}"

    ANSWERS = {"confirm": True, "restore": "restore"}

    def on_mount(self) -> None:
        super().on_mount()
        if self.refused:
            self.query_one("#confirm", Button).display = False
        if self.alternative is not None:
            self.query_one("#buttons", Horizontal).mount(Button("Restore backup (r)", id="restore", variant="warning"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "answer" and parameters == (True,) and self.refused:
            return False  # no y, hidden: only the restore goes
        return self.alternative is not None if action == "restore" else super().check_action(action, parameters)

    def action_restore(self) -> None:
        if self.alternative is not None:
            self.dismiss("restore")

"""Confirmations: modal, focus on Cancel, one deliberate key (y) to go ahead."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class Confirm(ModalScreen[bool]):
    """A yes/no question. Enter on the focused Cancel, Escape and n all say no; only y says yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="yes"),
        Binding("n,escape", "answer(False)", "No", id="no"),
    ]

    def __init__(self, question: str, yes_label: str = "Yes (y)", title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.yes_label = yes_label
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]{self.heading}[/]", id="heading")
            with VerticalScroll(id="question"):
                yield Static(self.question, markup=False)
            with Horizontal(id="buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary")
                yield Button(self.yes_label, id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def pressed(self, message: Button.Pressed) -> None:
        self.dismiss(message.button.id == "confirm")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmRollback(Confirm):
    """Lists, in order, exactly what rolling back `run_id` will undo."""

    def __init__(self, run_id: str, journey: str, actions: list[str]) -> None:
        steps = "\n".join(f"{i}. {action}" for i, action in enumerate(actions, 1)) or "Nothing to undo."
        super().__init__(
            f"Run {run_id} ({journey}). Rolling back will, in this order:\n\n{steps}\n\n"
            "Then it checks the result and shows the checks.",
            yes_label="Roll back (y)", title="Roll back?",
        )

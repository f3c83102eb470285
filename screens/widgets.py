"""What every step screen shares: the header and footer, Back/Next, and a labelled progress row."""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Iterable

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, RulesMap, Visual
from textual.widget import Widget
from textual.worker import Worker
from textual.widgets import Footer, Header, Input, Label, ProgressBar, RichLog, Static

from screens.messages import RunChanged, RunEnded
from screens.state import DONE, FAILED, RUNNING, STOPPED, WAITING, Session
from wizard.events import Progress
from wizard.secrets import is_secret_name

SETUP_STEPS = ("connection", "preflight")


class StepScreen(Screen):
    """A step of a journey: the header says which one, Escape goes back, `n` goes on when allowed."""

    STEP: ClassVar[str]
    _bindings_drawn_for = ""
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="The previous step (nothing is undone)", id="back"),
        Binding("n", "next", "Next", tooltip="The next step", id="next"),
    ]

    @property
    def wizard(self) -> Any:
        """The app (wizard.app.WizardApp, never imported here): it owns the session and the journey's run."""
        return self.app

    @property
    def session(self) -> Session:
        return self.wizard.session

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield from self.body()
        yield KeysFooter()

    def body(self) -> Iterable[Widget]:
        raise NotImplementedError

    def on_mount(self) -> None:
        journey = self.session.journey
        self.title = self.session.title()
        if journey and self.STEP in journey.steps:
            self.sub_title = f"step {journey.steps.index(self.STEP) + 1} of {len(journey.steps)}: {self.STEP_TITLE}"
        else:
            self.sub_title = self.STEP_TITLE

    STEP_TITLE: ClassVar[str] = ""

    def can_go_back(self) -> bool:
        # Back to the setup steps only before the run starts: from there a second run could begin.
        previous = self.wizard.step_before(self.STEP)
        return previous not in SETUP_STEPS or self.session.log.state == WAITING

    # Screens that show the journey's run redraw from the session's RunLog on these.
    @on(RunChanged)
    @on(RunEnded)
    def _run_reported(self) -> None:
        self.redraw()
        if self.session.log.state != self._bindings_drawn_for:  # keys change with the run's state only
            self._bindings_drawn_for = self.session.log.state
            self.refresh_bindings()

    def redraw(self) -> None:
        """Draw what the run has reported so far (also called once on mount)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.wizard.worker_changed(event)

    def run_status(self) -> str:
        """One line: what the journey's run is doing, or how it ended and what to do next."""
        log = self.session.log
        if log.state == RUNNING:
            step = log.steps.get(log.current)
            return f"Running: {esc(step.title if step else log.current)}"
        if log.state == FAILED:
            return f"[red]Failed: {esc(log.error)}[/] · ctrl+r rolls back what this run changed"
        if log.state == STOPPED:
            return f"[yellow]Stopped at a checkpoint: {esc(log.error)}[/] · r resumes, ctrl+r rolls back"
        if log.state == DONE:
            return "[green]The run finished.[/]"
        return ""

    def can_go_next(self) -> bool:
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return True if self.can_go_back() else False  # hidden: once the run began, back never acts again
        if action == "next":
            if self.wizard.step_after(self.STEP) is None:
                return False  # the last step: nothing to go on to
            return True if self.can_go_next() else None
        return True

    def action_back(self) -> None:
        if self.can_go_back():
            self.wizard.go(self.wizard.step_before(self.STEP))

    def action_next(self) -> None:
        step = self.wizard.step_after(self.STEP)
        if self.can_go_next() and step:
            self.wizard.go(step)


class KeysFooter(Footer):
    """The footer, drawn with the screen's keys as it mounts, and drawn again only when they change.

    Textual's waits for a first bindings signal, then for a refresh, and rebuilds itself on every signal,
    blank in between: while a copy keeps the loop busy, that blank lasted seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.set_reactive(Footer._bindings_ready, True)
        self._drawn: list[tuple[str, str, bool]] | None = None

    def _keys(self) -> list[tuple[str, str, bool]]:
        return [(binding.key, binding.description, enabled)
                for _, binding, enabled, _ in self.screen.active_bindings.values() if binding.show]

    def compose(self) -> ComposeResult:
        self._drawn = self._keys()
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen and self._drawn is not None:
            keys = self._drawn, self._keys()
            if keys[1] == keys[0]:
                return
            shown = list(self.query("FooterKey"))
            if [k[:2] for k in keys[1]] == [k[:2] for k in keys[0]] and len(shown) == len(keys[1]):
                for widget, (_, _, enabled) in zip(shown, keys[1]):  # the same keys: grey or not, in place
                    widget.set_class(not enabled, "-disabled")  # as Footer draws a greyed key
                    widget._disabled = not enabled  # what a click on it reads
                self._drawn = keys[1]
                return
        super().bindings_changed(screen)


def esc(value: object) -> str:
    """`value` (a name, path, URL or message: anything not written here) as literal text in markup.

    Every `[` is escaped: Textual reads a tag at any unescaped `[`, so rich.markup.escape, which
    leaves `[B]` and `[$x]` alone and doubles backslashes, would still lose or change text."""
    return str(value).replace("[", "\\[")


def show(widget: Static | Label, content: str) -> None:
    """Update only when the text changed: every update lays the screen out again, and redraws
    share the interpreter with the copy's threads."""
    if getattr(widget, "_shown", None) != content:
        widget._shown = content  # type: ignore[union-attr]
        widget.update(content)


# Where a name, path or URL too long for its line may break: after one of these, never mid-word. The
# first kind keeps a name whole (".../" then "wizard_demo_0e108fff"); the second splits inside one.
BETWEEN_NAMES = frozenset("/@:?&=,")
INSIDE_NAMES = frozenset("_.-")


def fold_offsets(line: str, width: int) -> list[int]:
    """Where to break `line` so that each piece fits `width` cells: at spaces, as rich does; a word that does
    not fit starts a line of its own, and one longer than a whole line breaks after its last separator that
    fits (between two letters only where it has none)."""
    breaks: list[int] = []
    used = 0  # cells on the current line
    for m in re.finditer(r" *[^ ]+ *", line):  # spaces only: a no-break space keeps "+ value" together
        start, word = m.start(), m.group()
        size = cell_len(word.rstrip(" "))
        if used + size <= width:
            used += cell_len(word)
            continue
        if used and start:
            breaks.append(start)
        if size <= width:
            used = cell_len(word)
            continue
        piece, end = start, start + len(word.rstrip(" "))
        while cell_len(line[piece:end]) > width:
            fold = between = inside = piece
            for i in range(piece + 1, end + 1):
                if cell_len(line[piece:i]) > width:
                    break
                fold = i
                if line[i - 1] in BETWEEN_NAMES:
                    between = i
                elif line[i - 1] in INSIDE_NAMES:
                    inside = i
            if between - piece < (fold - piece) // 2:  # a name would start far back: split inside one instead
                between = max(between, inside)
            piece = between if between > piece else max(fold, piece + 1)
            breaks.append(piece)
        used = cell_len(line[piece:m.end()])
    return breaks


def fold(lines: Any, width: int) -> list[Any]:
    """Lines of rich Text or Textual Content, each divided where fold_offsets says."""
    out = []
    for line in lines:
        pieces = line.divide(fold_offsets(line.plain, width))
        out += [piece[:len(piece.plain.rstrip(' '))] for piece in pieces[:-1]] + [pieces[-1]]
    return out


class Folded:
    """Plain text whose names and paths wrap at their separators, never mid-word, at whatever width it is
    drawn: a rich renderable, for a RichLog's lines and a DataTable's cells."""

    def __init__(self, text: str | Text) -> None:
        self.text = text if isinstance(text, Text) else Text(text)

    def __str__(self) -> str:  # a DataTable's cell read back as text, as a plain string cell reads
        return self.text.plain

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n").join(fold(self.text.split("\n", allow_blank=True), max(1, options.max_width)))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.text)


class FoldedContent(Visual):
    """A Static's Content (Textual markup), folded as Folded is at the width it is drawn at."""

    def __init__(self, content: Content) -> None:
        self.content = content

    def _at(self, width: int) -> Content:
        return Content("\n").join(fold(self.content.split("\n", allow_blank=True), max(1, width)))

    def render_strips(self, width: int, height: int | None, style: Style, options: RenderOptions) -> list[Strip]:
        return self._at(width).render_strips(width, height, style, options)

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return self.content.get_optimal_width(rules, container_width)

    def get_minimal_width(self, rules: RulesMap) -> int:
        return self.content.get_minimal_width(rules)

    def get_height(self, rules: RulesMap, width: int) -> int:
        return self._at(width).get_height(rules, width)


class Wrapped(Static):
    """A Static whose names and paths wrap at their separators (set it with update(), markup or not)."""

    def render(self) -> Any:
        content = self.content
        if isinstance(content, str):
            return FoldedContent(Content.from_markup(content) if self._render_markup else Content(content))
        return super().render()


def write_new_lines(rich_log: RichLog, lines: list[str], written: int) -> int:
    """Append lines[written:] in one write (each write scrolls); returns how many are written now.
    Paths in them wrap at their separators (Folded)."""
    if len(lines) > written:
        rich_log.write(Folded("\n".join(lines[written:])))
    return len(lines)


def human_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = math.ceil(seconds)  # rounded up: half a second to go is not "0m00s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def progress_text(p: Progress, unit: str = "rows") -> str:
    total = f"/{p.total:,}" if p.total is not None else ""
    rate = f" · {p.rate:,.0f} {unit}/s" if p.rate else ""
    eta = f" · ETA {human_eta(p.eta)}" if p.eta and p.total and p.done < p.total else ""
    return f"{p.done:,}{total}{rate}{eta}"


# The password: after scheme://user: up to the last @ before the path or query. SQLAlchemy's parser stops at the
# first, but a password pasted with its own @ unescaped is still all password: the rest of it showed in the URL.
URL_PASSWORD = re.compile(r"[\w+]+://[^:/]*:(?P<password>[^/?#]*)@")
# scheme://user: or scheme://host: with no @ yet: what follows may be a password being typed.
URL_COLON = re.compile(r"[\w+]+://[^:/@\[]*:")
PORT_SO_FAR = re.compile(r"\d{0,5}(?:[/?]|$)")
# A parameter of the query: a password there (libpq's sslpassword, the MySQL driver's password) is hidden too.
QUERY_PARAMETER = re.compile(r"(?<=[?&])(?P<name>[^=&]*)=(?P<value>[^&]*)")


def hide_password(text: str) -> str:
    """The URL as its field draws it: a password, or what may be one still being typed, as • each.

    Before the @ is typed, `host:` followed by up to 5 digits reads as a port and shows."""
    text = QUERY_PARAMETER.sub(lambda m: f"{m['name']}={'•' * len(m['value'])}" if is_secret_name(m["name"]) else m[0],
                               text)
    m = URL_PASSWORD.match(text)
    if m:
        return text[:m.start("password")] + "•" * len(m["password"]) + text[m.end("password"):]
    m = URL_COLON.match(text)
    if m and not PORT_SO_FAR.match(text, m.end()):
        return text[:m.end()] + "•" * (len(text) - m.end())
    return text


class UrlInput(Input):
    """The URL field: never draws a password (the Connection screen moves one to its Password field once typed)."""

    @property
    def _value(self) -> Text:  # what Input draws; one • per character keeps the cursor in place
        shown = hide_password(self.value)
        return super()._value if shown == self.value else Text(shown, no_wrap=True, overflow="ignore", end="")


class ItemProgress(Horizontal):
    """One item's progress on one line: name, bar, done/total, rate, ETA."""

    # The figures keep room for a million rows with rate and ETA; the bar takes what a wide terminal adds.
    DEFAULT_CSS = """
    ItemProgress { height: 1; }
    ItemProgress > .name { width: 14; }
    ItemProgress > ProgressBar { width: 1fr; min-width: 10; padding-right: 2; }
    ItemProgress > ProgressBar > Bar { width: 1fr; }
    ItemProgress > .figures { width: 48; }
    """

    def __init__(self, name: str, unit: str = "rows", id: str | None = None) -> None:
        super().__init__(id=id)
        self.item = name
        self.unit = unit
        self._latest: Progress | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.item[:13], classes="name", markup=False)  # a table's name
        clock = self.app.progress_clock  # type: ignore[attr-defined]
        yield ProgressBar(show_eta=False, show_percentage=False, clock=clock)
        yield Label("", classes="figures")

    def on_mount(self) -> None:
        self._draw()

    def show(self, p: Progress) -> None:
        self._latest = p
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        p = self._latest
        if p is None:
            return
        bar = self.query_one(ProgressBar)
        if p.total == 0:  # an empty table is done, not indeterminate
            bar.update(total=1, progress=1)
        else:
            bar.update(total=p.total, progress=p.done)
        show(self.query_one(".figures", Label), progress_text(p, self.unit))


class ProgressList(Vertical):
    """A bar per item, in the order the items first reported."""

    DEFAULT_CSS = "ProgressList { height: auto; }"

    def __init__(self, unit: str = "rows", id: str | None = None) -> None:
        super().__init__(id=id)
        self.unit = unit
        self._rows: dict[str, ItemProgress] = {}

    def show(self, progress: dict[str, Progress]) -> None:
        for item, p in progress.items():
            row = self._rows.get(item)
            if row is None:
                row = self._rows[item] = ItemProgress(item, self.unit)
                self.mount(row)
            row.show(p)

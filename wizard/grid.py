"""A table for the headless commands' output, laid out for the width it is given (a terminal's, or a pipe's).

Rich's Table shrinks columns evenly when they do not fit, cutting numbers ("200..."), and pads every line to
its width. Here a number is never cut or wrapped: the columns stand side by side when they fit (headers and
names wrapped at their spaces and separators, the gap narrowed to one space if need be), and otherwise each
row becomes a block of its own, one "header value" line per column. No line ends in spaces.
"""

from __future__ import annotations

import re
from typing import Iterator

from rich.console import Console, ConsoleOptions, RenderResult
from rich.cells import cell_len
from rich.text import Text

# A name or a path may break after these, a sentence at its spaces: "plugin_" / "audit", "/tmp/" / "engine.db".
_PIECES = re.compile(r"\s*(?:[/_.]*[^\s/_.]+[/_.]+(?=\S)|\S+)")


def _wrap(value: str, width: int) -> list[str]:
    """`value` in lines of at most `width` cells, broken at spaces and after separators; a piece wider than
    the width stands alone on its line (it is never cut)."""
    lines: list[str] = []
    for paragraph in value.split("\n"):
        line = ""
        for piece in _PIECES.findall(paragraph):
            if line and cell_len(line) + cell_len(piece) > width:
                lines.append(line)
                line = ""
            line += piece.lstrip() if not line else piece
        lines.append(line)
    return lines


def _narrowest(value: str) -> int:
    return max((cell_len(p.strip()) for p in _PIECES.findall(value)), default=0)


def _widest(value: str) -> int:
    return max(cell_len(line) for line in value.split("\n"))


def _pad(value: str, width: int, right: bool) -> str:
    room = " " * max(width - cell_len(value), 0)
    return room + value if right else value + room


class Grid:
    """Rows under headers. `numbers`: the headers of the columns that hold numbers (right-aligned, never broken).
    A cell is a string, or a (string, style) pair to colour it."""

    def __init__(self, title: str, *headers: str, numbers: tuple[str, ...] = ()) -> None:
        self.title = title
        self.headers = headers
        self.numeric = [h in numbers for h in headers]
        self.rows: list[list[tuple[str, str]]] = []

    def add_row(self, *cells: str | tuple[str, str]) -> None:
        self.rows.append([c if isinstance(c, tuple) else (c, "") for c in cells])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self.title:
            yield from (Text(line, style="italic") for line in _wrap(self.title, width))
        for gap in (2, 1):
            widths = self._fit(width, gap)
            if widths is not None:
                yield from self._side_by_side(widths, gap)
                break
        else:
            yield from self._blocks(width)
        yield Text()  # what follows stands apart

    def _fit(self, width: int, gap: int) -> list[int] | None:
        """Column widths that fit `width` with `gap` spaces between columns, or None when none do: each
        column starts as wide as its widest line and the widest that can wrap gives way first."""
        columns = list(zip(self.headers, *[[cell for cell, _ in row] for row in self.rows]))
        widest = [max(_widest(v) for v in col) for col in columns]
        least = [max([_narrowest(col[0]), *(_widest(v) if num else _narrowest(v) for v in col[1:])])
                 for col, num in zip(columns, self.numeric)]
        widths = list(widest)
        room = width - gap * (len(widths) - 1)
        while sum(widths) > room:
            slack = [w - m for w, m in zip(widths, least)]
            if max(slack) <= 0:
                return None
            i = max(range(len(widths)), key=lambda k: (slack[k] > 0, widths[k]))
            widths[i] -= 1
        return widths

    def _side_by_side(self, widths: list[int], gap: int) -> Iterator[Text]:
        space = " " * gap
        headers = [_wrap(h, w) for h, w in zip(self.headers, widths)]
        tall = max(len(h) for h in headers)
        for i in range(tall):  # headers sit on their last line, above the rule
            cells = [(h[i - tall + len(h)] if i >= tall - len(h) else "", w, num)
                     for h, w, num in zip(headers, widths, self.numeric)]
            yield Text(space.join(_pad(c, w, num) for c, w, num in cells).rstrip(), style="bold")
        yield Text(space.join("─" * w for w in widths))
        for row in self.rows:
            wrapped = [_wrap(cell, w) for (cell, _), w in zip(row, widths)]
            for i in range(max(len(lines) for lines in wrapped)):
                line = Text()
                for k, ((_, style), lines, w, num) in enumerate(zip(row, wrapped, widths, self.numeric)):
                    cell = lines[i] if i < len(lines) else ""
                    line.append((space if k else "") + _pad(cell, w, num), style=style)
                line.rstrip()
                yield line

    def _blocks(self, width: int) -> Iterator[Text]:
        """One block per row: its first cell, then "header  value" for the others, numbers aligned."""
        label = max(cell_len(h) for h in self.headers[1:])
        figures = max((_widest(row[k][0]) for row in self.rows for k in range(1, len(row)) if self.numeric[k]),
                      default=0)
        for row in self.rows:
            yield from (Text(line, style="bold") for line in _wrap(row[0][0], width))
            for header, (cell, style), num in zip(self.headers[1:], row[1:], self.numeric[1:]):
                lead = f"  {_pad(header, label, False)}  "
                for i, line in enumerate(_wrap(cell, max(width - len(lead), 1))):
                    shown = _pad(line, figures, True) if num else line
                    yield Text(lead if i == 0 else " " * len(lead)) + Text(shown, style=style)

"""Names and values from the source that look like markup go through every screen as they are.

A table named `tag[/]` once crashed the Start screen: the screens spliced names, paths and messages
into markup. This drives the whole move with such tables and checks the screens and the target.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from textual.content import Content

from screens.widgets import esc
from tui_support import make_app, press, screen_text, screenshot_text, settle
from wizard.db import quote

# Markup-looking names and values; `[red]x` has no declared type, so its numbers stay numbers in
# SQLite and the data scan lists the column (counted conversion to text) on the pre-flight screen.
ODD_SQL = """
CREATE TABLE "tag[/]" ("id" INTEGER PRIMARY KEY, "[red]x" TEXT);
CREATE TABLE "[b]old" ("k" TEXT PRIMARY KEY, "[red]x");
INSERT INTO "tag[/]" VALUES (1, '[/]'), (2, '[b]bold?[/b]'), (3, ':smile: [$accent]v');
INSERT INTO "[b]old" VALUES ('[/]', 7), ('[i]k', 'text'), ('k\\', 8);
"""
ODD = ("tag[/]", "[b]old")


def odd_source(engine_db: Path, folder: Path) -> Path:
    db = folder / "odd.db"
    db.write_bytes(engine_db.read_bytes())
    with sqlite3.connect(db) as conn:
        conn.executescript(ODD_SQL)
    conn.close()
    return db


def sqlite_rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT * FROM {quote(table)} ORDER BY 1").fetchall()
    conn.close()
    return rows


def sqlite_columns(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({quote(table)})")]
    conn.close()
    return columns


async def pg_rows(url: str, table: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {quote(table)} ORDER BY 1")]
    finally:
        await conn.close()


async def pg_columns(url: str, table: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = $1 ORDER BY ordinal_position", table)]
    finally:
        await conn.close()


def shows(app, *texts: str) -> str:
    """The screen as text, and as the SVG a screenshot exports, each holding every one of `texts`."""
    shown = screen_text(app)
    assert "unexpected error" not in shown, shown  # a worker's exception, said in a notification
    for text in texts:
        assert text in shown, (text, shown)
    svg = screenshot_text(app)
    for text in texts:
        assert text in svg, (text, svg)
    return shown


async def test_markup_names_through_the_whole_move(tmp_path: Path, engine_db: Path, pg_url: str) -> None:
    db = odd_source(engine_db, tmp_path)
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{db}", target_text=pg_url)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot)
        shown = shows(app, "Tables (rows)", "Move to PostgreSQL")  # at 120 by 50: a table per line
        assert re.search(r"tag\[/\] +3\b", shown) and re.search(r"\[b\]old +3\b", shown), shown
        await press(pilot, "enter", "ctrl+t")
        shows(app, "Ready.")
        await press(pilot, "ctrl+n")
        # The scan lists the column that gets its numbers as text, with the key of a row.
        shows(app, "n starts the move", "Data scan:", "[b]old", "[red]x", "[/], k\\")
        await press(pilot, "n", "y")  # the move runs; settle waits for it
        assert app.session.log.state == "done", app.session.log.error
        shows(app, "Backup proven")
        await press(pilot, "n", "n")
        shows(app, "step 5 of 7", "Copied and verified row by row", "tag[/]", "[b]old")  # a bar per table
        await press(pilot, "n")
        shows(app, "Every row accounted for", "tag[/]", "[b]old")
        verdicts = app.screen.query_one("#verdicts")
        for table in ODD:
            verdicts.move_cursor(row=verdicts.get_row_index(table))
            await press(pilot, "enter")  # the table's own rows: every one equal
            shows(app, f"{table}: every row equal")
        await press(pilot, "n")
        shows(app, "step 7 of 7")
        await press(pilot, "d", "end", "enter")  # Done, then the Runs screen: the run's steps, what undo would do
        shows(app, "steps of", "ctrl+r measures", "[b]old, tag[/]")

    assert app.return_code in (None, 0)
    for table in ODD:  # each table under its exact name, its columns too, with every row
        assert await pg_columns(pg_url, table) == sqlite_columns(db, table), table
        want = sqlite_rows(db, table)
        if table == "[b]old":  # the untyped column: SQLite kept the numbers, the target has them as text
            want = [(key, str(x)) for key, x in want]
        assert len(want) == 3 and await pg_rows(pg_url, table) == want, table


@pytest.mark.parametrize("value", ["tag[/]", "[b]old", "[red]x", "[B]X", "[$accent]y", "[@click=app.quit]z",
                                   "x[/b]", "C:\\dir\\[b]x", "[[b]]", ":smile:", "plain"])
def test_esc_keeps_any_value_literal_in_markup(value: str) -> None:
    shown = Content.from_markup(f"[b]name:[/] {esc(value)} [green]ok[/]")
    assert shown.plain == f"name: {value} ok"

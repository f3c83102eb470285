"""`wizard verify --table T` compares one table; the Verify screen's o does the same for the highlighted table,
with the same verdict, and leaves the move's report and the verdict Next goes by as the whole verification."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from engine_data import write
from test_tui_journeys import pg_counts, sqlite_counts
from tui_support import make_app, press, screen_text, settle

WIZARD = str(Path(sys.executable).with_name("wizard"))


def verify_cli(*args: str) -> dict:
    done = subprocess.run([WIZARD, "verify", *args, "--json"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    (summary,) = [d for d in map(json.loads, done.stdout.splitlines()) if d.get("event") == "VerifySummary"]
    return summary


async def test_o_verifies_the_highlighted_table_alone_as_verify_table_does(tmp_path: Path, engine_db: Path,
                                                                           pg_url: str) -> None:
    state = tmp_path / "state"
    app = make_app(state, source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n", "y", "n", "n", "n")  # the move, to its verification
        assert "Every row accounted for" in screen_text(app), screen_text(app)
        run = app.session.run
        report = run.folder / "verify.md"
        whole_report = report.read_bytes()
        # The engine (or an operator) changes a row of the target after the move.
        await asyncio.to_thread(write, pg_url, "UPDATE workflows SET name = 'changed since' "
                                               "WHERE id = (SELECT min(id) FROM workflows)")
        tables = [t.table for t in app.session.verify.tables]
        await press(pilot, *["down"] * tables.index("workflows"), "o")
        shown = " ".join(screen_text(app).split())
        assert "workflows alone: differences found" in shown, shown
        one = app.screen.report
        assert [t.table for t in one.tables] == ["workflows"] and one.tables[0].different == 1, one
        assert app.screen.can_go_next() is False  # the table differs now: Next waits for the whole verification
        assert app.session.verify.ok and len(app.session.verify.tables) == len(tables)  # the move's verdict kept
        assert report.read_bytes() == whole_report  # the run's report stays the whole verification
        tui = one.to_dict()["tables"][0]

    cli = verify_cli("--source", f"sqlite:///{engine_db}", "--target", pg_url, "--table", "workflows",
                     "--run", run.id, "--state-dir", str(state))
    (cli_table,) = cli["tables"]
    keys = ("table", "status", "source_rows", "target_rows", "equal", "different", "only_source", "only_target")
    assert {k: cli_table[k] for k in keys} == {k: tui[k] for k in keys}
    assert await pg_counts(pg_url) == sqlite_counts(engine_db)  # looking wrote nothing


async def test_a_differing_value_holding_a_newline_and_an_escape_is_shown_escaped(tmp_path: Path, engine_db: Path,
                                                                                 pg_url: str) -> None:
    """Enter on a table that differs shows its differing values side by side; a value with a newline and ESC in it
    (another program's row) was drawn as it is: the newline cut the cell, the ESC went to the terminal. It is
    spelled as the CLI's refusal spells a key (\\n, \\x1b)."""
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n", "y", "n", "n", "n")  # the move, to its verification
        await asyncio.to_thread(write, pg_url, "UPDATE workflows SET name = 'a' || chr(10) || 'b' || chr(27) "
                                               "|| '[31mc' WHERE id = (SELECT min(id) FROM workflows)")
        tables = [t.table for t in app.session.verify.tables]
        await press(pilot, *["down"] * tables.index("workflows"), "o", "enter")
        diffs = app.screen.query_one("#diffs")
        cells = [list(map(str, diffs.get_row_at(i))) for i in range(diffs.row_count)]
        assert [c[1:] for c in cells] == [["name", cells[0][2], "a\\nb\\x1b[31mc"]], cells
        assert "\x1b" not in screen_text(app) and "a\\nb\\x1b[31mc" in screen_text(app), screen_text(app)
    assert await pg_counts(pg_url) == sqlite_counts(engine_db)  # looking wrote nothing

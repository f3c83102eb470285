"""A refusal names an example key from the source's data; a key another program wrote with a newline and an
escape sequence in it was printed as it is: the one-line refusal became two lines, the second starting
'error: fake line', and ESC [31m reached the operator's terminal. The TUI's Pre-flight screen shows it as the
refusal spells it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fault_support import migrate, small_engine_file
from move_helpers import tables_in


def test_a_key_with_a_newline_and_an_escape_is_named_on_one_line_as_python_spells_it(tmp_path: Path,
                                                                                   pg_url: str) -> None:
    source = small_engine_file(tmp_path / "engine.db", (
        "INSERT INTO users (id, username, created_at) VALUES (?, 'e', 'not a time')",
        ("evil\nerror: fake line\x1b[31mred",)))
    refused = migrate(source, pg_url, tmp_path / "state")
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert "\x1b" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: 1 row(s) PostgreSQL will not take as they are (listed above; first users.created_at at key "
        "evil\\nerror: fake line\\x1b[31mred: text that is not a timestamp in a timestamp column); nothing was "
        "written: choose --on-orphans quarantine or null, or fix the source")
    assert "(e.g. evil\\nerror: fake line\\x1b[31mred)" in refused.stderr
    assert tables_in(pg_url) == []


async def test_the_preflight_screen_shows_such_a_key_as_the_refusal_spells_it(tmp_path: Path, pg_url: str) -> None:
    """The Pre-flight screen's data scan drew the key as it is: its newline broke the example keys' cell over two
    lines ('evil' / 'error: fake line'), and its ESC went to the terminal with the screen."""
    from screens.preflight import PreflightScreen
    from tui_support import make_app, press, screen_text, settle
    from wizard.journal import list_runs

    key = "evil\nerror: fake line\x1b[31mred"
    source = small_engine_file(tmp_path / "engine.db", (
        "INSERT INTO users (id, username, created_at) VALUES (?, 'e', 'not a time')", (key,)))
    before = source.read_bytes()
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{source}", target_text=pg_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n")
        assert isinstance(app.screen, PreflightScreen), screen_text(app)
        scan = app.screen.query_one("#scan")
        cells = [list(map(str, scan.get_row_at(i))) for i in range(scan.row_count)]
        assert ["users", "created_at", "1"] == cells[0][:3] and cells[0][4] == "evil\\nerror: fake line\\x1b[31mred", \
            cells
        shown = screen_text(app)
        assert "\x1b" not in shown and "evil\\nerror: fake line\\x1b[31mred" in shown, shown
        assert not any(line.lstrip("│ ").startswith("error: fake line") for line in shown.splitlines()), shown
    assert source.read_bytes() == before and list_runs(tmp_path / "state") == []
    assert await asyncio.to_thread(tables_in, pg_url) == []

"""A refusal names an example key from the source's data; a key another program wrote with a newline and an
escape sequence in it was printed as it is: the one-line refusal became two lines, the second starting
'error: fake line', and ESC [31m reached the operator's terminal.
"""

from __future__ import annotations

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

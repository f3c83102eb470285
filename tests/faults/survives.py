"""README's "What it survives" tables, written on purpose rather than as a side effect of a test run.

    python -m tests.faults.survives

runs every fault test in one session (`pytest -q -m '' tests/faults`). Only when every one of them passed
does it keep what each recorded (the `survived` fixture) in tests/faults/survived.json and write README's
tables from that file. tests/test_readme_survives.py checks that README's tables are exactly that file's,
so a hand edit of either shows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"
RECORDS = HERE / "survived.json"
START, END = "<!-- survives:start -->", "<!-- survives:end -->"
ROWS_ENV = "WIZARD_SURVIVES_JSON"  # where a whole, passing run leaves its rows (tests/faults/conftest.py)

# A test's own folders (pytest's tmp_path, tempfile's) differ on every run: shown as <tmp>, so the
# tables change only when what the wizard did changes.
_TEMP_PATH = re.compile(r"(?:/private)?" + re.escape(tempfile.gettempdir()) + r"/[^\s:'\"`,;)]*")


def _cell(value: object) -> str:
    return _TEMP_PATH.sub("<tmp>", re.sub(r"\s+", " ", str(value))).replace("|", "\\|").strip()


def render(rows: list[dict]) -> str:
    lines = ["| fault | what the wizard did | rows lost |", "|---|---|---:|"]
    lines += [f"| {_cell(r['fault'])} | {_cell(r['did'])} | {r['rows_lost']} |" for r in rows if "fault" in r]
    lines += ["", "| bad input | exit | what the wizard said | changed |", "|---|---:|---|---|"]
    lines += [f"| {_cell(r['input'])} | {r['exit_code']} | {_cell(r['message'])} | {_cell(r['changed'])} |"
              for r in rows if "input" in r]
    return "\n".join(lines) + "\n"


def readme_tables(text: str) -> str:
    """What README holds between its markers."""
    return text.split(START, 1)[1].split(END, 1)[0].removeprefix("\n")


def write_readme(rows: list[dict]) -> None:
    text = README.read_text()
    before, rest = text.split(START, 1)
    README.write_text(f"{before}{START}\n{render(rows)}{END}{rest.split(END, 1)[1]}")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rows.json"
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "", str(HERE)], cwd=HERE.parents[1],
                              env={**os.environ, ROWS_ENV: str(out)})
        if done.returncode != 0 or not out.exists():
            print("not every fault test passed: README and tests/faults/survived.json left as they were",
                  file=sys.stderr)
            return done.returncode or 1
        rows = json.loads(out.read_text())
    RECORDS.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    write_readme(rows)
    print(f"{len(rows)} rows: {RECORDS} and README's tables written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate the README's screenshots: the demo journey at 80x24, driven by keys, then one at 120x40.

    python docs/screenshots.py        (needs PostgreSQL on 127.0.0.1:5432, as `wizard demo` does)

Each SVG is what the terminal shows at that moment of a real move and its rollback.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import asyncpg
from textual.clock import MockClock

from screens.state import Session
from wizard.app import WizardApp
from wizard.demo import LOCAL_SERVER, prepare
from wizard.urls import parse_url

DOCS = Path(__file__).resolve().parent
FOLDER = Path("/tmp/wizard-demo")

# (file name, keys pressed before the picture); workers finish between keys.
SHOTS = [
    ("start.svg", []),
    ("connection.svg", ["enter", "ctrl+t"]),
    ("preflight.svg", ["ctrl+n"]),
    ("copy.svg", ["n", "y", "n", "n"]),
    ("verify.svg", ["n"]),
    ("finish.svg", ["n", "a", "y"]),
    ("rollback-confirm.svg", ["d", "ctrl+r"]),  # Done, then Ctrl+R from the Start screen
    ("rollback-done.svg", ["y"]),
]
# The same source moved again in a terminal of 120x40: what the room is used for.
WIDE = [
    ("start-120x40.svg", ["escape"]),
    ("copy-120x40.svg", ["enter", "ctrl+t", "ctrl+n", "n", "y", "n", "n"]),
]


async def settle(pilot) -> None:
    while True:
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


async def shoot(pilot, shots: list[tuple[str, list[str]]], size: tuple[int, int] | None = None) -> None:
    if size is not None:
        await pilot.resize_terminal(*size)
    await settle(pilot)
    for name, keys in shots:
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.save_screenshot(name, str(DOCS))
        print(f"wrote docs/{name}", file=sys.stderr)


async def main() -> None:
    shutil.rmtree(FOLDER, ignore_errors=True)
    demo = await prepare(executions=20_000, folder=FOLDER)
    session = Session(state_dir=demo.state_dir, env_file=demo.env_file, source_text=demo.source,
                      target_text=demo.target, banner="[b]Demo[/]: the sample database below, and an empty "
                      "PostgreSQL database to move it to. Keys are in the footer; Ctrl+R undoes it all.")
    app = WizardApp(session, progress_clock=MockClock())
    async with app.run_test(size=(80, 24)) as pilot:
        await shoot(pilot, SHOTS)
        await shoot(pilot, WIDE, size=(120, 40))
    admin = await asyncpg.connect(LOCAL_SERVER)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parse_url(demo.target).database}" WITH (FORCE)')
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())

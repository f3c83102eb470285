"""Helpers for the TUI tests: an app on a session, waiting without sleeping, the screen as text."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from textual.clock import MockClock
from textual.pilot import Pilot

from screens.state import Session
from wizard.app import WizardApp


def make_app(state_dir: Path, **fields: Any) -> WizardApp:
    """The wizard on a session; progress bars on a stopped clock so they draw the same every time."""
    return WizardApp(Session(state_dir=state_dir, **fields), progress_clock=MockClock())


async def settle(pilot: Pilot) -> None:
    """Wait until no worker runs and every message is handled (a worker may start the next one),
    the app's coalesced redraw of the run's events too: one firing as the app closes can fail it."""
    app = pilot.app
    while True:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if getattr(app, "_redraw_pending", False) and app.is_running:
            await pilot.pause(0.05)  # its timer fires REDRAW_INTERVAL after the first event
            continue
        if not any(w.is_running for w in app.workers):
            return


def screen_text(app: WizardApp) -> str:
    """What the terminal shows, as plain text lines."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(segment.text for segment in strip) for strip in update.strips)


def screenshot_text(app: WizardApp) -> str:
    """The text of the SVG export_screenshot gives (what an operator's screenshot would hold)."""
    texts = re.findall(r"<text[^>]*>(.*?)</text>", app.export_screenshot(), re.S)
    return "".join(html.unescape(t) for t in texts).replace("\xa0", " ")


async def press(pilot: Pilot, *keys: str) -> None:
    """Press keys one by one, letting every worker they start finish in between."""
    for key in keys:
        await pilot.press(key)
        await settle(pilot)

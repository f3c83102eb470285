"""Single screens' behaviour: errors inline, keys greyed until they can act, the health check."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from screens.connection import ConnectionScreen
from screens.start import StartScreen
from tui_support import make_app, press, screen_text, settle
from wizard.errors import StepError
from wizard.health import get_version


async def test_a_target_that_does_not_answer_is_said_inline(tmp_path: Path, engine_db: Path) -> None:
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}",
                   target_text="postgresql://wizard:s3cret@127.0.0.1:1/engine")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t")
        shown = screen_text(app)
        assert isinstance(app.screen, ConnectionScreen)
        assert "no server answers there" in shown, shown
        assert "s3cret" not in shown
        assert app.screen.check_action("next", ()) is None  # Next stays greyed
        await press(pilot, "ctrl+n", "escape")
        assert isinstance(app.screen, StartScreen)


async def test_ctrl_r_is_greyed_until_the_run_changed_something(tmp_path: Path, engine_db: Path) -> None:
    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.check_action("rollback", ()) is None
        await press(pilot, "ctrl+r")
        assert isinstance(app.screen, StartScreen)  # nothing to confirm, nothing done
        await press(pilot, "down", "enter", "a", "y")  # an upgrade in place runs
        assert app.check_action("rollback", ()) is True
        await press(pilot, "ctrl+r")
        assert "Roll back?" in screen_text(app)
        await press(pilot, "enter")  # focus starts on Cancel
        assert "Roll back?" not in screen_text(app)
        assert app.session.run.state() == "finished"


@pytest.fixture
def engine_http(tmp_path: Path):
    """A stand-in for the engine's API: /api/version answers, anything else is a 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            ok = self.path == "/api/version"
            self.send_response(200 if ok else 500)
            self.end_headers()
            self.wfile.write(b'{"version": "1.1.0"}' if ok else b"boom")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_health_check(engine_http: str) -> None:
    assert get_version(f"{engine_http}/api/version") == 'HTTP 200 {"version": "1.1.0"}'
    with pytest.raises(StepError, match="HTTP 500"):
        get_version(f"{engine_http}/other")
    with pytest.raises(StepError, match="did not answer"):
        get_version("http://127.0.0.1:1/api/version", timeout=1)
    with pytest.raises(StepError, match="not an http"):
        get_version("file:///etc/passwd")


async def test_health_check_from_the_finish_screen(tmp_path: Path, engine_http: str) -> None:
    from textual.widgets import Input

    from screens.state import UPGRADE

    app = make_app(tmp_path / "state")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.session.journey = UPGRADE
        app.go("finish")
        await settle(pilot)
        app.screen.query_one("#health-url", Input).value = f"{engine_http}/api/version"
        await press(pilot, "h")
        assert "The engine answers" in screen_text(app) and "1.1.0" in screen_text(app), screen_text(app)


async def test_escape_never_leads_back_to_where_a_second_run_could_start(tmp_path: Path, engine_db: Path,
                                                                       pg_url: str) -> None:
    from screens.backup import BackupScreen

    app = make_app(tmp_path / "state", source_text=f"sqlite:///{engine_db}", target_text=pg_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "ctrl+t", "ctrl+n", "n", "y")
        assert isinstance(app.screen, BackupScreen)
        await press(pilot, "escape")
        assert isinstance(app.screen, BackupScreen)  # greyed: the move has started
        await press(pilot, "n", "n", "n", "escape")
        assert "step 5 of 7" in screen_text(app)  # from Verify back to Copy: a view, safe


def test_a_progress_line_never_says_nothing_is_left_while_rows_remain() -> None:
    """At 80,000 rows/s the last 50,000 rows take 0.6 s: the ETA said 0m00s while the bar was not full."""
    from screens.widgets import progress_text
    from wizard.events import Progress

    line = progress_text(Progress("copy", "executions", 950_000, 1_000_000, rate=80_000.0, eta=0.6))
    assert line.endswith("ETA 0m01s"), line
    assert progress_text(Progress("copy", "executions", 0, 1_000_000, rate=1.0, eta=3599.2)).endswith("ETA 1h00m")

"""`python -m bench.tui_overhead [--executions N] [--repeat 3]`: the same move headless and in the TUI.

What drawing costs a copy: `run_move` rendered by the CLI's progress printer, against
`run_move` as the TUI's journey worker (Textual, headless, 80x24, every screen update
coalesced to at most four a second). Each run goes into a fresh PostgreSQL database;
the two are taken in turns and the figures are the fastest of the repeats. The bound the TUI must keep: 5% slower at most.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench import pg, sources
from screens.state import MOVE, Session
from wizard.app import WizardApp
from wizard.cli import EventPrinter
from wizard.move.run import MoveOptions, MoveResult, run_move
from wizard.urls import parse_url

DATABASE = "wizard_bench_tui"


async def headless(source: Path, target: str, state: Path) -> tuple[MoveResult, float]:
    printer = EventPrinter(as_json=False)
    try:
        options = MoveOptions(parse_url(f"sqlite:///{source}"), parse_url(target), state, yes=True)
        began = time.perf_counter()
        result = await run_move(options, printer)
        return result, time.perf_counter() - began
    finally:
        printer.close_bars()


async def in_the_tui(source: Path, target: str, state: Path) -> tuple[MoveResult, float]:
    session = Session(state_dir=state, source_text=f"sqlite:///{source}", target=parse_url(target))
    app = WizardApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()  # the Start screen, as an operator sees it first
        session.journey = MOVE
        app.go("copy")  # the busiest screen: a bar per table, the overall bar, the live log
        await pilot.pause()
        began = time.perf_counter()  # the move, not the app's start and stop
        app.start_move()
        await pilot.pause()
        await app.workers.wait_for_complete()
        seconds = time.perf_counter() - began
        await pilot.pause()
    if session.log.error:
        raise SystemExit(f"the move in the TUI failed: {session.log.error}")
    return session.log.result, seconds


def timed(way, source: Path) -> tuple[float, float]:
    """(whole move, copy step) in seconds."""
    target = pg.fresh_database(pg.ADMIN_URL, DATABASE)
    with tempfile.TemporaryDirectory() as state:
        result, seconds = asyncio.run(way(source, target, Path(state)))
    pg.drop_database(pg.ADMIN_URL, DATABASE)
    return seconds, result.report.timings["copy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = sources.source_db(args.executions)
    sources.warm_page_cache(source)
    runs: dict[str, list[tuple[float, float]]] = {"headless": [], "tui": []}
    for _ in range(args.repeat):  # taken in turns, so a busy moment on the machine hits both alike
        runs["headless"].append(timed(headless, source))
        runs["tui"].append(timed(in_the_tui, source))
    figures = {name: (min(r[0] for r in rs), min(r[1] for r in rs)) for name, rs in runs.items()}
    (h_wall, h_copy), (t_wall, t_copy) = figures["headless"], figures["tui"]
    print(f"{args.executions:,} executions, fastest of {args.repeat}:")
    print(f"  headless: move {h_wall:.2f} s, copy {h_copy:.2f} s")
    print(f"  TUI:      move {t_wall:.2f} s, copy {t_copy:.2f} s")
    print(f"  the TUI's cost: move {100 * (t_wall / h_wall - 1):+.1f}%, copy {100 * (t_copy / h_copy - 1):+.1f}% "
          "(bound: +5%)")


if __name__ == "__main__":
    main()

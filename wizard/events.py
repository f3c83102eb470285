"""The events every long operation reports through: plain dataclasses, no I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Union


@dataclass(frozen=True)
class StepStarted:
    step: str
    title: str


@dataclass(frozen=True)
class Progress:
    step: str
    item: str  # what is progressing: a table, a revision, "backup"
    done: int
    total: int | None = None
    rate: float | None = None  # units per second
    eta: float | None = None  # seconds left


@dataclass(frozen=True)
class Warn:
    step: str
    message: str


@dataclass(frozen=True)
class StepFinished:
    step: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    passed: bool = True  # False: the step ran to its end and found a reason to stop (a failed check)


@dataclass(frozen=True)
class StepFailed:
    step: str
    error: str


Event = Union[StepStarted, Progress, Warn, StepFinished, StepFailed]
Emit = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """An Emit for callers that do not watch progress."""


class ProgressMeter:
    """Turns a running count into Progress events, at most `max_per_second` of them.

    The rate is the mean over the whole run, so a slow link's bursts do not make
    the ETA jump about.
    """

    def __init__(
        self,
        emit: Emit,
        step: str,
        item: str,
        total: int | None,
        max_per_second: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self.step = step
        self.item = item
        self.total = total
        self.done = 0
        self._clock = clock
        self._start = clock()
        self._interval = 1.0 / max_per_second
        self._last = float("-inf")

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._emit(self._event(now))

    def finish(self) -> None:
        """Always emit the final count, however recent the last event was."""
        self._emit(self._event(self._clock()))

    def _event(self, now: float) -> Progress:
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else None
        eta = None
        if rate and self.total is not None:
            eta = max(0.0, (self.total - self.done) / rate)
        return Progress(self.step, self.item, self.done, self.total, rate, eta)


class StopRequest:
    """Asks a long operation to stop at its next safe point (a checkpoint).

    Set from a signal handler, the TUI's thread or a test; thread-safe. Operations
    that see it set finish the chunk in hand, record where they are, and raise
    errors.Interrupted.
    """

    def __init__(self) -> None:
        import threading

        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

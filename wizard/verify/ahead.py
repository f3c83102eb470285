"""A server-side cursor's chunks, the next one on its way while the current one is compared."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Awaitable, Callable


class ReadAhead:
    """`fetch()` gives the next chunk ([] at the end); `finish()`, if given, releases the cursor on close."""

    def __init__(self, fetch: Callable[[], Awaitable[list]],
                 finish: Callable[[], Awaitable[None]] | None = None) -> None:
        self._fetch = fetch
        self._finish = finish
        self._ahead: asyncio.Future | None = asyncio.ensure_future(fetch())

    async def next(self) -> list:
        if self._ahead is None:
            return []
        rows = await self._ahead
        self._ahead = asyncio.ensure_future(self._fetch()) if rows else None
        return rows

    async def close(self) -> None:
        if self._ahead is not None:
            # A cursor that is finished reads on to its result's end anyway: its chunk in flight is let land, as
            # a read cut between a packet's header and its body would leave the connection out of step.
            if self._finish is None:
                self._ahead.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._ahead
        if self._finish is not None:
            await self._finish()

"""Job slots: how many generations may be in flight at once, handed out by priority."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class Stopped(Exception):
    """New submissions are stopped (out of credits, fail-fast, interrupt)."""


class JobSlots:
    """A counting semaphore served by priority, whose limit adapts to 429s.

    Holds one slot per generation in flight; the highest priority (the longest chain
    still to run) goes first, so the critical path never waits behind leaf looks.
    """

    def __init__(self, limit: int) -> None:
        self.max = limit
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._last_throttle = 0.0

    async def acquire(self, priority: int) -> None:
        if self.in_use < self.limit and not self._waiters:
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()  # granted and cancelled at once: hand the slot on
            raise

    def _take(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def force(self) -> None:
        """Count a job the server already runs (a resumed generation), even past the limit."""
        self._take()

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.limit:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                self._take()
                future.set_result(None)

    def throttled(self) -> None:
        """The server refused a job: it allows fewer than we hold, so hold fewer."""
        self.limit = max(1, self.in_use - 1)
        self._last_throttle = time.monotonic()

    def succeeded(self) -> None:
        # Creep back up after a quiet spell, in case the 429 came from another client's burst.
        if self.limit < self.max and time.monotonic() - self._last_throttle > 30:
            self.limit += 1
            self._last_throttle = time.monotonic()
            self._wake()

    def cancel_waiters(self) -> None:
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(Stopped())
        self._waiters.clear()

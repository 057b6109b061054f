"""Job slots: how many generations may be in flight at once, handed out by priority."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

PLEDGE_SECONDS = 0.25  # a slot kept for an unblocked look, at most (it asks within ms)


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
        self._pledged: dict[int, int] = {}  # pledge -> priority of the look it is kept for

    def pledge(self, priority: int) -> int:
        """Keep a slot, from lower priorities, for a look just unblocked that is about to
        ask for one (it takes a few loop turns to get there); expires on its own."""
        token = next(self._order)
        self._pledged[token] = priority
        asyncio.get_running_loop().call_later(PLEDGE_SECONDS, self.forget, token)
        return token

    def forget(self, token: int) -> None:
        """The pledged look will not ask (or already has): the slot is free for anyone."""
        if self._pledged.pop(token, None) is not None:
            self._wake()

    def _held(self, priority: int) -> int:
        return sum(1 for p in self._pledged.values() if p > priority)

    async def acquire(self, priority: int, pledge: int | None = None) -> None:
        if pledge is not None:
            self._pledged.pop(pledge, None)
        outranks = not self._waiters or -self._waiters[0][0] < priority
        if outranks and self.in_use + self._held(priority) < self.limit:
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._order), future))
        self._wake()
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
        while self._waiters and self.in_use + self._held(-self._waiters[0][0]) < self.limit:
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

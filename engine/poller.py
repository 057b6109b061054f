"""Watching looks in flight: one paginated listing per group, not one GET per look."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .client import HeyGenClient, LookInfo
from .errors import ApiStalledError, LooksError


class PollOptions(Protocol):
    """What the poller reads from a run's options."""

    @property
    def poll_min(self) -> float: ...
    @property
    def poll_max(self) -> float: ...
    @property
    def missing_after(self) -> float: ...  # seconds a look may be absent from listings


@dataclass
class _Watch:
    look_id: str
    started: float
    until: Callable[[LookInfo], bool]
    future: asyncio.Future[LookInfo | None]
    misses: int = 0


class LookPoller:
    """Watches looks in flight with one paginated listing per group, not one GET per look.

    The interval follows observed generation times: sleep until the earliest look is
    expected to finish, then poll at a small fraction of the typical duration.
    """

    def __init__(self, client: HeyGenClient, options: PollOptions) -> None:
        self.client = client
        self.options = options
        self.estimate: float | None = None
        self.requests = 0
        self._groups: dict[str, list[_Watch]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def observe(self, seconds: float) -> None:
        self.estimate = seconds if self.estimate is None else 0.8 * self.estimate + 0.2 * seconds

    async def wait(
        self,
        group_id: str,
        look_id: str,
        started: float,
        until: Callable[[LookInfo], bool],
        timeout: float,
    ) -> LookInfo | None:
        """The look once until(look) holds; None when it vanished; TimeoutError past timeout."""
        future: asyncio.Future[LookInfo | None] = asyncio.get_running_loop().create_future()
        watch = _Watch(look_id, started, until, future)
        self._groups.setdefault(group_id, []).append(watch)
        if group_id not in self._tasks or self._tasks[group_id].done():
            self._tasks[group_id] = asyncio.create_task(self._poll(group_id))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            watches = self._groups.get(group_id, [])
            if watch in watches:
                watches.remove(watch)

    def _delay(self, watches: Sequence[_Watch]) -> float:
        lo, hi = self.options.poll_min, self.options.poll_max
        now = time.monotonic()
        oldest = min(w.started for w in watches)
        if self.estimate is None:
            return min(hi, max(lo, 0.1 * (now - oldest)))
        # Poll densely around the expected finish (a slot idles until we notice), then back
        # off geometrically for looks that run late, as real generation times spread widely.
        expected = oldest + self.estimate
        late = now - expected
        step = min(hi, max(lo, 0.01 * self.estimate, 0.1 * late))
        return expected - 2 * step - now if late < -2 * step else step

    async def _poll(self, group_id: str) -> None:
        try:
            await self._poll_group(group_id)
        except Exception as e:
            # Not the API's failure (those are LooksErrors, retried above) but a bug: every
            # look watched in the group hears it now, rather than waiting out its timeout.
            for watch in self._groups.get(group_id, []):
                if not watch.future.done():
                    watch.future.set_exception(e)

    async def _poll_group(self, group_id: str) -> None:
        while watches := self._groups.get(group_id):
            await asyncio.sleep(self._delay(watches))
            watches = self._groups.get(group_id, [])
            if not watches:
                break
            try:
                looks = {look.id: look for look in await self.client.list_looks(group_id=group_id)}
            except ApiStalledError as e:
                for watch in watches:  # the API gave up answering: so do its watchers
                    if not watch.future.done():
                        watch.future.set_exception(e)
                continue
            except LooksError:
                continue  # the client already retried; keep watching until the node timeout
            finally:
                self.requests += 1
            for watch in list(watches):
                look = looks.get(watch.look_id)
                if look is None:
                    # A listing can lag behind a create: absent for a while is not gone.
                    watch.misses += 1
                    patient = time.monotonic() - watch.started >= self.options.missing_after
                    if watch.misses >= 3 and patient and not watch.future.done():
                        watch.future.set_result(None)
                elif watch.until(look) and not watch.future.done():
                    watch.future.set_result(look)

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

"""Watching looks in flight: one paginated listing per group, when the policy says so.

One task runs the schedule for every group (engine/poll_policy.py decides when each group
is worth a request); each due group is listed once, and every look watched in it learns
its status from that one answer. Durations are measured here, from when a look was last
seen running and first seen finished, and feed the policy's model.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .client import HeyGenClient, LookInfo
from .errors import ApiError, ApiStalledError, LooksError
from .poll_policy import PAGE_SIZE, DurationModel, InFlight, Limits, Target, due, pressure


class PollOptions(Protocol):
    """What the poller reads from a run's options."""

    @property
    def poll_min(self) -> float: ...
    @property
    def poll_max(self) -> float: ...
    @property
    def missing_after(self) -> float: ...  # seconds a look may be absent from listings


@dataclass(eq=False)
class _Watch:
    look_id: str
    started: float
    until: Callable[[LookInfo], bool]
    future: asyncio.Future[LookInfo | None]
    seen_at: float  # last seen not yet done (started until then)
    chain: int
    misses: int = 0
    polled_at: float | None = None  # when a poll meant to show it was last sent
    consent: bool = False  # seen waiting for consent: its age is no generation time
    absent: bool = False  # not in the last answer that should have shown it, or no answer

    def in_flight(self, longest: int) -> InFlight:
        return InFlight(self.started, self.seen_at, self.chain / longest, self.absent)


@dataclass(eq=False)
class _Group:
    watches: list[_Watch]
    listed: int = 0  # looks in its last listing
    polled_at: float | None = None
    polling: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.listed / PAGE_SIZE))


class LookPoller:
    """Watches looks in flight with one paginated listing per group, not one GET per look."""

    def __init__(
        self,
        client: HeyGenClient,
        options: PollOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        limits: Limits | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.clock = clock
        self.limits = limits or Limits(min_interval=options.poll_min, max_interval=options.poll_max)
        self.model = DurationModel(self.limits.samples)
        self.requests = 0
        self.watched = 0  # looks (waits) so far: the request budget grows with them
        self._groups: dict[str, _Group] = {}
        self._task: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._wake_at = -math.inf  # when the schedule plans again on its own
        self._longest = 1  # the longest chain watched: the critical path

    async def wait(
        self,
        group_id: str,
        look_id: str,
        started: float,
        until: Callable[[LookInfo], bool],
        timeout: float,
        *,
        chain: int = 2,
    ) -> LookInfo | None:
        """The look once until(look) holds; None when it vanished; TimeoutError past timeout.

        `chain`: generations on the longest chain through the look (a base and a look built
        on it: 2); a look on a longer chain is worth noticing sooner.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[LookInfo | None] = loop.create_future()
        watch = _Watch(look_id, started, until, future, started, chain)
        self.watched += 1
        self._longest = max(self._longest, chain)
        group = self._groups.setdefault(group_id, _Group([]))
        group.watches.append(watch)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        elif not len(self.model) or started + self.model.low < self._wake_at:
            self._replan()  # else it cannot have finished before the next plan anyway
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            if watch in group.watches:
                group.watches.remove(watch)
            if not group.watches and not group.polling and self._groups.get(group_id) is group:
                del self._groups[group_id]

    def _replan(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _target(self, group: _Group) -> Target:
        looks = tuple(w.in_flight(self._longest) for w in group.watches if not w.future.done())
        return Target(looks, group.listed, group.polled_at)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._groups:
            now = self.clock()
            soonest = math.inf
            scale = pressure(self.requests, self.watched, self.limits)
            for group_id, group in list(self._groups.items()):
                if not group.polling:
                    soonest = min(soonest, self._plan(now, group_id, group, scale))
            self._wake = loop.create_future()
            self._wake_at = soonest
            timer = None
            if math.isfinite(soonest):
                timer = loop.call_later(max(0.0, soonest - self.clock()), self._replan)
            await self._wake
            self._wake_at = -math.inf
            if timer is not None:
                timer.cancel()

    def _plan(self, now: float, group_id: str, group: _Group, scale: float) -> float:
        """Poll the group now if it is due, else return when it will be."""
        target = self._target(group)
        when = due(now, target, self.model, self.limits, scale)
        if when <= now:
            self._start(group_id, group, now, None)
            return math.inf
        if target.cost > 1:
            # A listing of several pages: one look alone may be worth a GET of its own.
            for watch in group.watches:
                if watch.future.done():
                    continue
                one = Target((watch.in_flight(self._longest),), 1, watch.polled_at)
                alone = due(now, one, self.model, self.limits, scale)
                if alone <= now:
                    self._start(group_id, group, now, watch)
                    return math.inf
                when = min(when, alone)
        return when

    def _start(self, group_id: str, group: _Group, now: float, only: _Watch | None) -> None:
        group.polling = True
        if only is None:
            group.polled_at = now
        probe = asyncio.create_task(self._poll(group_id, group, now, only))
        self._probes.add(probe)
        probe.add_done_callback(self._probes.discard)

    async def _fetch(self, group_id: str, group: _Group, only: _Watch | None) -> list[LookInfo]:
        """The group's listing, or the one look's GET (absent when the API answers 404)."""
        if only is None:
            try:
                listing = await self.client.list_looks(group_id=group_id)
            finally:
                self.requests += group.pages  # as many as the listing had pages last time
            group.listed = len(listing)
            return listing
        self.requests += 1
        try:
            return [await self.client.get_look(only.look_id)]
        except ApiError as e:
            if e.status == 404:
                return []
            raise

    async def _poll(self, group_id: str, group: _Group, sent: float, only: _Watch | None) -> None:
        try:
            try:
                listing = await self._fetch(group_id, group, only)
            except ApiStalledError as e:
                for watch in [only] if only is not None else list(group.watches):
                    if not watch.future.done():  # the API gave up answering: so do its watchers
                        watch.future.set_exception(e)
                return
            except LooksError:
                # The client already retried (or the error is not one to retry): keep
                # watching until the node timeout, backing off, as this poll showed nothing.
                for watch in [only] if only is not None else list(group.watches):
                    watch.polled_at, watch.absent = sent, True
                return
            except Exception as e:
                # Not the API's failure (those are LooksErrors, retried above) but a bug:
                # every look this poll watched hears it now, not at its timeout.
                for watch in [only] if only is not None else list(group.watches):
                    if not watch.future.done():
                        watch.future.set_exception(e)
                return
            looks = {look.id: look for look in listing}
            answered = self.clock()
            for watch in [only] if only is not None else list(group.watches):
                if watch.future.done():
                    continue
                watch.polled_at = sent
                look = looks.get(watch.look_id)
                watch.absent = look is None
                if look is None:
                    # A listing can lag behind a create: absent for a while is not gone.
                    watch.misses += 1
                    patient = answered - watch.started >= self.options.missing_after
                    if watch.misses >= 3 and patient:
                        watch.future.set_result(None)
                    continue
                if look.status == "pending_consent":
                    watch.consent = True
                if not watch.until(look):
                    watch.seen_at = sent
                    continue
                if look.status in ("completed", "failed") and not watch.consent:
                    # It finished between its last sighting running and this one.
                    self.model.observe((watch.seen_at + sent) / 2 - watch.started)
                watch.future.set_result(look)
        finally:
            group.polling = False
            if not group.watches and self._groups.get(group_id) is group:
                del self._groups[group_id]
            self._replan()

    async def aclose(self) -> None:
        tasks = [*self._probes, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

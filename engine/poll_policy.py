"""When to look again at generations in flight: pure scheduling logic, no I/O, no clock.

A finished look holds its job slot until a poll notices it, so every second between its
finish and that poll is a slot idle. The policy weighs that against the requests a poll
costs: from the *distribution* of observed generation times (not their mean) it computes,
for each look in flight, the chance that it has finished since it was last seen running,
and from that the slot time expected to have idled since. A group of looks is polled as
soon as that expected idle time reaches a fixed share of the typical duration per request
the poll costs. Looks younger than any observed duration cost nothing; a look that finished
early is noticed as quickly as one that finished on time; a look running past every observed
duration is polled with geometric back-off, as real generation times have long tails.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import deque
from dataclasses import dataclass

PAGE_SIZE = 50  # looks per page of a group listing (the API's ceiling for `limit`)
KNOTS = 16  # quantiles the duration model keeps
MAX_STEPS = 2 * KNOTS + 4  # knots one plan may step over (past them: plan again then)


@dataclass(frozen=True)
class Limits:
    """The policy's knobs."""

    min_interval: float = 0.01  # between two polls of one group, s
    max_interval: float = 10.0
    # Slot time allowed to idle per request, as a share of the typical duration: smaller
    # means earlier polls and more requests (about 1 / sqrt of it); `requests_per_look`
    # then caps what that costs over a run. This value: 7.3 GET per look in
    # bench/scheduling.py's spread batch, room left under the 8 (docs/performance.md).
    idle_per_request: float = 0.00175
    backoff: float = 0.1  # a look running late: poll again at this share of its lateness
    # Where the model can say nothing, a look is polled again at this share of the time it
    # has been out of sight: before any duration is known (its age: a first wave of C looks
    # in C groups costs C polls a step), or since an answer left it out or was refused.
    blind_backoff: float = 0.3
    samples: int = 128  # recent durations the model keeps (times drift over a day)
    # A look on a chain k times shorter than the longest one has slack: its idle slot delays
    # no look on the critical path, so it weighs 1 / k, but no less than this.
    min_weight: float = 0.1
    # The request budget over the run: once the polls sent pass this many per look watched
    # (plus `burst` looks' worth, for the costly first wave), the idle allowed per request
    # grows with the excess, and falls back as soon as the looks catch up.
    requests_per_look: float = 7.2
    burst: int = 10
    max_pressure: float = 16.0  # polls at most 4 x further apart than by default


@dataclass(frozen=True)
class InFlight:
    """One look being generated, as the poller last saw it."""

    started: float  # when its create was answered
    seen_at: float  # when it was last seen still running (`started` if not yet)
    weight: float = 1.0  # on the critical path: 1; a share of it: what slack it leaves
    # Not in the last answer that should have shown it (a listing lagging behind a create,
    # a look gone) or no answer (a refused poll): the chance it finished since `seen_at`
    # says nothing of what the next poll will show, so it is polled with back-off from when
    # it went out of sight, not as often as that chance would have it.
    absent: bool = False


@dataclass(frozen=True)
class Target:
    """One group listing: the looks in flight it shows and what it costs."""

    looks: tuple[InFlight, ...]
    listed: int  # looks the group's last listing held (pages = what a poll costs)
    polled_at: float | None  # when its last poll was sent

    @property
    def cost(self) -> int:
        return max(1, math.ceil(self.listed / PAGE_SIZE))


class DurationModel:
    """The distribution of recent generation times: a piecewise-linear CDF through the
    observed durations, widened at both ends by a margin that shrinks as samples grow."""

    def __init__(self, keep: int = 128) -> None:
        self._recent: deque[float] = deque(maxlen=keep)
        self._sorted: list[float] = []
        self._xs: list[float] = []  # knots of the CDF
        self._ys: list[float] = []
        self._areas: list[float] = []  # integral of the CDF from the first knot to each knot

    def __len__(self) -> int:
        return len(self._sorted)

    def observe(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds <= 0:
            return
        if len(self._recent) == self._recent.maxlen:
            oldest = self._recent[0]
            del self._sorted[bisect_right(self._sorted, oldest) - 1]
        self._recent.append(seconds)
        insort(self._sorted, seconds)
        self._xs = []

    def _knots(self) -> None:
        s = self._sorted
        n = len(s)
        margin = max(0.05, 0.5 / math.sqrt(n))
        # Through the samples, or through KNOTS quantiles of many: few segments keep the
        # policy's piecewise sums cheap.
        if n <= KNOTS:
            points = [(x, (k + 0.5) / n) for k, x in enumerate(s)]
        else:
            points = []
            for k in range(KNOTS):
                y = (k + 0.5) / KNOTS
                pos = y * n - 0.5
                i = min(n - 2, int(pos))
                points.append((s[i] + (s[i + 1] - s[i]) * (pos - i), y))
        xs = [s[0] * (1 - margin)]
        ys = [0.0]
        for x, y in points:
            if x <= xs[-1]:  # equal durations: one knot, the top of the step
                ys[-1] = y
                continue
            xs.append(x)
            ys.append(y)
        xs.append(max(s[-1] * (1 + margin), xs[-1] + 1e-6))
        ys.append(1.0)
        areas = [0.0]
        for k in range(1, len(xs)):
            areas.append(areas[-1] + (xs[k] - xs[k - 1]) * (ys[k] + ys[k - 1]) / 2)
        self._xs, self._ys, self._areas = xs, ys, areas

    @property
    def low(self) -> float:
        """No generation is expected to take less."""
        if not self._xs:
            self._knots()
        return self._xs[0]

    @property
    def high(self) -> float:
        """No generation is expected to take more: past it a look is late."""
        if not self._xs:
            self._knots()
        return self._xs[-1]

    @property
    def typical(self) -> float:
        """The median duration."""
        return self._sorted[len(self._sorted) // 2]

    def at(self, t: float) -> tuple[float, float, float, float]:
        """(CDF, density, integral of the CDF from 0, next knot) at duration t: all three
        are exact polynomials in t up to the next knot."""
        if not self._xs:
            self._knots()
        xs, ys = self._xs, self._ys
        if t < xs[0]:
            return 0.0, 0.0, 0.0, xs[0]
        if t >= xs[-1]:
            return 1.0, 0.0, self._areas[-1] + (t - xs[-1]), math.inf
        k = bisect_right(xs, t) - 1
        slope = (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])
        dt = t - xs[k]
        area = self._areas[k] + ys[k] * dt + slope * dt * dt / 2
        return ys[k] + slope * dt, slope, area, xs[k + 1]


def pressure(requests: int, looks: int, limits: Limits) -> float:
    """The factor on the idle allowed per request after `requests` polls for `looks` looks
    watched: 1 within the run's budget, growing exponentially with the excess (a round of
    ten looks' worth of excess: e) up to `max_pressure`. A function of the totals, not of
    its own past: it cannot wind up, and a costly start is paid back by cheaper looks
    later instead of starving the polls while the average catches up."""
    allowed = limits.requests_per_look * (looks + limits.burst)
    excess = (requests - allowed) / (limits.requests_per_look * limits.burst)
    return math.exp(min(math.log(limits.max_pressure), max(0.0, excess)))


def due(
    now: float, target: Target, model: DurationModel, limits: Limits, scale: float = 1.0
) -> float:
    """When the target should next be polled (a time <= now means: now).

    `scale` multiplies the idle allowed per request (see `pressure`)."""
    looks = target.looks
    if not looks:
        return math.inf
    last = target.polled_at
    if len(model) == 0:
        # Nothing observed yet: back off geometrically with the age of the oldest look. Not
        # stretched over budget: the first finish is what teaches the model, and the cost
        # is bounded anyway (logarithmic in the time scale).
        if last is None:
            return min(w.started for w in looks) + limits.min_interval
        oldest = min(w.started for w in looks)
        return last + _clamp(limits.blind_backoff * (last - oldest), limits)
    # Over budget, the back-offs below stretch as much as the paced polls do (whose
    # interval goes as the square root of the idle allowed): a model that trails the
    # service (its durations drifted up, or only the first, shortest ones are known yet)
    # makes many looks late at once, and their polls must not escape the budget.
    stretch = math.sqrt(scale)
    budget = scale * limits.idle_per_request * model.typical * target.cost
    late = math.inf  # when the first late look is due
    timely: list[tuple[InFlight, float, float, float]] = []
    for w in looks:
        if w.absent and last is not None:
            late = min(
                late, last + _clamp(stretch * limits.blind_backoff * (last - w.seen_at), limits)
            )
            continue
        seen = w.seen_at - w.started
        if seen >= model.high:
            # Later than every observed duration: geometric back-off from when it was seen.
            step = max(0.01 * model.typical, limits.backoff * (seen - model.high))
            late = min(late, w.seen_at + stretch * step)
            continue
        f_seen, _, area_seen, _ = model.at(seen)
        weight = max(limits.min_weight, w.weight)
        timely.append((w, weight / (1.0 - f_seen), f_seen, area_seen))
    when = now
    for _ in range(MAX_STEPS):
        # Expected idle slot time since each look was last seen running, summed, and its
        # first two derivatives: P(finished by age a | running at age `seen`) is
        # (F(a) - F(seen)) / (1 - F(seen)), integrated from `seen` to now.
        idle = rate = growth = 0.0
        horizon = math.inf  # until some look's age crosses a knot of the model
        for w, scale_w, f_seen, area_seen in timely:
            f_now, density, area_now, knot = model.at(when - w.started)
            idle += scale_w * (area_now - area_seen - f_seen * (when - w.seen_at))
            rate += scale_w * (f_now - f_seen)
            growth += scale_w * density
            horizon = min(horizon, w.started + knot - when)
        if idle >= budget:
            break
        need = budget - idle
        if growth > 0.0:
            dt = (-rate + math.sqrt(rate * rate + 2 * growth * need)) / growth
        elif rate > 0.0:
            dt = need / rate
        else:
            dt = math.inf
        if dt <= horizon:  # idle + rate dt + growth dt^2 / 2 = budget, exactly
            when += dt
            break
        when += horizon  # past a knot the sums change: step there and solve again
        if not math.isfinite(when):
            break
    when = min(when, late)
    if last is not None:
        when = min(max(when, last + limits.min_interval), last + limits.max_interval)
    return when


def _clamp(step: float, limits: Limits) -> float:
    return min(limits.max_interval, max(limits.min_interval, step))

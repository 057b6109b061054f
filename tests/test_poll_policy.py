"""The polling policy (engine/poll_policy.py), driven by an injected clock: no server, no sleeps.

Every "time" here is a number handed to the pure functions; a small discrete-event model of
a job-limited server checks what the policy costs and gains over a whole batch.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import pytest

from looks.poll_policy import DurationModel, InFlight, Limits, Target, due, pressure

LIMITS = Limits()


def log_uniform(rng: random.Random, lo: float = 0.6, hi: float = 1.7) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def trained(n: int = 128, seed: int = 7) -> DurationModel:
    rng = random.Random(seed)
    model = DurationModel()
    for _ in range(n):
        model.observe(log_uniform(rng))
    return model


def detect(
    model: DurationModel, finish: float, others: int = 0, chain_weight: float = 1.0
) -> tuple[float, int]:
    """Follow the policy for one group (a look finishing at `finish` among `others` that
    never finish), started at 0; (time the finish is seen, polls made)."""
    looks = [InFlight(0.0, 0.0, chain_weight)] + [InFlight(0.0, 0.0) for _ in range(others)]
    polled: float | None = None
    now = 0.0
    polls = 0
    while True:
        when = due(now, Target(tuple(looks), len(looks), polled), model, LIMITS)
        now = max(now, when)
        if due(now, Target(tuple(looks), len(looks), polled), model, LIMITS) > now:
            continue  # a time to plan again, not to poll
        polls += 1
        polled = now
        if now >= finish:
            return now, polls
        looks = [InFlight(w.started, now, w.weight) for w in looks]


def test_the_model_is_a_distribution_of_what_was_observed() -> None:
    model = trained()
    assert 0.5 < model.low < 0.6 and 1.7 < model.high < 1.9
    assert 0.9 < model.typical < 1.2
    cdf = [model.at(t)[0] for t in (0.0, 0.6, 0.8, 1.0, 1.3, 1.7, 2.0)]
    assert cdf == sorted(cdf) and cdf[0] == 0.0 and cdf[-1] == 1.0
    # The integral of the CDF matches a numeric one.
    _, _, area, _ = model.at(1.4)
    steps = 2000
    numeric = sum(model.at(1.4 * (k + 0.5) / steps)[0] for k in range(steps)) * 1.4 / steps
    assert area == pytest.approx(numeric, rel=1e-3)


def test_durations_that_say_nothing_are_ignored_and_old_ones_age_out() -> None:
    model = DurationModel(keep=4)
    for bad in (0.0, -1.0, math.nan, math.inf):
        model.observe(bad)
    assert len(model) == 0
    for seconds in (10.0, 10.0, 1.0, 1.0, 1.0, 1.0):
        model.observe(seconds)
    assert len(model) == 4 and model.high < 2.0  # the two 10 s runs are forgotten


def test_no_poll_before_any_observed_duration_has_passed() -> None:
    model = trained()
    look = InFlight(100.0, 100.0)
    when = due(100.0, Target((look,), 1, None), model, LIMITS)
    assert when >= 100.0 + model.low * 0.99


@pytest.mark.parametrize("finish", [0.62, 0.8, 1.1, 1.4, 1.68])
def test_a_finish_anywhere_in_the_spread_is_seen_within_a_small_share_of_the_typical_time(
    finish: float,
) -> None:
    model = trained()
    # An early finisher is noticed as fast as a late one: not at the mean, at its own time;
    # alone in its group or among others.
    for others in (0, 4):
        seen, _ = detect(model, finish, others=others)
        assert seen - finish <= 0.06 * model.typical
    _, alone_polls = detect(model, finish)
    assert alone_polls <= 40


def test_a_look_on_the_critical_path_is_watched_more_closely_than_one_with_slack() -> None:
    model = trained()
    critical, critical_polls = detect(model, 1.2, chain_weight=1.0)
    slack, slack_polls = detect(model, 1.2, chain_weight=0.1)
    assert critical - 1.2 < slack - 1.2
    assert critical_polls > slack_polls


def test_a_listing_of_several_pages_is_made_less_often() -> None:
    model = trained()
    looks = tuple(InFlight(0.0, 0.9) for _ in range(5))
    one_page = due(0.9, Target(looks, 40, 0.9), model, LIMITS)
    three_pages = due(0.9, Target(looks, 140, 0.9), model, LIMITS)
    assert 0.9 < one_page < three_pages


def test_a_look_later_than_every_observed_duration_is_polled_with_geometric_back_off() -> None:
    model = trained()
    look = InFlight(0.0, 0.0)
    polled: float | None = None
    now, polls, gaps = 0.0, 0, []
    while now < 3600.0:
        when = due(now, Target((look,), 1, polled), model, LIMITS)
        if when > now and due(when, Target((look,), 1, polled), model, LIMITS) > when:
            now = when
            continue
        if polled is not None and polled > model.high:
            gaps.append(when - polled)
        now = max(now, when)
        polled, look, polls = now, InFlight(0.0, now), polls + 1
    # The gaps grow geometrically to the ceiling: an hour of waiting costs a few dozen
    # polls to get there, then one per ceiling.
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(gaps))  # times are sums of floats
    assert gaps[-1] == pytest.approx(LIMITS.max_interval)
    assert polls <= 120 + 3600 / LIMITS.max_interval


def out_of_sight(model: DurationModel, look: InFlight, polled: float, until: float) -> list[float]:
    """Polls of a group whose every answer leaves `look` out (from `polled` on): their times."""
    times = [polled]
    now = polled
    while now < until:
        when = due(now, Target((look,), 1, times[-1]), model, LIMITS)
        now = max(now, when)
        if due(now, Target((look,), 1, times[-1]), model, LIMITS) <= now:
            times.append(now)
    return times


@pytest.mark.parametrize("seen_at", [0.0, 0.8], ids=["never-seen", "seen-then-gone"])
def test_a_look_out_of_sight_is_polled_with_back_off(seen_at: float) -> None:
    # A listing lagging behind a create, a look gone, a refused poll: the next answer is no
    # likelier to show it finished. The idle it may cause since last seen grows without end;
    # paced by that, its group was polled at every min_interval (2900 polls in its first 30 s).
    model = trained()
    times = out_of_sight(model, InFlight(0.0, seen_at, absent=True), seen_at + 0.01, 120.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) < 50  # the back-off's steps to its ceiling, then one per ceiling
    assert all(b > a - 1e-9 for a, b in itertools.pairwise(gaps))  # growing
    assert gaps[-1] == pytest.approx(LIMITS.max_interval)
    # A look the listing does show keeps its own pace in the same group.
    shown = InFlight(0.0, 0.9)
    alone = due(0.95, Target((shown,), 1, 0.9), model, LIMITS)
    both = due(0.95, Target((shown, InFlight(0.0, 0.0, absent=True)), 1, 0.9), model, LIMITS)
    assert both == alone


def test_before_any_duration_is_known_polls_back_off_with_age() -> None:
    model = DurationModel()
    look = InFlight(0.0, 0.0)
    first = due(0.0, Target((look,), 1, None), model, LIMITS)
    assert first == pytest.approx(LIMITS.min_interval)
    later = due(5.0, Target((look,), 1, 5.0), model, LIMITS)
    assert later == pytest.approx(5.0 + LIMITS.blind_backoff * 5.0)


def test_the_request_budget_raises_the_bar_only_past_the_runs_allowance() -> None:
    per, burst = LIMITS.requests_per_look, LIMITS.burst
    assert pressure(0, 0, LIMITS) == 1.0
    # A costly start (the first wave, one group per look) is within the burst allowance.
    assert pressure(int(per * burst), 0, LIMITS) == 1.0
    assert pressure(int(per * 100), 100, LIMITS) == 1.0  # on budget
    # Over it, the bar rises with the excess: a burst's worth over, e times.
    assert pressure(int(per * (100 + 2 * burst)), 100, LIMITS) == pytest.approx(math.e)
    assert pressure(10**9, 100, LIMITS) == pytest.approx(LIMITS.max_pressure)
    # It depends on the totals only: cheap looks later bring it straight back to 1.
    assert pressure(int(per * (100 + 2 * burst)), 100 + burst, LIMITS) == 1.0
    # A scale makes polls later.
    model = trained()
    target = Target((InFlight(0.0, 0.9),), 1, 0.9)
    assert due(0.95, target, model, LIMITS, 4.0) > due(0.95, target, model, LIMITS, 1.0)


@pytest.mark.parametrize("case", ["late", "out-of-sight"])
def test_over_budget_back_offs_stretch_like_paced_polls(case: str) -> None:
    # A model trailing the service (durations drifted up, or only the first and shortest
    # known) makes every look late at once; their back-off polls ignored the budget, so a
    # run far over it kept polling each late group every 1 % of the typical duration.
    model = trained()
    look = InFlight(0.0, 2.5) if case == "late" else InFlight(0.0, 0.5, absent=True)
    target = Target((look,), 1, 2.5)
    at_budget = due(2.5, target, model, LIMITS, 1.0) - 2.5
    over = due(2.5, target, model, LIMITS, LIMITS.max_pressure) - 2.5
    assert at_budget > 0
    # The same ceiling as for paced polls: at most sqrt(max_pressure) times further apart.
    assert over == pytest.approx(math.sqrt(LIMITS.max_pressure) * at_budget)


def test_before_any_duration_is_known_the_budget_does_not_slow_polls() -> None:
    # The first wave's blind polls are what teaches the model: at minute-long generations
    # they pass the burst allowance, and stretching them would notice the first finish
    # more than a whole generation late.
    look = Target((InFlight(0.0, 0.0),), 1, 60.0)
    at_budget = due(60.0, look, DurationModel(), LIMITS, 1.0)
    assert due(60.0, look, DurationModel(), LIMITS, LIMITS.max_pressure) == at_budget


# -- a whole batch against a job-limited server, in simulated time ----------------------------


@dataclass
class _Look:
    group: int
    started: float
    finish: float
    seen_at: float


def run_batch(
    groups: int, per_group: int, jobs: int, seed: int, spread: bool
) -> tuple[float, float]:
    """Bases then looks (one group per avatar) through `jobs` slots; every poll is a listing
    answered instantly. Returns (makespan / bound, requests per look)."""
    rng = random.Random(seed)

    def draw() -> float:
        return log_uniform(rng) if spread else 1.0

    model = DurationModel()
    queue = [(g, True) for g in range(groups)] + [
        (g, False) for g in range(groups) for _ in range(per_group)
    ]
    based: set[int] = set()
    running: list[_Look] = []
    polled: dict[int, float] = {}
    now, requests, work, started = 0.0, 0, 0.0, 0
    while queue or running:
        # Fill free slots with ready work (a look needs its base completed).
        for item in list(queue):
            if len(running) >= jobs:
                break
            group, is_base = item
            if is_base or group in based:
                queue.remove(item)
                d = draw()
                work += d
                running.append(_Look(group, now, now + d, now))
                started += 1
        scale = pressure(requests, started, LIMITS)
        by_group: dict[int, list[_Look]] = {}
        for look in running:
            by_group.setdefault(look.group, []).append(look)
        soonest = math.inf
        for group, looks in by_group.items():
            target = Target(
                tuple(InFlight(x.started, x.seen_at) for x in looks),
                per_group + 1,
                polled.get(group),
            )
            soonest = min(soonest, due(now, target, model, LIMITS, scale))
        now = max(now, soonest)
        for group, looks in by_group.items():
            target = Target(
                tuple(InFlight(x.started, x.seen_at) for x in looks),
                per_group + 1,
                polled.get(group),
            )
            if due(now, target, model, LIMITS, scale) > now:
                continue
            requests += 1
            polled[group] = now
            for look in looks:
                if look.finish <= now:
                    model.observe((look.seen_at + now) / 2 - look.started)
                    running.remove(look)
                    based.add(group)
                else:
                    look.seen_at = now
    bound = max(2 * 1.7 if spread else 2.0, work / jobs)
    return now / bound, requests / (groups * (per_group + 1))


def test_a_spread_batch_finishes_near_the_bound_within_the_request_budget() -> None:
    ratios, costs = [], []
    for seed in range(6):
        ratio, cost = run_batch(groups=20, per_group=10, jobs=10, seed=seed, spread=True)
        ratios.append(ratio)
        costs.append(cost)
    # With zero latency, what is left above the bound is the tail (the last looks end at
    # different times: ~3 % with these durations, whatever the polling) and the polls' own
    # delay, ~2 % within the budget.
    assert max(ratios) < 1.08
    assert max(costs) <= 8  # the ceiling; the budget aims under it


def test_a_constant_time_batch_costs_few_requests() -> None:
    ratio, cost = run_batch(groups=20, per_group=10, jobs=10, seed=0, spread=False)
    assert ratio < 1.04
    assert cost < 4

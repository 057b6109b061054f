"""Scheduling end to end: `looks apply` against `looks sim` over real HTTP.

What order generations start in (the critical path first) and what watching them costs
(requests per look) are read from the simulator's own state and counters, never from
wall-clock times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, Run

from engine import sim
from engine.executor import JobSlots

CHAIN_BESIDE_FAN = """\
version: 1
avatars:
  fan:
    name: Fan
    base: {type: prompt, prompt: "A person, studio portrait"}
    looks:
      f0: {prompt: Outfit 0}
      f1: {prompt: Outfit 1}
      f2: {prompt: Outfit 2}
  chain:
    name: Chain
    base: {type: prompt, prompt: "A person of a chain"}
    looks:
      s0: {prompt: Step 0}
      s1: {prompt: Step 1, from: s0}
      s2: {prompt: Step 2, from: s1}
"""


@pytest.fixture
def spread_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[sim.RunningSimulator]:
    """Generation times drawn log-uniformly over 0.1-0.4 s, reproducibly."""
    config = sim.SimConfig(
        api_key=API_KEY, generation_seconds=0.1, generation_seconds_max=0.4, seed=5
    )
    with sim.running_simulator(config) as s:
        monkeypatch.setenv("HEYGEN_BASE_URL", s.base_url)
        monkeypatch.setenv("HEYGEN_API_KEY", API_KEY)
        yield s


def started_in_order(s: sim.RunningSimulator) -> list[str]:
    looks: list[dict[str, Any]] = s.state()["looks"]
    return [look["name"] for look in sorted(looks, key=lambda look: look["started_at"])]


def test_a_chain_takes_the_freed_slot_before_leaf_looks_queued_earlier(
    tmp_path: Path, spread_sim: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    recipe = tmp_path / "mixed.yaml"
    recipe.write_text(CHAIN_BESIDE_FAN, encoding="utf-8")
    result = looks("apply", "--max-jobs", "1", recipe)
    assert result.code == 0, result.err
    order = started_in_order(spread_sim)
    # One slot: the whole chain (the critical path: 4 generations) runs first, each link
    # taking the slot its predecessor freed, though the fan's base was waiting all along;
    # then the fan's base and its looks.
    assert order[:4] == ["Chain", "Chain — s0", "Chain — s1", "Chain — s2"]
    assert order[4] == "Fan"
    assert sorted(order[5:]) == ["Fan — f0", "Fan — f1", "Fan — f2"]


def test_watching_a_spread_batch_stays_within_the_request_budget(
    tmp_path: Path, spread_sim: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    lines = ["version: 1", "avatars:"]
    for a in range(4):
        lines += [
            f"  a{a}:",
            f"    name: A{a}",
            "    base: {type: prompt, prompt: P}",
            "    looks:",
        ]
        lines += [f"      l{n}: {{prompt: Outfit {n}}}" for n in range(6)]
    recipe = tmp_path / "flat.yaml"
    recipe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = looks("apply", "--max-jobs", "4", recipe)
    assert result.code == 0, result.err
    stats = httpx.get(f"{spread_sim.base_url}/_sim/stats", timeout=10).json()
    gets = sum(n for route, n in stats["by_route"].items() if route.startswith("GET "))
    generations = stats["by_route"]["POST /v3/avatars"]
    assert generations == 28
    # The ceiling: 8 GETs per look, though a batch this small pays its first polls
    # (made before any duration is known) over few looks.
    assert gets / generations <= 8
    assert stats["max_jobs_in_flight"] <= 4


def test_a_pledged_slot_waits_for_its_look_and_is_freed_when_it_will_not_come() -> None:
    async def scenario() -> None:
        slots = JobSlots(1)
        await slots.acquire(1)
        leaf = asyncio.create_task(slots.acquire(1))
        await asyncio.sleep(0)
        token = slots.pledge(5)  # a look just unblocked, about to ask
        slots.release()
        await asyncio.sleep(0)
        assert not leaf.done()  # the slot is kept for the pledged look
        await slots.acquire(5, token)  # it comes: served at once
        assert slots.in_use == 1
        slots.release()
        await asyncio.wait_for(leaf, 5)  # then the leaf
        slots.release()
        # A pledge whose look never asks lapses on its own (PLEDGE_SECONDS): nothing hangs.
        await slots.acquire(1)
        other = asyncio.create_task(slots.acquire(1))
        slots.pledge(5)
        slots.release()
        await asyncio.wait_for(other, 5)

    asyncio.run(scenario())

"""`looks apply --max-credits N`, over real HTTP against the simulator."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, Run, drop_target

from engine import sim
from engine.client import HeyGenClient
from engine.cost import Budget
from engine.executor import ApplyOptions, Batch, Executor
from engine.manifest import ManifestStore, manifest_path_for
from engine.plan import build_plan
from engine.progress import PlainReporter
from engine.recipe import load_recipe
from engine.summary import summary_text

SARAH_COST = 6  # 2 photo bases and 4 looks


def posts(s: sim.RunningSimulator) -> int:
    count: int = s.stats()["by_route"].get("POST /v3/avatars", 0)
    return count


def nodes(recipe: Path) -> dict[str, Any]:
    path = manifest_path_for(recipe)
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())["nodes"]
    return data


def test_a_plan_over_budget_is_refused_before_any_request(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    result = looks("apply", recipe, "--max-credits", "5.5")
    assert (result.code, result.out) == (1, "")
    assert drop_target(result.err) == (
        "looks: the plan costs 6 credits, more than --max-credits 5.5; nothing was sent\n"
    )
    assert simulator.stats()["requests"] == 0
    assert nodes(recipe) == {}
    # Exactly the plan's cost is enough.
    result = looks("apply", recipe, "--max-credits", str(SARAH_COST))
    assert result.code == 0, result.err
    assert posts(simulator) == SARAH_COST


def test_max_credits_0_lets_free_work_through(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    before = simulator.stats()["requests"]
    result = looks("apply", recipe, "--max-credits", "0")
    assert (result.code, drop_target(result.err)) == (0, "")  # nothing to do costs nothing
    assert simulator.stats()["requests"] == before
    # A rename is a free PATCH: within a budget of 0.
    recipe.write_text(recipe.read_text().replace("name: Marco", "name: Marco Rossi"))
    result = looks("apply", recipe, "--max-credits", "0")
    assert (result.code, drop_target(result.err)) == (0, "")
    # (marco and marco/chef, whose name derives from it)
    assert simulator.stats()["by_route"].get("PATCH /v3/avatars/looks/{look_id}", 0) == 2
    assert posts(simulator) == SARAH_COST
    # A new look is not.
    beach = "      beach: {prompt: beach}\n  marco:"
    recipe.write_text(recipe.read_text().replace("  marco:", beach))
    result = looks("apply", recipe, "--max-credits", "0")
    assert result.code == 1
    assert "the plan costs 1 credit, more than --max-credits 0" in result.err
    assert posts(simulator) == SARAH_COST


def test_recipe_prices_set_the_budget(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    text = recipe.read_text().replace("defaults:\n", "defaults:\n  credits: {look: 0.25}\n")
    recipe.write_text(text)
    assert "Cost: 3 credits — photo 2 × 1, look 4 × 0.25" in looks("plan", recipe).out
    refused = looks("apply", recipe, "--max-credits", "2.75")
    assert "the plan costs 3 credits, more than --max-credits 2.75" in refused.err
    assert looks("apply", recipe, "--max-credits", "3").code == 0


@pytest.mark.parametrize(
    "value", ["-1", "nan", "inf", "-inf", "lots", "1,5", "", "1e999999999", "1000000000001"]
)
def test_bad_max_credits_is_a_usage_error(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    value: str,
) -> None:
    result = looks("apply", recipes / "sarah.yaml", f"--max-credits={value}")
    assert result.code == 2
    assert "must be a number of credits from 0 to 1,000,000,000,000" in result.err
    assert simulator.stats()["requests"] == 0


def test_retried_requests_are_not_paid_twice(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    """Lost answers are replayed with the same key: the budget counts them once."""
    recipe = recipes / "sarah.yaml"
    # Every first answer is lost (a replay is not): each creation is sent at least twice.
    simulator.configure(drop_rate=1.0)
    result = looks("apply", recipe, "--max-credits", str(SARAH_COST))
    assert result.code == 0, result.out + result.err
    assert len(simulator.state()["looks"]) == SARAH_COST
    assert posts(simulator) > SARAH_COST  # retries happened, and were replays


def test_failed_generations_are_paid_again_and_counted(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    simulator.configure(failed_look_rate=1.0)
    result = looks("apply", recipe, "--max-credits", str(SARAH_COST))
    assert result.code == 1
    assert posts(simulator) == 2  # both bases failed; their looks were never sent
    simulator.configure(failed_look_rate=0.0)
    plan = looks("plan", recipe)
    assert "Cost: 6 credits — photo 2 × 1, look 4 × 1" in plan.out  # retries are paid
    refused = looks("apply", recipe, "--max-credits", "5")
    assert drop_target(refused.err) == (
        "looks: the plan costs 6 credits, more than --max-credits 5; nothing was sent\n"
    )
    assert posts(simulator) == 2
    assert looks("apply", recipe, "--max-credits", "6").code == 0
    assert posts(simulator) == 2 + SARAH_COST


def _run_with_budget(base_url: str, recipe: Path, budget: Budget) -> tuple[Any, str]:
    """One apply through the executor with a budget below the plan's cost (a run whose
    retries or replacements outgrow the plan), bypassing the CLI's up-front refusal."""
    with ManifestStore(manifest_path_for(recipe), recipe.name) as store:
        batches = [Batch(build_plan(load_recipe(recipe), store.nodes), store)]

        async def run() -> Any:
            async with HeyGenClient(base_url, API_KEY) as client:
                options = ApplyOptions(max_jobs=1)  # one at a time: a predictable order
                reporter = PlainReporter(io.StringIO())
                return await Executor(client, batches, reporter, options, budget).run()

        result = asyncio.run(run())
        return result, summary_text(result.summary())


def test_the_budget_stops_submitting_mid_run(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    budget = Budget(Decimal(3))
    result, summary = _run_with_budget(simulator.base_url, recipe, budget)
    assert result.stopped == "max_credits" and not result.ok
    assert posts(simulator) == 3 and budget.spent == 3
    assert result.counts["not_started"] == 3
    assert "3 not started" in summary
    assert budget.stopped_line() == (
        "Budget reached: 3 credits sent; the next generation would pass --max-credits 3,"
        " so submitting stopped. Raise it and run apply again to finish."
    )
    recorded = nodes(recipe)
    sent = [a for a, n in recorded.items() if n["kind"] in ("base", "look") and "look_id" in n]
    assert len(sent) == 3
    assert all(recorded[a]["status"] == "completed" for a in sent)
    # Nothing that was stopped holds a key: the next run sends them fresh, once each.
    unsent = [a for a, n in recorded.items() if n["kind"] in ("base", "look") and a not in sent]
    assert all("idempotency_key" not in recorded[a] for a in unsent)
    plan = looks("plan", recipe)
    assert "Cost: 3 credits" in plan.out
    assert looks("apply", recipe, "--max-credits", "3").code == 0
    assert posts(simulator) == SARAH_COST
    assert len(simulator.state()["looks"]) == SARAH_COST

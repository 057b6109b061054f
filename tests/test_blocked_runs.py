"""A look blocked by its base is created again once the base is back, never taken for live."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import API_KEY, Run

from engine import sim
from engine.manifest import manifest_path_for

BASE_ONLY = """\
version: 1
avatars:
  ava:
    name: Ava
    base: {type: prompt, prompt: "A woman in her thirties, studio portrait"}
"""

WITH_LOOK = (
    BASE_ONLY
    + """\
    looks:
      red: {prompt: Red dress on a city street, name: Ava Red}
"""
)


def records(recipe: Path) -> dict[str, dict[str, object]]:
    nodes: dict[str, dict[str, object]] = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    return nodes


def test_a_failed_look_blocked_by_its_base_is_created_again_once_the_base_succeeds(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(BASE_ONLY)
    assert looks("apply", recipe).code == 0

    # Run 1: the look's generation fails; its record keeps the failed look's id.
    recipe.write_text(WITH_LOOK)
    simulator.configure(failed_look_rate=1.0)
    assert looks("apply", recipe).code == 1
    failed_look = records(recipe)["ava/red"]["look_id"]
    assert records(recipe)["ava/red"]["status"] == "failed" and failed_look

    # The base is deleted on the account; refresh records it missing.
    base_look = records(recipe)["ava"]["look_id"]
    with httpx.Client(base_url=simulator.base_url, headers={"X-Api-Key": API_KEY}) as c:
        c.delete(f"/v3/avatars/looks/{base_look}").raise_for_status()
    assert looks("refresh", recipe).code == 0
    assert records(recipe)["ava"]["status"] == "missing"

    # Run 2: the base fails again; the look is blocked, with no live look of its own.
    run2 = looks("apply", recipe)
    assert run2.code == 1, run2.out + run2.err
    blocked = records(recipe)["ava/red"]
    assert blocked["status"] == "blocked"
    assert blocked.get("look_id") is None
    assert failed_look in blocked["superseded"]  # still known, for prune

    # Run 3: the base succeeds; the look is created anew, not polled as "already running".
    simulator.configure(failed_look_rate=0.0)
    run3 = looks("apply", recipe)
    assert run3.code == 0, run3.out + run3.err
    red = records(recipe)["ava/red"]
    assert red["status"] == "completed" and red["look_id"] != failed_look
    made = [look for look in simulator.state()["looks"] if look["name"] == "Ava Red"]
    assert len(made) == 2  # the failed one and its replacement: no replay of the old key
    assert {look["id"] for look in made} == {failed_look, red["look_id"]}

"""A create whose answer was lost (kill -9): the look it made is never left unaccounted for.

Its base then replaced, the look stays recorded (superseded, for prune), whether the
replaced base succeeds at once or is first blocked by a failure. Taken out of the recipe,
prune finds it by name and deletes it before forgetting the record."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from conftest import API_KEY, looks_process

from looks import sim
from looks.manifest import journal_path_for, manifest_path_for

BASE = """\
version: 1
avatars:
  zed:
    name: Zed
    base: {type: prompt, prompt: "PROMPT"}
"""
LOOK = """\
    looks:
      one: {prompt: First outfit}
"""


def records(recipe: Path) -> dict[str, dict[str, object]]:
    nodes: dict[str, dict[str, object]] = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    return nodes


def run(recipe: Path, env: dict[str, str]) -> int:
    proc = looks_process("apply", recipe, env=env)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return proc.returncode


def kill_after_a_lost_answer(
    recipe: Path,
    simulator: sim.RunningSimulator,
    env: dict[str, str],
    address: str = "zed/one",
) -> None:
    """Apply until the node's look is made on the server and its answer lost, then kill -9."""
    made = len(simulator.state()["looks"])
    simulator.configure(drop_rate=1.0)  # made, answered by a closed connection
    proc = looks_process("apply", recipe, env=env)
    deadline = time.monotonic() + 60
    while len(simulator.state()["looks"]) <= made:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    # The client retries after 0.5 s at least: make that retry's answer wait for ever.
    simulator.configure(latency_ms=600_000)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    simulator.configure(drop_rate=0.0, latency_ms=0)
    journal = journal_path_for(manifest_path_for(recipe)).read_text().splitlines()
    last = [json.loads(line)["record"] for line in journal if f'"{address}"' in line][-1]
    assert last["status"] == "submitted"  # the answer never arrived


@pytest.mark.parametrize("base_fails_first", [False, True])
def test_a_lost_answer_survives_its_base_being_replaced(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    base_fails_first: bool,
) -> None:
    env = {**api_env, "HEYGEN_API_KEY": API_KEY}
    recipe = tmp_path / "zed.yaml"
    recipe.write_text(BASE.replace("PROMPT", "A person in a studio"))
    assert run(recipe, env) == 0
    recipe.write_text(BASE.replace("PROMPT", "A person in a studio") + LOOK)
    kill_after_a_lost_answer(recipe, simulator, env)
    lost = next(look["id"] for look in simulator.state()["looks"] if look["name"] == "Zed — one")

    # The base is replaced (a new prompt makes a new avatar group) ...
    recipe.write_text(BASE.replace("PROMPT", "A person on a beach") + LOOK)
    if base_fails_first:
        # ... and its new generation fails first: the look is blocked meanwhile.
        simulator.configure(failed_look_rate=1.0)
        assert run(recipe, env) == 1
        assert records(recipe)["zed/one"]["status"] != "completed"
        simulator.configure(failed_look_rate=0.0)
    assert run(recipe, env) == 0

    one = records(recipe)["zed/one"]
    assert one["status"] == "completed" and one["look_id"] != lost
    assert lost in one["superseded"]  # the lost answer's look is known, for prune
    recorded = {
        look_id
        for r in records(recipe).values()
        for look_id in [r.get("look_id"), *r.get("superseded", [])]  # type: ignore[list-item]
        if look_id
    }
    assert {look["id"] for look in simulator.state()["looks"]} <= recorded


@pytest.mark.parametrize("command", [("prune", "--yes"), ("apply", "--prune")])
@pytest.mark.parametrize("whole_avatar", [False, True])
def test_prune_deletes_what_a_lost_answer_made_before_forgetting_its_record(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    command: tuple[str, str],
    whole_avatar: bool,
) -> None:
    env = {**api_env, "HEYGEN_API_KEY": API_KEY}
    recipe = tmp_path / "zed.yaml"
    base = BASE.replace("PROMPT", "A person in a studio")
    other = "  kim:\n    name: Kim\n    base: {type: prompt, prompt: A chef}\n"
    without_zed = "version: 1\navatars:\n" + other
    if whole_avatar:  # the base itself is sent and its answer lost: a new group
        recipe.write_text(without_zed)
        assert run(recipe, env) == 0
        recipe.write_text(base + other)
        kill_after_a_lost_answer(recipe, simulator, env, "zed")
        lost_name = "Zed"
    else:
        recipe.write_text(base + other)
        assert run(recipe, env) == 0
        recipe.write_text(base + LOOK + other)
        kill_after_a_lost_answer(recipe, simulator, env)
        lost_name = "Zed — one"
    lost = next(look["id"] for look in simulator.state()["looks"] if look["name"] == lost_name)

    recipe.write_text(without_zed if whole_avatar else base + other)
    proc = looks_process(*command, recipe, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"deleted {lost}" in out + err
    assert lost not in {look["id"] for look in simulator.state()["looks"]}
    assert ("zed" if whole_avatar else "zed/one") not in records(recipe)

"""Crashes, lost answers, server faults and interrupts: nothing lost, nothing made twice."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, Run, looks_process
from tenacity import stop_after_attempt, wait_none

from looks import sim
from looks.client import HeyGenClient, RetryPolicy
from looks.executor import Batch, Executor
from looks.manifest import ManifestStore, journal_path_for, manifest_path_for
from looks.plan import build_plan
from looks.progress import PlainReporter
from looks.recipe import load_recipe

AVATARS = 4
LOOKS = 5


def write_batch(directory: Path) -> Path:
    """A recipe of prompt avatars (no files), AVATARS bases with LOOKS looks each."""
    lines = ["version: 1", "avatars:"]
    for a in range(AVATARS):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            "    base: {type: prompt, prompt: A person in a studio}",
            "    looks:",
            '      "outfit-{n}":',
            "        prompt: Outfit number {n}",
            f"        matrix: {{n: {list(range(LOOKS))}}}",
        ]
    recipe = directory / "batch.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


def check_exactly_once(s: sim.RunningSimulator, recipe: Path) -> None:
    """One simulator look per address, each recorded as completed in the manifest."""
    nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    assert len(nodes) == AVATARS * (1 + LOOKS)
    assert all(n["status"] == "completed" for n in nodes.values()), {
        a: n["status"] for a, n in nodes.items() if n["status"] != "completed"
    }
    looks = s.state()["looks"]
    per_name = Counter(look["name"] for look in looks)
    duplicates = {name: n for name, n in per_name.items() if n > 1}
    assert not duplicates, duplicates
    assert {look["id"] for look in looks} == {n["look_id"] for n in nodes.values()}


@pytest.fixture
def slow_sim() -> Iterator[sim.RunningSimulator]:
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.3, latency_ms=40, max_jobs=6)
    with sim.running_simulator(config) as s:
        yield s


@pytest.fixture
def env(slow_sim: sim.RunningSimulator, api_env: dict[str, str]) -> dict[str, str]:
    return {**api_env, "HEYGEN_BASE_URL": slow_sim.base_url, "HEYGEN_API_KEY": API_KEY}


@pytest.fixture
def simulator(slow_sim: sim.RunningSimulator) -> sim.RunningSimulator:
    return slow_sim  # api_env points the CLI at the same simulator


def journal_lines(recipe: Path) -> int:
    try:
        return len(journal_path_for(manifest_path_for(recipe)).read_bytes().splitlines())
    except FileNotFoundError:
        return 0


def kill_after(recipe: Path, env: dict[str, str], changes: int) -> None:
    """Start apply and SIGKILL it once its journal holds `changes` lines."""
    proc = looks_process("apply", "--max-jobs", "6", recipe, env=env)
    deadline = time.monotonic() + 30
    while journal_lines(recipe) < changes and proc.poll() is None:
        assert time.monotonic() < deadline, "apply made no progress"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("changes", [1, 2, 5, 13])
def test_kill_9_then_resume_makes_each_look_once(
    tmp_path: Path,
    slow_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
    changes: int,
) -> None:
    recipe = write_batch(tmp_path)
    kill_after(recipe, env, changes)
    # A second crash later in the resumed run, then the resume that finishes.
    kill_after(recipe, env, journal_lines(recipe) + 7)
    result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    check_exactly_once(slow_sim, recipe)
    assert not journal_path_for(manifest_path_for(recipe)).exists()


def test_killed_between_journal_and_answer_replays_the_same_key(
    tmp_path: Path, slow_sim: sim.RunningSimulator, env: dict[str, str], looks: Callable[..., Run]
) -> None:
    slow_sim.configure(latency_ms=400)  # each create's answer is still on its way at the kill
    recipe = write_batch(tmp_path)
    kill_after(recipe, env, 1)
    journal = journal_path_for(manifest_path_for(recipe)).read_text().splitlines()
    first = json.loads(journal[0])
    assert first["record"]["status"] == "submitted"
    key = first["record"]["idempotency_key"]
    slow_sim.configure(latency_ms=0)
    assert looks("apply", recipe).code == 0
    made = [look for look in slow_sim.state()["looks"] if look["idempotency_key"] == key]
    assert len(made) == 1
    check_exactly_once(slow_sim, recipe)


@pytest.mark.parametrize("fault", ["drop_rate", "fail_rate"])
def test_lost_answers_and_server_errors_make_no_duplicates(
    tmp_path: Path,
    slow_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
    fault: str,
) -> None:
    slow_sim.configure(**{fault: 0.15, "latency_ms": 0})
    recipe = write_batch(tmp_path)
    result = looks("apply", recipe)
    if result.code != 0:  # a node can exhaust its retries; the next run finishes it
        slow_sim.configure(**{fault: 0.0})
        result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    stats = slow_sim.stats()
    if fault == "fail_rate":
        assert stats["by_status"].get("500", 0) > 0
    check_exactly_once(slow_sim, recipe)


def test_drop_rate_answers_are_replayed_not_recreated(
    tmp_path: Path, slow_sim: sim.RunningSimulator, env: dict[str, str], looks: Callable[..., Run]
) -> None:
    slow_sim.configure(drop_rate=0.5, latency_ms=0)
    recipe = write_batch(tmp_path)
    result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    creates = slow_sim.stats()["by_route"]["POST /v3/avatars"]
    assert creates > AVATARS * (1 + LOOKS)  # answers were lost and the creates re-sent ...
    check_exactly_once(slow_sim, recipe)  # ... yet each look exists once


def test_first_ctrl_c_records_and_exits_130_then_resume(
    tmp_path: Path, slow_sim: sim.RunningSimulator, env: dict[str, str], looks: Callable[..., Run]
) -> None:
    recipe = write_batch(tmp_path)
    proc = looks_process("apply", recipe, env=env)
    deadline = time.monotonic() + 30
    while journal_lines(recipe) < 8:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "Interrupted: what was answered is recorded; run apply again to resume." in out
    assert "Traceback" not in err
    manifest = json.loads(manifest_path_for(recipe).read_text())
    assert not journal_path_for(manifest_path_for(recipe)).exists()  # folded on the way out
    assert any(n["status"] in ("processing", "completed") for n in manifest["nodes"].values())
    assert looks("apply", recipe).code == 0
    check_exactly_once(slow_sim, recipe)


@pytest.mark.parametrize("address", ["a0/outfit-3", "a0"])
def test_expired_key_is_reconciled_by_name(
    tmp_path: Path,
    slow_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
    address: str,
) -> None:
    """A create whose answer was lost more than 24 h ago: find it by name, don't recreate.

    A look is looked for in its base's group; a base, which made its own group, in the
    groups of its name.
    """
    slow_sim.configure(latency_ms=0)
    recipe = write_batch(tmp_path)
    assert looks("apply", recipe).code == 0
    path = manifest_path_for(recipe)
    manifest: dict[str, Any] = json.loads(path.read_text())
    node = manifest["nodes"][address]
    made = node.pop("look_id")
    if address == "a0":
        node.pop("group_id")
    node.pop("preview_image_url")
    node.update(status="submitted", submitted_at=time.time() - 25 * 3600)
    node["idempotency_key"] = "looks:expired:key"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    before = slow_sim.stats()["by_route"]["POST /v3/avatars"]
    result = looks("apply", recipe)
    assert result.code == 0, result.out
    assert slow_sim.stats()["by_route"]["POST /v3/avatars"] == before
    assert json.loads(path.read_text())["nodes"][address]["look_id"] == made
    check_exactly_once(slow_sim, recipe)


class LoseLookAnswers(httpx.AsyncBaseTransport):
    """Every create of a look reaches the server; every answer to one is lost."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and b'"avatar_id"' in request.content:
            await response.aread()
            raise httpx.ReadError("connection reset")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_recipe_edited_after_a_lost_answer_loses_no_look(
    tmp_path: Path, slow_sim: sim.RunningSimulator
) -> None:
    """The edit gives the look a new key; what the old one made is kept for prune."""
    recipe = tmp_path / "r.yaml"

    def apply(prompt: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        recipe.write_text(
            "version: 1\navatars:\n  bob:\n    name: Bob\n"
            "    base: {type: prompt, prompt: A friendly man}\n"
            f"    looks:\n      office: {{prompt: {prompt}}}\n"
        )
        with ManifestStore(manifest_path_for(recipe), "r.yaml") as store:
            plan = build_plan(load_recipe(recipe), store.nodes)

            async def run() -> None:
                policy = RetryPolicy(stop=stop_after_attempt(2), wait=wait_none())
                async with HeyGenClient(
                    slow_sim.base_url, API_KEY, transport=transport, retry=policy
                ) as client:
                    reporter = PlainReporter(io.StringIO())
                    await Executor(client, [Batch(plan, store)], reporter).run()

            asyncio.run(run())

    slow_sim.configure(latency_ms=0)
    apply("In an office", LoseLookAnswers())
    nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    assert nodes["bob/office"]["status"] == "submitted"  # made, but the answer was lost
    apply("In an office at night")
    nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    office = nodes["bob/office"]
    recorded = {n["look_id"] for n in nodes.values() if "look_id" in n}
    superseded = set(office.get("superseded", []))
    looks = slow_sim.state()["looks"]
    assert len(looks) == 3  # the base, the lost look, its replacement
    assert {look["id"] for look in looks} == recorded | superseded
    assert len(superseded) == 1 and office["status"] == "completed"

"""`looks apply` end to end, over real HTTP against the simulator."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Run, drop_target

from engine import sim
from engine.manifest import ManifestStore, manifest_path_for


def manifest_of(recipe: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_path_for(recipe).read_text())
    return data


def sim_looks(s: sim.RunningSimulator) -> list[dict[str, Any]]:
    looks: list[dict[str, Any]] = s.state()["looks"]
    return looks


def assert_one_look_per_address(s: sim.RunningSimulator, *recipes: Path) -> None:
    """Every simulator look is recorded, once, and every recorded look exists once."""
    recorded: dict[str, str] = {}
    for recipe in recipes:
        for address, node in manifest_of(recipe)["nodes"].items():
            if node["kind"] in ("base", "look") and "look_id" in node:
                assert node["status"] == "completed", (address, node)
                recorded[node["look_id"]] = address
    names = Counter(look["name"] for look in sim_looks(s))
    assert all(n == 1 for n in names.values()), names
    made = {look["id"] for look in sim_looks(s)}
    assert made == set(recorded), made ^ set(recorded)


def posts(s: sim.RunningSimulator) -> int:
    count: int = s.stats()["by_route"].get("POST /v3/avatars", 0)
    return count


def test_full_apply_creates_every_look_once(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    result = looks("apply", recipe)
    assert result.code == 0, result.err
    assert "Apply: 9 completed, 0 failed, 0 blocked, 0 not started." in result.out
    nodes = manifest_of(recipe)["nodes"]
    assert {a for a, n in nodes.items() if n["kind"] == "look"} == {
        "sarah/navy-office",
        "sarah/office-dusk",
        "sarah/podcast",
        "marco/chef",
    }
    assert all(n["status"] == "completed" for n in nodes.values())
    assert_one_look_per_address(simulator, recipe)
    # Looks are built on their bases: the request names the base look as avatar_id.
    by_id = {look["id"]: look for look in sim_looks(simulator)}
    dusk = by_id[nodes["sarah/office-dusk"]["look_id"]]
    assert dusk["request"]["avatar_id"] == nodes["sarah/navy-office"]["look_id"]
    assert dusk["request"]["prompt"].endswith(", soft studio light")
    assert dusk["group_id"] == nodes["sarah"]["group_id"]
    # The reference image was uploaded once and sent by asset id.
    office = by_id[nodes["sarah/navy-office"]["look_id"]]
    upload = next(n for a, n in nodes.items() if a.startswith("upload:") and "office" in n["name"])
    assert office["request"]["reference_images"] == [
        {"type": "asset_id", "asset_id": upload["asset_id"]}
    ]
    # The idempotency key each look was made with is the one the manifest journaled.
    for node in nodes.values():
        if node["kind"] in ("base", "look"):
            assert by_id[node["look_id"]]["idempotency_key"] == node["idempotency_key"]


def test_reapply_sends_no_post_and_leaves_no_diff(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    before = manifest_path_for(recipe).read_bytes()
    stats = simulator.stats()
    again = looks("apply", recipe)
    assert again.code == 0
    assert "0 completed" in again.out
    after = simulator.stats()
    assert after["by_route"] == stats["by_route"] or all(
        not route.startswith("POST") for route in set(after["by_route"]) - set(stats["by_route"])
    )
    assert posts(simulator) == stats["by_route"]["POST /v3/avatars"]
    assert after["requests"] == stats["requests"]  # nothing at all to ask the API
    assert manifest_path_for(recipe).read_bytes() == before
    assert not list(recipes.glob("*.journal")) and not list(recipes.glob("*.lock"))


def test_prompt_edit_replaces_the_look_and_its_chain(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    old = manifest_of(recipe)["nodes"]
    recipe.write_text(recipe.read_text().replace("navy blazer, modern", "navy blazer, bright"))
    plan = looks("plan", recipe)
    assert "replace  sarah/navy-office  (prompt changed)" in plan.out
    assert "replace  sarah/office-dusk  (upstream sarah/navy-office replaced)" in plan.out
    assert "Plan: 0 to create, 2 to replace, 0 to retry, 7 unchanged, 0 orphaned." in plan.out
    before = posts(simulator)
    assert looks("apply", recipe).code == 0
    assert posts(simulator) == before + 2
    new = manifest_of(recipe)["nodes"]
    assert new["sarah/navy-office"]["superseded"] == [old["sarah/navy-office"]["look_id"]]
    assert new["sarah/office-dusk"]["superseded"] == [old["sarah/office-dusk"]["look_id"]]
    assert new["sarah/podcast"] == old["sarah/podcast"]


def test_rename_costs_no_generation(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    recipe.write_text(recipe.read_text().replace("Sarah — Navy Office", "Sarah — Navy Suit"))
    plan = looks("plan", recipe)
    assert (
        "update   sarah/navy-office  (name changed: 'Sarah — Navy Office' -> 'Sarah — Navy Suit')"
        in plan.out
    )
    before = posts(simulator)
    assert looks("apply", recipe).code == 0
    assert posts(simulator) == before
    look_id = manifest_of(recipe)["nodes"]["sarah/navy-office"]["look_id"]
    names = {look["id"]: look["name"] for look in sim_looks(simulator)}
    assert names[look_id] == "Sarah — Navy Suit"
    assert looks("plan", "--detailed-exitcode", recipe).code == 0


def test_rate_limit_429_is_honoured_without_duplicates(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    simulator.configure(max_jobs=2, generation_seconds=0.3)
    recipe = recipes / "characters.yaml"
    result = looks("apply", "--max-jobs", "6", recipe)
    assert result.code == 0, result.out + result.err
    stats = simulator.stats()
    assert stats["by_status"].get("429", 0) >= 1
    assert stats["max_jobs_in_flight"] <= 2
    assert_one_look_per_address(simulator, recipe)


def test_out_of_credits_stops_and_resumes(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    simulator.configure(credits=3)
    recipe = recipes / "characters.yaml"
    result = looks("apply", "--max-jobs", "1", recipe)
    assert result.code == 1
    assert "Out of credits: stopped submitting; " in result.out
    remaining = int(re.search(r"; (\d+) looks remain", result.out).group(1))  # type: ignore[union-attr]
    nodes = manifest_of(recipe)["nodes"]
    completed = [a for a, n in nodes.items() if n["status"] == "completed"]
    failed = [a for a, n in nodes.items() if n["status"] == "failed"]
    assert len(completed) == 3
    assert [nodes[a]["error"]["code"] for a in failed] == ["insufficient_credit"]
    assert remaining == 8 - 3  # 1 failed for want of credit, 4 not started
    plan = looks("plan", recipe)
    assert "(failed: insufficient_credit)" in plan.out
    simulator.configure(credits=100)
    assert looks("apply", recipe).code == 0
    assert_one_look_per_address(simulator, recipe)


def test_failed_look_blocks_dependents_and_is_retried(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    simulator.configure(failed_look_rate=1.0)
    recipe = recipes / "sarah.yaml"
    result = looks("apply", recipe)
    assert result.code == 1
    nodes = manifest_of(recipe)["nodes"]
    assert nodes["sarah"]["status"] == "failed"
    assert nodes["sarah/office-dusk"]["status"] == "blocked"
    assert (
        "upstream sarah/navy-office did not complete"
        in nodes["sarah/office-dusk"]["error"]["message"]
    )
    assert "blocked: upstream" in result.out
    simulator.configure(failed_look_rate=0.0)
    assert looks("apply", recipe).code == 0
    nodes = manifest_of(recipe)["nodes"]
    assert nodes["sarah"]["attempts"] == 2
    failed_base = [look for look in sim_looks(simulator) if look["name"] == "Sarah"]
    assert len(failed_base) == 2  # the failed one stays, recorded as superseded for prune
    assert nodes["sarah"]["superseded"] == [
        look["id"] for look in failed_base if look["id"] != nodes["sarah"]["look_id"]
    ]


def test_lock_contention(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    with ManifestStore(manifest_path_for(recipe), "sarah.yaml"):
        result = looks("apply", recipe)
    assert result.code == 1
    assert re.fullmatch(
        r"looks: .*sarah\.manifest\.json is locked by pid \d+ on \S+ since \S+Z\n",
        drop_target(result.err),
    )
    assert posts(simulator) == 0


def test_corrupt_manifest_is_never_overwritten(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    path = manifest_path_for(recipe)
    path.write_text('{"version": 1, "lineage": "x", "nodes": {\n')
    for command in ("apply", "plan", "status"):
        result = looks(command, recipe)
        assert result.code == 1
        assert "Traceback" not in result.err
        assert drop_target(result.err).startswith(f"looks: {path}:2: manifest is corrupt")
        assert "git checkout HEAD -- sarah.manifest.json" in result.err
    assert path.read_text() == '{"version": 1, "lineage": "x", "nodes": {\n'
    assert posts(simulator) == 0


def test_missing_api_key_is_a_clear_error(
    recipes: Path, monkeypatch: pytest.MonkeyPatch, looks: Callable[..., Run]
) -> None:
    monkeypatch.delenv("HEYGEN_API_KEY", raising=False)
    result = looks("apply", recipes / "sarah.yaml")
    assert result.code == 2
    assert result.err == "looks: HEYGEN_API_KEY is not set: export your HeyGen API key first\n"


def test_wrong_api_key_fails_without_leaking_it(
    recipes: Path,
    simulator: sim.RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    looks: Callable[..., Run],
) -> None:
    monkeypatch.setenv("HEYGEN_BASE_URL", simulator.base_url)
    monkeypatch.setenv("HEYGEN_API_KEY", "sk-wrong-SECRET-9999")
    result = looks("apply", recipes / "sarah.yaml")
    assert result.code == 1
    assert "unauthorized" in result.err
    assert "refused HEYGEN_API_KEY" in result.err and "nothing was sent" in result.err
    assert posts(simulator) == 0  # the preflight stopped it: no upload, no create
    assert "SECRET" not in result.out + result.err
    manifest = manifest_path_for(recipes / "sarah.yaml")
    assert not manifest.exists() or "SECRET" not in manifest.read_text()


def test_api_key_reaches_no_file_or_output(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    outputs = []
    for recipe in sorted(recipes.glob("*.yaml")):
        if recipe.name == "existing.yaml":
            continue
        for command in ("plan", "apply", "status"):
            run = looks(command, recipe)
            outputs.append(run.out + run.err)
    assert "SECRET" not in "".join(outputs)
    written = [p for p in recipes.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".manifest.json") for p in written)
    for path in written:
        assert b"SECRET" not in path.read_bytes(), path


def test_digital_twin_waits_for_consent_then_resumes(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    simulator.configure(auto_consent=None)
    recipe = recipes / "twin.yaml"
    first = looks("apply", "--timeout", "0.01", recipe)  # 0.6 s per node
    assert first.code == 1
    nodes = manifest_of(recipe)["nodes"]
    url = nodes["consent:alex"]["consent_url"]
    assert url.startswith(simulator.base_url)
    assert f"consent:alex: consent (the subject must approve: {url})" in first.out
    assert nodes["alex"]["status"] == "awaiting_consent"
    assert nodes["alex"]["error"]["message"] == f"waiting for consent approval: {url}"
    assert nodes["alex/keynote"]["status"] == "blocked"
    consent_posts = simulator.stats()["by_route"].get("POST /v3/avatars/{group_id}/consent")
    # The subject approves on the simulator's consent page.
    assert httpx.post(url, follow_redirects=False).status_code == 303
    second = looks("apply", recipe)
    assert second.code == 0, second.out
    assert simulator.stats()["by_route"].get("POST /v3/avatars/{group_id}/consent") == consent_posts
    status = looks("status", recipe)
    assert re.search(
        rf"^consent:alex +consent +completed +consent: {re.escape(url)}$", status.out, re.M
    )
    assert_one_look_per_address(simulator, recipe)


def test_existing_base_must_be_completed(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "existing.yaml"
    result = looks("apply", recipe)
    assert result.code == 1
    assert (
        "riley: failed (not_found:" in result.out or "riley: failed (avatar_not_found" in result.out
    )
    nodes = manifest_of(recipe)["nodes"]
    assert nodes["riley"]["status"] == "failed"
    assert nodes["riley/spring"]["status"] == "blocked"
    assert posts(simulator) == 0


def test_status_json_reports_the_manifest_offline(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = recipes / "twin.yaml"
    assert looks("apply", recipe).code == 0
    # Offline: no API key and nothing listening at the base URL.
    monkeypatch.setenv("HEYGEN_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("HEYGEN_API_KEY")
    status = looks("status", "--json", recipe)
    assert status.code == 0
    data = json.loads(status.out)
    assert data["summary"] == {"completed": 5}
    by_address = {n["address"]: n for n in data["nodes"]}
    assert set(by_address["alex"]) == {
        "address",
        "kind",
        "status",
        "look_id",
        "group_id",
        "preview_image_url",
        "error",
    }
    assert by_address["alex/keynote"]["preview_image_url"].endswith(".png")


def test_log_json_prints_one_json_object_per_event(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    result = looks("apply", "--log-json", recipes / "sarah.yaml")
    assert result.code == 0
    events = [json.loads(line) for line in result.out.splitlines()]
    completed = {e["address"] for e in events if e["event"] == "completed"}
    assert completed == {
        "sarah",
        "marco",
        "sarah/navy-office",
        "sarah/office-dusk",
        "sarah/podcast",
        "marco/chef",
    }
    assert events[-1]["event"] == "summary"
    assert events[-1]["message"].startswith("Apply: 9 completed, 0 failed")

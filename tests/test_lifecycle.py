"""`looks import`, `refresh`, `prune`, `consent`: end to end, over HTTP against the simulator."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import API_KEY, ROOT, Run, drop_target, looks_process

from engine import sim
from engine.manifest import ManifestStore, NodeRecord, manifest_path_for

PLAN_NOTHING = re.compile(
    r"Plan: 0 to create, 0 to replace, 0 to retry, \d+ unchanged, 0 orphaned\."
)


@pytest.fixture
def api(simulator: sim.RunningSimulator, api_env: dict[str, str]) -> Iterator[httpx.Client]:
    """Direct access to the simulator's API, as another client of the account would have."""
    simulator.configure(generation_seconds=0.1, max_jobs=100)
    with httpx.Client(
        base_url=simulator.base_url, headers={"X-Api-Key": API_KEY}, timeout=10
    ) as client:
        yield client


def manifest_of(recipe: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_path_for(recipe).read_text())
    return data


def sim_ids(s: sim.RunningSimulator) -> set[str]:
    return {look["id"] for look in s.state()["looks"]}


def routes(s: sim.RunningSimulator) -> dict[str, int]:
    by_route: dict[str, int] = s.stats()["by_route"]
    return by_route


def make_group(api: httpx.Client, name: str, look_names: list[str]) -> tuple[str, list[str]]:
    """A group made outside looks: its first look, then looks saved into the group."""
    ids = []
    group_id = None
    for i, look_name in enumerate([name, *look_names]):
        body: dict[str, Any] = {"type": "prompt", "name": look_name, "prompt": f"look {i}"}
        if group_id is not None:
            body["avatar_group_id"] = group_id
        r = api.post("/v3/avatars", json=body)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        group_id = data["avatar_group"]["id"]
        ids.append(data["avatar_item"]["id"])
    assert group_id is not None
    return group_id, ids


def wait_completed(api: httpx.Client, look_ids: list[str]) -> None:
    deadline = time.monotonic() + 10
    for look_id in look_ids:
        while api.get(f"/v3/avatars/looks/{look_id}").json()["data"]["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.02)


def add_look(recipe: Path, avatar_line: str, text: str) -> None:
    """Insert look lines right after an avatar's `looks:` line."""
    content = recipe.read_text()
    anchor = content.index(avatar_line)
    at = content.index("looks:\n", anchor) + len("looks:\n")
    recipe.write_text(content[:at] + text + content[at:])


# -- import ---------------------------------------------------------------------------


def test_import_adopts_groups_and_plan_has_nothing_to_create(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    sarah, sarah_ids = make_group(
        api, "Sarah", ["Sarah — Navy Office", "Sarah — Podcast", "Podcast", "Sarah"]
    )
    twin, twin_ids = make_group(api, "Sarah", [])
    crowd_names = [f"Crowd {i:02d}" for i in range(55)]
    crowd, crowd_ids = make_group(api, "Big Crowd!", crowd_names)
    wait_completed(api, sarah_ids + twin_ids + crowd_ids)
    before = routes(simulator)
    out = tmp_path / "catalog" / "imported.yaml"

    result = looks("import", "--group", sarah, twin, crowd, "--out", out)
    assert result.code == 0, result.err
    assert f"Imported avatar group {sarah} (Sarah) as sarah: base {sarah_ids[0]}, 4 looks." in (
        result.out
    )
    assert f"as sarah-2: base {twin_ids[0]}, 0 looks." in result.out
    assert f"as big-crowd: base {crowd_ids[0]}, 55 looks." in result.out
    # Pagination: the 56 looks of the crowd take two pages of 50.
    listings = routes(simulator)["GET /v3/avatars/looks"] - before.get("GET /v3/avatars/looks", 0)
    assert listings == 4

    text = out.read_text()
    schema = os.path.relpath(ROOT / "schemas" / "recipe.schema.json", out.parent)
    assert text.startswith(f"# yaml-language-server: $schema={schema}\nversion: 1\navatars:\n")
    assert f"  sarah:  # imported from avatar group {sarah}\n" in text
    assert "    base:\n      type: existing\n      look_id: " + sarah_ids[0] in text
    recipe = yaml.safe_load(text)
    assert list(recipe["avatars"]) == ["sarah", "sarah-2", "big-crowd"]
    assert recipe["avatars"]["sarah"]["looks"] == {
        "navy-office": {"look_id": sarah_ids[1], "name": "Sarah — Navy Office"},
        "podcast": {"look_id": sarah_ids[2], "name": "Sarah — Podcast"},
        "podcast-2": {"look_id": sarah_ids[3], "name": "Podcast"},
        "look": {"look_id": sarah_ids[4], "name": "Sarah"},
    }
    assert "looks" not in recipe["avatars"]["sarah-2"]
    assert list(recipe["avatars"]["big-crowd"]["looks"])[:2] == ["crowd-00", "crowd-01"]

    nodes = manifest_of(out)["nodes"]
    assert len(nodes) == 3 + 4 + 55
    assert nodes["sarah/podcast"]["look_id"] == sarah_ids[2]
    assert nodes["sarah/podcast"]["status"] == "completed"
    assert nodes["sarah/podcast"]["preview_image_url"].endswith(".png")
    assert {n["group_id"] for a, n in nodes.items() if a.startswith("sarah/")} == {sarah}

    plan = looks("plan", "--detailed-exitcode", out)
    assert plan.code == 0, plan.out
    assert PLAN_NOTHING.search(plan.out), plan.out
    assert looks("validate", out).code == 0

    # A new look built on an imported one is made in the imported group, from that look.
    add_look(
        out,
        "  sarah:",
        "      dusk:\n        prompt: The office at dusk\n        from: navy-office\n",
    )
    plan = looks("plan", out)
    assert "  create   sarah/dusk  (new)\n" in plan.out
    assert "Plan: 1 to create, 0 to replace, 0 to retry" in plan.out
    posts = routes(simulator).get("POST /v3/avatars", 0)
    applied = looks("apply", out)
    assert applied.code == 0, applied.out
    assert routes(simulator)["POST /v3/avatars"] == posts + 1
    dusk = manifest_of(out)["nodes"]["sarah/dusk"]
    made = next(look for look in simulator.state()["looks"] if look["id"] == dusk["look_id"])
    assert made["request"]["avatar_id"] == sarah_ids[1]
    assert made["group_id"] == sarah
    assert looks("plan", "--detailed-exitcode", out).code == 0


def test_import_extends_a_recipe_and_refuses_to_clobber(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    sarah, sarah_ids = make_group(api, "Sarah", ["Sarah — Beach"])
    marco, marco_ids = make_group(api, "Marco", ["Marco — Chef", "Marco — Chef"])
    wait_completed(api, sarah_ids + marco_ids)
    recipe = tmp_path / "team.yaml"
    original = (
        "# Our team, by hand.\n"
        "version: 1\n"
        "avatars:\n"
        "    sarah:   # four-space indent, kept\n"
        "        name: Sarah\n"
        "        base: {type: existing, look_id: look_handmade}\n"
        "    # a trailing comment inside avatars\n"
        "\n"
        "defaults: {prompt_suffix: ', studio'}\n"
    )
    recipe.write_text(original)

    clash = looks("import", "--group", sarah, "--out", recipe)
    assert clash.code == 1
    assert drop_target(clash.err) == (
        f"looks: {recipe}: avatar 'sarah' already exists, and group {sarah} (Sarah) would be"
        " imported under that key; rename that avatar, or import into another recipe (--out)\n"
    )
    assert recipe.read_text() == original
    assert not manifest_path_for(recipe).exists()

    result = looks("import", "--group", marco, "--out", recipe)
    assert result.code == 0, result.err
    assert f"Extended {recipe} and team.manifest.json" in result.out
    text = recipe.read_text()
    assert text.startswith(original.split("    # a trailing")[0])  # untouched above
    assert f"    marco:  # imported from avatar group {marco}\n" in text
    assert text.endswith(
        "    # a trailing comment inside avatars\n\ndefaults: {prompt_suffix: ', studio'}\n"
    )
    plan = looks("plan", recipe)
    assert "  check    sarah  (existing look look_handmade)\n" in plan.out
    assert "marco" not in plan.out
    keys = yaml.safe_load(text)["avatars"]["marco"]["looks"]
    assert list(keys) == ["chef", "chef-2"]

    again = looks("import", "--group", marco, "--out", recipe)
    assert again.code == 1
    assert (
        drop_target(again.err)
        == f"looks: avatar group {marco} is already in {recipe} (as marco): not imported\n"
    )

    # Errors from the API carry their code, message and request id.
    missing = looks("import", "--group", "group_nope", "--out", tmp_path / "x.yaml")
    assert missing.code == 1
    assert re.fullmatch(
        r"looks: HTTP 404 not_found: avatar group 'group_nope' not found \(request \S+\)\n",
        drop_target(missing.err),
    ), missing.err
    assert not (tmp_path / "x.yaml").exists()


def test_import_into_an_empty_avatars_mapping(
    tmp_path: Path, api: httpx.Client, looks: Callable[..., Run]
) -> None:
    group, ids = make_group(api, "Riley", [])
    wait_completed(api, ids)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\navatars: {}\n")
    assert looks("import", "--group", group, "--out", recipe).code == 0
    assert recipe.read_text() == (
        f"version: 1\navatars:\n  riley:  # imported from avatar group {group}\n"
        f"    name: Riley\n    base:\n      type: existing\n      look_id: {ids[0]}\n"
    )
    assert looks("plan", "--detailed-exitcode", recipe).code == 0


# -- refresh --------------------------------------------------------------------------


def test_refresh_marks_deleted_looks_missing_and_apply_remakes_one(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    assert looks("refresh", recipe).out == "No drift.\n"
    podcast = manifest_of(recipe)["nodes"]["sarah/podcast"]["look_id"]
    assert api.delete(f"/v3/avatars/looks/{podcast}").status_code == 200

    before = routes(simulator)
    result = looks("refresh", recipe)
    assert result.code == 0, result.err
    assert result.out == "sarah/podcast: missing (deleted remotely)\n"
    after = routes(simulator)
    # One listing per group (sarah's and marco's), never a GET per look.
    assert after["GET /v3/avatars/looks"] - before["GET /v3/avatars/looks"] == 2
    assert after.get("GET /v3/avatars/looks/{look_id}", 0) == before.get(
        "GET /v3/avatars/looks/{look_id}", 0
    )
    node = manifest_of(recipe)["nodes"]["sarah/podcast"]
    assert node["status"] == "missing"
    assert "look_id" not in node
    assert not list(recipes.glob("*.journal")) and not list(recipes.glob("*.lock"))

    plan = looks("plan", recipe)
    assert "  retry    sarah/podcast  (missing: deleted or failed remotely)\n" in plan.out
    assert "Plan: 0 to create, 0 to replace, 1 to retry, 8 unchanged, 0 orphaned." in plan.out
    posts = routes(simulator)["POST /v3/avatars"]
    assert looks("apply", recipe).code == 0
    assert routes(simulator)["POST /v3/avatars"] == posts + 1
    node = manifest_of(recipe)["nodes"]["sarah/podcast"]
    assert node["status"] == "completed" and node["look_id"] in sim_ids(simulator)
    assert node.get("superseded", []) == []  # the deleted look is not left for prune
    assert looks("refresh", recipe).out == "No drift.\n"


def test_plan_refresh(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    chef = manifest_of(recipe)["nodes"]["marco/chef"]["look_id"]
    assert api.delete(f"/v3/avatars/looks/{chef}").status_code == 200
    assert "  retry" not in looks("plan", recipe).out  # offline: the manifest does not know yet
    result = looks("plan", "--refresh", "--json", recipe)
    assert result.code == 0
    assert drop_target(result.err) == "marco/chef: missing (deleted remotely)\n"
    actions = {a["address"]: a["action"] for a in json.loads(result.out)["actions"]}
    assert actions["marco/chef"] == "retry"


def test_refresh_records_looks_failed_remotely(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    group, ids = make_group(api, "Nia", [])
    wait_completed(api, ids)
    recipe = tmp_path / "nia.yaml"
    assert looks("import", "--group", group, "--out", recipe).code == 0
    recipe.write_text(recipe.read_text() + "    looks:\n      red: {prompt: Red coat}\n")
    simulator.configure(failed_look_rate=1.0)
    r = api.post(
        "/v3/avatars", json={"type": "prompt", "name": "x", "prompt": "p", "avatar_id": ids[0]}
    )
    failing = r.json()["data"]["avatar_item"]["id"]
    # As if a run had been stopped while the look was generating.
    with ManifestStore(manifest_path_for(recipe), "nia.yaml") as store:
        from engine.plan import build_graph
        from engine.recipe import load_recipe

        node = build_graph(load_recipe(recipe))["nia/red"]
        store.record(
            NodeRecord(
                "nia/red",
                "look",
                node.fingerprint,
                "processing",
                name=node.name,
                request=node.stored_request,
                look_id=failing,
                group_id=group,
                idempotency_key="looks:x:y",
                attempts=1,
            )
        )
    time.sleep(0.15)
    result = looks("refresh", recipe)
    assert result.out == (
        "nia/red: failed (generation_failed: the simulated generation of this look failed)\n"
    )
    node_json = manifest_of(recipe)["nodes"]["nia/red"]
    assert node_json["status"] == "failed"
    assert node_json["error"]["code"] == "generation_failed"
    assert "  retry    nia/red  (failed: generation_failed)" in looks("plan", recipe).out


def test_refresh_error_shows_code_message_and_request_id(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    monkeypatch.setenv("HEYGEN_API_KEY", "sk-wrong")
    simulator.configure()
    result = looks("refresh", recipe)
    assert result.code == 1
    assert re.fullmatch(
        r"looks: HTTP 401 unauthorized: .+ \(request \S+\)\n", drop_target(result.err)
    )
    assert manifest_of(recipe)["nodes"]["sarah/podcast"]["status"] == "completed"


# -- prune ----------------------------------------------------------------------------


def _superseded_and_orphaned(recipe: Path, looks: Callable[..., Run]) -> tuple[list[str], str]:
    """Apply, edit a prompt (2 looks superseded), drop marco/chef (orphan); apply again."""
    assert looks("apply", recipe).code == 0
    chef = manifest_of(recipe)["nodes"]["marco/chef"]["look_id"]
    text = recipe.read_text().replace("navy blazer, modern", "navy blazer, bright")
    text = re.sub(r"    looks:\n      chef:\n        prompt: .*\n", "", text)
    recipe.write_text(text)
    assert looks("apply", recipe).code == 0
    nodes = manifest_of(recipe)["nodes"]
    old = nodes["sarah/navy-office"]["superseded"] + nodes["sarah/office-dusk"]["superseded"]
    assert len(old) == 2
    return old, chef


def test_prune_deletes_superseded_and_orphaned_looks(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    old, chef = _superseded_and_orphaned(recipe, looks)
    assert api.delete(f"/v3/avatars/looks/{old[1]}").status_code == 200  # gone already
    assert "  orphan   marco/chef  (no longer in the recipe)" in looks("plan", recipe).out
    result = looks("prune", "--yes", recipe)
    assert result.code == 0, result.err
    assert f"  delete {old[0]}  sarah/navy-office (superseded)\n" in result.out
    assert f"  delete {chef}  marco/chef (orphaned)\n" in result.out
    assert "Prune: 3 looks to delete, 0 records to forget.\n" in result.out
    assert f"sarah/office-dusk: deleted {old[1]} (superseded, already gone)\n" in result.out
    assert result.out.endswith("Pruned: 3 deleted, 0 forgotten, 0 failed.\n")
    remaining = sim_ids(simulator)
    assert not {*old, chef} & remaining
    nodes = manifest_of(recipe)["nodes"]
    assert "marco/chef" not in nodes
    assert all(not n.get("superseded") for n in nodes.values())
    assert {n["look_id"] for n in nodes.values() if "look_id" in n} <= remaining
    assert (
        "Plan: 0 to create, 0 to replace, 0 to retry, 8 unchanged, 0 orphaned."
        in looks("plan", recipe).out
    )
    assert looks("prune", recipe).out == "Nothing to prune.\n"


def test_prune_never_deletes_imported_looks(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    group, ids = make_group(api, "Sarah", ["Sarah — Beach", "Sarah — Snow"])
    wait_completed(api, ids)
    recipe = tmp_path / "s.yaml"
    assert looks("import", "--group", group, "--out", recipe).code == 0
    add_look(recipe, "  sarah:", "      dusk:\n        prompt: Dusk\n        from: beach\n")
    assert looks("apply", recipe).code == 0
    dusk = manifest_of(recipe)["nodes"]["sarah/dusk"]["look_id"]
    # Drop an adopted look and the made one; point the base at another existing look.
    text = recipe.read_text()
    text = re.sub(r"      snow:\n(        .*\n)+", "", text)
    text = re.sub(r"      dusk:\n(        .*\n)+", "", text)
    recipe.write_text(text)
    result = looks("prune", "--yes", recipe)
    assert result.code == 0, result.err
    assert f"  forget {ids[2]}  sarah/snow (orphaned; not made by looks: kept)\n" in result.out
    assert f"  delete {dusk}  sarah/dusk (orphaned)\n" in result.out
    assert set(ids) <= sim_ids(simulator)
    assert dusk not in sim_ids(simulator)
    nodes = manifest_of(recipe)["nodes"]
    assert "sarah/snow" not in nodes and "sarah/dusk" not in nodes


def test_prune_without_yes_and_without_a_terminal_refuses(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
    api_env: dict[str, str],
) -> None:
    recipe = recipes / "sarah.yaml"
    old, chef = _superseded_and_orphaned(recipe, looks)
    before = manifest_path_for(recipe).read_bytes()
    proc = looks_process("prune", recipe, env=api_env, stdin=subprocess.DEVNULL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert drop_target(err) == (
        "looks: prune would delete 3 looks and stdin is not a terminal to confirm it;"
        " run it again with --yes to delete without asking\n"
    )
    assert f"  delete {chef}  marco/chef (orphaned)\n" in out  # the list is shown first
    assert {*old, chef} <= sim_ids(simulator)
    assert manifest_path_for(recipe).read_bytes() == before


def test_prune_asks_on_the_terminal(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
    api_env: dict[str, str],
) -> None:
    recipe = recipes / "sarah.yaml"
    old, chef = _superseded_and_orphaned(recipe, looks)
    for answer, code in (("n", 1), ("y", 0)):
        master, slave = pty.openpty()
        try:
            proc = looks_process("prune", recipe, env=api_env, stdin=slave)
            os.write(master, f"{answer}\n".encode())
            out, err = proc.communicate(timeout=30)
        finally:
            os.close(slave)
            os.close(master)
        assert proc.returncode == code, (out, err)
        assert "Delete 3 looks? [y/N] " in out
        if answer == "n":
            assert out.endswith("Nothing deleted.\n")
            assert {*old, chef} <= sim_ids(simulator)
    assert out.endswith("Pruned: 3 deleted, 0 forgotten, 0 failed.\n")
    assert not {*old, chef} & sim_ids(simulator)
    assert "marco/chef" not in manifest_of(recipe)["nodes"]


def test_apply_prune(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    nodes = manifest_of(recipe)["nodes"]
    recipe.write_text(recipe.read_text().replace("grey sweater", "blue sweater"))
    result = looks("apply", "--prune", recipe)
    assert result.code == 0, result.out
    old = nodes["sarah/podcast"]["look_id"]
    assert f"sarah/podcast: pruned (deleted {old}, superseded)\n" in result.out
    assert old not in sim_ids(simulator)
    assert "superseded" not in manifest_of(recipe)["nodes"]["sarah/podcast"]


# -- consent --------------------------------------------------------------------------


def test_consent_starts_the_flow_once(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    simulator.configure(auto_consent=None)
    recipe = recipes / "twin.yaml"
    assert looks("consent", recipe).out == "alex: not created yet (run looks apply)\n"
    # The twin is made, but its consent flow is not started (only its base was selected).
    first = looks("apply", "--only", "alex", "--timeout", "0.005", recipe)
    assert first.code == 1
    assert "consent:alex" not in manifest_of(recipe)["nodes"]
    route = "POST /v3/avatars/{group_id}/consent"
    assert route not in routes(simulator)

    result = looks("consent", recipe)
    assert result.code == 0, result.err
    url = manifest_of(recipe)["nodes"]["consent:alex"]["consent_url"]
    assert url.startswith(simulator.base_url + "/_sim/consent/")
    assert result.out == f"alex: pending, consent flow started: {url}\n"
    assert routes(simulator)[route] == 1
    group = manifest_of(recipe)["nodes"]["alex"]["group_id"]
    made = next(g for g in simulator.state()["groups"] if g["id"] == group)
    assert made["consent_status"] == "pending"

    again = looks("consent", recipe)
    assert again.out == f"alex: pending: {url}\n"
    assert routes(simulator)[route] == 1
    assert "consent:alex" not in looks("plan", recipe).out  # kept: apply will not redo it

    assert httpx.post(url, follow_redirects=False).status_code == 303
    assert looks("consent", recipe).out == f"alex: approved: {url}\n"
    applied = looks("apply", recipe)
    assert applied.code == 0, applied.out
    assert routes(simulator)[route] == 1


def test_consent_without_twins(recipes: Path, looks: Callable[..., Run]) -> None:
    result = looks("consent", recipes / "sarah.yaml")
    assert (result.code, result.out) == (0, "No digital twins in these recipes.\n")


def test_an_adopted_look_replaced_by_a_prompt_is_not_pruned(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api: httpx.Client,
    looks: Callable[..., Run],
) -> None:
    group, ids = make_group(api, "Sarah", ["Sarah — Snow"])
    wait_completed(api, ids)
    recipe = tmp_path / "s.yaml"
    assert looks("import", "--group", group, "--out", recipe).code == 0
    snow = "      snow: {prompt: Snow}\n"
    recipe.write_text(re.sub(r"      snow:\n(        .*\n)+", snow, recipe.read_text()))
    assert looks("apply", recipe).code == 0
    assert looks("prune", "--yes", recipe).code == 0
    assert ids[1] in sim_ids(simulator)


def test_prune_keeps_an_orphans_look_that_another_recipe_builds_on(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(
        "version: 1\navatars:\n  bob:\n    name: Bob\n"
        "    base: {type: prompt, prompt: A friendly man}\n"
        "    looks:\n      office: {prompt: In an office}\n"
    )
    assert looks("apply", a).code == 0
    office = manifest_of(a)["nodes"]["bob/office"]["look_id"]
    b = tmp_path / "b.yaml"
    b.write_text(
        "version: 1\navatars:\n  office-bob:\n    name: Office Bob\n"
        f"    base: {{type: existing, look_id: {office}}}\n"
        "    looks:\n      dusk: {prompt: At dusk}\n"
    )
    assert looks("apply", b).code == 0
    a.write_text(a.read_text().split("    looks:")[0])  # bob/office is now an orphan of a
    result = looks("prune", "--yes", a, b)
    assert result.code == 0, result.err
    assert office in sim_ids(simulator)  # b still builds on it
    assert "bob/office" not in manifest_of(a)["nodes"]  # a forgot it

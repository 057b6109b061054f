"""A look whose record was lost but which exists is adopted, never paid for again."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, Run

from engine import sim
from engine.manifest import journal_path_for, manifest_path_for

RECIPE = """\
version: 1
avatars:
  sarah:
    name: Sarah
    base: {type: prompt, prompt: A woman in a studio}
    looks:
      office: {prompt: In an office}
      park: {prompt: In a park}
"""


@pytest.fixture
def simulator() -> Iterator[sim.RunningSimulator]:
    """Idempotency keys that expire at once: a lost record cannot be saved by a replay."""
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.2, idempotency_ttl=0.001)
    with sim.running_simulator(config) as s:
        yield s


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(RECIPE)
    return path


def creates(s: sim.RunningSimulator) -> int:
    return int(s.stats()["by_route"].get("POST /v3/avatars", 0))


def manifest(recipe: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_path_for(recipe).read_text())
    return data


def write_manifest(recipe: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    manifest_path_for(recipe).write_text(text)


def once_each(s: sim.RunningSimulator) -> Counter[str]:
    return Counter(look["name"] for look in s.state()["looks"])


def test_a_deleted_record_is_adopted_not_created_again(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    assert looks("apply", recipe).code == 0
    data = manifest(recipe)
    office = data["nodes"].pop("sarah/office")
    write_manifest(recipe, data)
    plan = looks("plan", recipe)
    assert "create   sarah/office" in plan.out  # offline: plan cannot know the look exists
    before = creates(simulator)
    result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    assert creates(simulator) == before
    assert f"sarah/office: adopted ({office['look_id']})" in result.out
    restored = manifest(recipe)["nodes"]["sarah/office"]
    assert restored["look_id"] == office["look_id"]
    assert restored["status"] == "completed"
    assert max(once_each(simulator).values()) == 1
    assert looks("plan", "--detailed-exitcode", recipe).code == 0


def test_an_older_manifest_restored_adopts_what_was_made_since(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    recipe.write_text(RECIPE.replace("      park: {prompt: In a park}\n", ""))
    assert looks("apply", recipe).code == 0
    older = recipe.with_name("older.json")
    shutil.copy(manifest_path_for(recipe), older)
    recipe.write_text(RECIPE)
    assert looks("apply", recipe).code == 0
    park = manifest(recipe)["nodes"]["sarah/park"]["look_id"]
    shutil.copy(older, manifest_path_for(recipe))  # the backup from before park was made
    before = creates(simulator)
    result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    assert creates(simulator) == before
    assert manifest(recipe)["nodes"]["sarah/park"]["look_id"] == park
    assert max(once_each(simulator).values()) == 1


def test_a_deleted_journal_of_a_killed_run_loses_nothing(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """The journal (with the look's record) deleted, as a user cleaning up might."""
    assert looks("apply", recipe).code == 0
    data = manifest(recipe)
    park = data["nodes"].pop("sarah/park")
    write_manifest(recipe, data)
    journal = journal_path_for(manifest_path_for(recipe))
    journal.write_text(json.dumps({"address": "sarah/park", "record": park}) + "\n")
    journal.unlink()
    before = creates(simulator)
    assert looks("apply", recipe).code == 0
    assert creates(simulator) == before
    assert manifest(recipe)["nodes"]["sarah/park"]["look_id"] == park["look_id"]


def test_plan_refresh_shows_adopt(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    assert looks("apply", recipe).code == 0
    data = manifest(recipe)
    del data["nodes"]["sarah/office"]
    write_manifest(recipe, data)
    plan = looks("plan", "--refresh", recipe)
    assert plan.code == 0, plan.err
    assert "adopt    sarah/office" in plan.out
    assert "1 to adopt" in plan.out
    as_json = json.loads(looks("plan", "--refresh", "--json", recipe).out)
    actions = {a["address"]: a["action"] for a in as_json["actions"]}
    assert actions["sarah/office"] == "adopt"
    before = creates(simulator)
    assert looks("apply", recipe).code == 0
    assert creates(simulator) == before


def test_looks_sharing_a_name_are_not_adopted(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """Two looks sharing a name: which one was it? Neither is taken; one is created."""
    recipe.write_text(
        RECIPE.replace(
            "office: {prompt: In an office}", "office: {name: Same, prompt: In an office}"
        ).replace("park: {prompt: In a park}", "park: {name: Same, prompt: In a park}")
    )
    assert looks("apply", recipe).code == 0
    data = manifest(recipe)
    del data["nodes"]["sarah/office"]
    write_manifest(recipe, data)
    before = creates(simulator)
    assert looks("apply", recipe).code == 0
    assert creates(simulator) == before + 1


def test_a_lost_record_of_a_replaced_look_adopts_the_newest_and_supersedes_the_older(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """The record went with its superseded ids: the older look is found and pruned too."""
    assert looks("apply", recipe).code == 0
    first = manifest(recipe)["nodes"]["sarah/office"]["look_id"]
    recipe.write_text(RECIPE.replace("In an office", "In a bright office"))
    assert looks("apply", recipe).code == 0
    second = manifest(recipe)["nodes"]["sarah/office"]["look_id"]
    data = manifest(recipe)
    del data["nodes"]["sarah/office"]
    write_manifest(recipe, data)
    refreshed = looks("plan", "--refresh", recipe)
    assert f"adopt    sarah/office  (look {second} exists, unrecorded)" in refreshed.out
    before = creates(simulator)
    assert looks("apply", recipe).code == 0
    assert creates(simulator) == before
    record = manifest(recipe)["nodes"]["sarah/office"]
    assert record["look_id"] == second and record["superseded"] == [first]
    pruned = looks("prune", "--yes", recipe)
    assert f"deleted {first}" in pruned.out
    assert first not in {look["id"] for look in simulator.state()["looks"]}


GUEST = """\
version: 1
avatars:
  guest:
    name: Guest
    group_id: {group}
    base: {{type: prompt, prompt: A man in a studio}}
    looks:
      office: {{name: Office, prompt: In a totally different office}}
"""


@pytest.mark.parametrize("together", [False, True], ids=["alone", "in-one-run"])
def test_a_look_another_recipe_records_in_the_group_is_never_adopted(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
    together: bool,
) -> None:
    """Two recipes share sarah's group (the guest's `group_id`), with a look name in common."""
    named = RECIPE.replace("office: {prompt", "office: {name: Office, prompt")
    recipe.write_text(named.replace("      park: {prompt: In a park}\n", ""))
    assert looks("apply", recipe).code == 0
    data = manifest(recipe)
    mine = data["nodes"]["sarah/office"]["look_id"]
    guest = recipe.with_name("guest.yaml")
    guest.write_text(GUEST.format(group=data["nodes"]["sarah"]["group_id"]))
    assert looks("apply", guest).code == 0
    theirs = manifest(guest)["nodes"]["guest/office"]["look_id"]
    shown = {look["id"]: look["name"] for look in simulator.state()["looks"]}
    assert shown[mine] == shown[theirs] == "Office"  # the same name, in the same group
    del data["nodes"]["sarah/office"]  # sarah's record lost
    write_manifest(recipe, data)

    refreshed = looks("plan", "--refresh", recipe, *([guest] if together else []))
    assert theirs not in refreshed.out + refreshed.err
    result = looks("apply", recipe, *([guest] if together else []))
    assert result.code == 0, result.out + result.err
    record = manifest(recipe)["nodes"]["sarah/office"]
    assert record["look_id"] == mine  # its own look, not the guest's
    assert theirs not in record.get("superseded", [])
    assert looks("prune", "--yes", recipe).code == 0
    ids = {look["id"] for look in simulator.state()["looks"]}
    assert {mine, theirs} <= ids


def test_prune_never_deletes_a_look_a_manifest_beside_records(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """Whatever put it there (an adoption by an older looks, a merge), another recipe's look
    in this manifest's superseded ids is only forgotten, never deleted."""
    recipe.write_text(RECIPE.replace("      park: {prompt: In a park}\n", ""))
    assert looks("apply", recipe).code == 0
    data = manifest(recipe)
    guest = recipe.with_name("guest.yaml")
    guest.write_text(GUEST.format(group=data["nodes"]["sarah"]["group_id"]))
    assert looks("apply", guest).code == 0
    theirs = manifest(guest)["nodes"]["guest/office"]["look_id"]
    data["nodes"]["sarah/office"]["superseded"] = [theirs]
    write_manifest(recipe, data)
    pruned = looks("prune", "--yes", recipe)
    assert pruned.code == 0, pruned.out + pruned.err
    assert theirs in {look["id"] for look in simulator.state()["looks"]}
    assert manifest(recipe)["nodes"]["sarah/office"].get("superseded", []) == []


def test_a_copy_of_the_manifest_beside_it_does_not_stop_adoption(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """A backup kept as `*.manifest.json` is this recipe's own history, not another's."""
    assert looks("apply", recipe).code == 0
    shutil.copy(manifest_path_for(recipe), recipe.with_name("backup.manifest.json"))
    data = manifest(recipe)
    office = data["nodes"].pop("sarah/office")
    write_manifest(recipe, data)
    before = creates(simulator)
    result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    assert creates(simulator) == before
    assert manifest(recipe)["nodes"]["sarah/office"]["look_id"] == office["look_id"]


def test_a_look_another_manifest_only_refers_to_is_still_adopted(
    recipe: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """A recipe beside this one imported its group (`existing` looks): it uses them, did
    not make them, so they are still this recipe's own to adopt, and no one's to prune."""
    assert looks("apply", recipe).code == 0
    group = manifest(recipe)["nodes"]["sarah"]["group_id"]
    imported = looks("import", "--group", group, "--out", recipe.with_name("imported.yaml"))
    assert imported.code == 0, imported.out + imported.err
    data = manifest(recipe)
    office = data["nodes"].pop("sarah/office")
    write_manifest(recipe, data)
    before = creates(simulator)
    result = looks("apply", recipe)
    assert result.code == 0, result.out + result.err
    assert creates(simulator) == before
    assert manifest(recipe)["nodes"]["sarah/office"]["look_id"] == office["look_id"]

"""Batch recipes end to end against the simulator: recipes/team.yaml (a CSV team, a folder of
guests, look sets), `moved` renames and the run cache, none of which may pay twice."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, Run
from tenacity import stop_after_attempt, wait_none
from test_resilience import LoseLookAnswers

from looks import sim
from looks.client import HeyGenClient, RetryPolicy
from looks.executor import Batch, Executor
from looks.manifest import ManifestStore, NodeRecord, manifest_path_for
from looks.plan import build_plan
from looks.progress import PlainReporter
from looks.recipe import load_recipe

TEAM = ["ana", "ben", "chloe", "guest-kim", "guest-lee"]


def nodes_of(recipe: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    return data


def creations(s: sim.RunningSimulator) -> int:
    """Every look the simulator ever made (bases and prompt looks): what is paid for."""
    return len(s.state()["looks"])


def plan_json(looks: Callable[..., Run], recipe: Path) -> dict[str, Any]:
    result = looks("plan", "--json", recipe)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def edit(recipe: Path, old: str, new: str) -> None:
    text = recipe.read_text(encoding="utf-8")
    assert old in text, old
    recipe.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def applied(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> Path:
    """recipes/team.yaml applied once."""
    recipe = recipes / "team.yaml"
    result = looks("apply", recipe)
    assert result.code == 0, result.err + result.out
    return recipe


def test_csv_folder_and_sets_apply_end_to_end(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    nodes = nodes_of(applied)
    bases = sorted(a for a, n in nodes.items() if n["kind"] == "base")
    assert bases == TEAM
    looks_made = {a for a, n in nodes.items() if n["kind"] == "look"}
    team_looks = {"navy-office", "office-dusk", "keynote", "studio"}
    guest_looks = {"navy-office", "office-dusk", "podcast"}
    assert looks_made == {f"{a}/{k}" for a in TEAM[:3] for k in team_looks} | {
        f"{a}/{k}" for a in TEAM[3:] for k in guest_looks
    }
    assert all(n["status"] == "completed" for n in nodes.values())
    made = {look["id"]: look for look in simulator.state()["looks"]}
    assert len(made) == len(bases) + len(looks_made)  # each paid for once
    keynote = made[nodes["ben/keynote"]["look_id"]]
    assert keynote["request"]["prompt"] == "On a conference stage, cool blue lighting"
    assert made[nodes["chloe"]["look_id"]]["name"] == "Chloé Martin"
    podcast = made[nodes["guest-kim/podcast"]["look_id"]]
    assert (podcast["name"], podcast["request"]["prompt"]) == (
        "Studio portrait",
        "Seated at a podcast desk",
    )
    dusk = made[nodes["guest-lee/office-dusk"]["look_id"]]
    assert dusk["request"]["avatar_id"] == nodes["guest-lee/navy-office"]["look_id"]
    assert looks("plan", "--detailed-exitcode", applied).code == 0


def test_a_new_csv_row_plans_exactly_its_avatars_looks(
    applied: Path, looks: Callable[..., Run]
) -> None:
    csv = applied.with_name("team.csv")
    csv.write_text(csv.read_text() + "dan,Dan Wu,ana.png,green\n")
    plan = plan_json(looks, applied)
    changed = {a["address"]: a["action"] for a in plan["actions"] if a["action"] != "keep"}
    # Dan's photo is Ana's: the upload is shared, so nothing is uploaded again.
    assert changed == {
        "dan": "create",
        "dan/navy-office": "create",
        "dan/office-dusk": "create",
        "dan/keynote": "create",
        "dan/studio": "create",
    }


def test_moved_renames_without_a_creation_and_without_a_cascade(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    before = nodes_of(applied)
    made = creations(simulator)
    rename_navy(applied)  # and office-dusk, chained on it, now says `from: navy`
    plan = plan_json(looks, applied)
    actions = {a["address"]: a for a in plan["actions"]}
    for avatar in TEAM:
        move = actions[f"{avatar}/navy"]
        assert (move["action"], move["moved_from"]) == ("move", f"{avatar}/navy-office")
        assert actions[f"{avatar}/office-dusk"]["action"] == "keep"
        assert f"{avatar}/navy-office" not in actions  # re-keyed, not orphaned
    assert plan["summary"]["move"] == 5 and plan["summary"]["create"] == 0
    text = looks("plan", applied).out
    assert "  move     ana/navy" in text and "5 to move" in text

    result = looks("apply", applied)
    assert result.code == 0, result.err
    assert creations(simulator) == made  # nothing generated
    after = nodes_of(applied)
    for avatar in TEAM:
        assert f"{avatar}/navy-office" not in after
        assert after[f"{avatar}/navy"]["look_id"] == before[f"{avatar}/navy-office"]["look_id"]
        assert after[f"{avatar}/office-dusk"] == before[f"{avatar}/office-dusk"]
    # The default name follows the key: the remote look was renamed (PATCH), not remade.
    names = {look["id"]: look["name"] for look in simulator.state()["looks"]}
    assert names[after["ana/navy"]["look_id"]] == "Ana Lopez — navy"
    assert looks("plan", "--detailed-exitcode", applied).code == 0  # the entry may stay


def test_a_move_onto_a_recorded_address_is_an_error(
    applied: Path, looks: Callable[..., Run]
) -> None:
    edit(
        applied,
        '  - {from: "*/conference", to: "*/keynote"}',
        "  - {from: ana/studio, to: ana/keynote}",
    )
    edit(applied, "      studio: *studio", "      stadio: *studio")
    result = looks("plan", applied)
    assert result.code == 1
    line = applied.read_text().splitlines().index("  - {from: ana/studio, to: ana/keynote}") + 1
    assert result.err == (
        f"looks: {applied}:{line}: moved: ana/keynote already has a record, so moving"
        " ana/studio onto it would lose a look; remove this entry\n"
    )


def test_a_prompt_changed_back_reuses_its_look(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    first = nodes_of(applied)
    a_prompt = "Wearing a navy blazer, modern office background with plants"
    b_prompt = "Wearing a grey blazer, modern office background with plants"
    edit(applied, a_prompt, b_prompt)
    made = creations(simulator)
    assert looks("apply", applied).code == 0
    assert creations(simulator) == made + 10  # navy-office and office-dusk, five avatars
    second = nodes_of(applied)

    edit(applied, b_prompt, a_prompt)  # A -> B -> A
    plan = plan_json(looks, applied)
    actions = {a["address"]: a for a in plan["actions"]}
    assert actions["ana/navy-office"]["action"] == "reuse"
    assert first["ana/navy-office"]["look_id"] in actions["ana/navy-office"]["reason"]
    assert actions["ana/office-dusk"]["action"] == "reuse"  # its chain comes back too
    assert plan["summary"]["reuse"] == 10 and plan["summary"]["create"] == 0
    assert "10 to reuse" in looks("plan", applied).out

    made = creations(simulator)
    assert looks("apply", applied).code == 0
    assert creations(simulator) == made  # no creation
    third = nodes_of(applied)
    for address in ("ana/navy-office", "guest-kim/office-dusk"):
        assert third[address]["look_id"] == first[address]["look_id"]
        assert third[address]["fingerprint"] == first[address]["fingerprint"]
        assert third[address]["superseded"] == [second[address]["look_id"]]
    assert looks("plan", "--detailed-exitcode", applied).code == 0

    # And once more to B: B's look is still there, so that is a reuse as well.
    edit(applied, a_prompt, b_prompt)
    assert plan_json(looks, applied)["summary"].get("reuse") == 10


def test_a_pruned_look_is_not_reused(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    old = "On a conference stage, {accent} lighting"
    edit(applied, old, "On a TV set, {accent} lighting")
    assert looks("apply", "--prune", applied).code == 0
    edit(applied, "On a TV set, {accent} lighting", old)
    plan = plan_json(looks, applied)
    assert plan["summary"]["replace"] == 3 and plan["summary"]["reuse"] == 0
    assert all("reusable" not in n for n in nodes_of(applied).values())


def test_a_look_removed_and_re_added_is_kept(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    studio = "    looks:\n      studio: *studio                   # ana/studio\n"
    edit(applied, studio, "")
    assert plan_json(looks, applied)["summary"]["orphan"] == 3
    assert looks("apply", applied).code == 0
    edit(applied, '  "guest-{stem}":', studio + '  "guest-{stem}":')
    made = creations(simulator)
    plan = plan_json(looks, applied)
    assert plan["summary"]["create"] == 0 and plan["summary"]["orphan"] == 0
    assert looks("apply", applied).code == 0
    assert creations(simulator) == made


def test_the_planner_reuses_only_a_look_still_superseded(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "version: 1\navatars:\n  s:\n    name: S\n    base: {type: existing, look_id: base_1}\n"
        "    looks:\n      a: {prompt: A}\n",
        encoding="utf-8",
    )
    recipe = load_recipe(tmp_path / "r.yaml")
    nodes = build_plan(recipe, {}).nodes
    base = NodeRecord("s", "base", nodes["s"].fingerprint, "completed", look_id="base_1")
    record = NodeRecord(
        "s/a",
        "look",
        "0" * 64,
        "completed",
        look_id="look_b",
        superseded=("look_a",),
        reusable={nodes["s/a"].fingerprint: "look_a"},
    )
    action = {a.address: a for a in build_plan(recipe, {"s": base, "s/a": record}).actions}
    assert action["s/a"].action == "reuse"
    pruned = record.evolve(superseded=())
    action = {a.address: a for a in build_plan(recipe, {"s": base, "s/a": pruned}).actions}
    assert action["s/a"].action == "replace"


def test_a_reused_look_deleted_remotely_is_made_again(
    applied: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    first = nodes_of(applied)["ana/studio"]["look_id"]
    edit(applied, "      studio: *studio", "      studio: {<<: *studio, prompt: Black backdrop}")
    assert looks("apply", applied, "--only", "ana/studio").code == 0
    headers = {"X-Api-Key": api_env["HEYGEN_API_KEY"]}
    deleted = httpx.delete(f"{simulator.base_url}/v3/avatars/looks/{first}", headers=headers)
    assert deleted.status_code == 200, deleted.text
    edit(applied, "      studio: {<<: *studio, prompt: Black backdrop}", "      studio: *studio")
    assert plan_json(looks, applied)["summary"]["reuse"] == 1  # the record cannot know
    made = creations(simulator)
    result = looks("apply", applied)
    assert result.code == 0, result.err
    assert creations(simulator) == made + 1
    record = nodes_of(applied)["ana/studio"]
    assert record["look_id"] != first and record["status"] == "completed"


def test_the_gallery_groups_looks_by_avatar_then_set(
    recipes: Path, looks: Callable[..., Run]
) -> None:
    out = recipes.parent / "catalog"
    result = looks("catalog", recipes / "team.yaml", "--out", out)
    assert result.code == 0, result.err
    html = (out / "index.html").read_text(encoding="utf-8")
    ana = html[html.index("<code>ana</code>") : html.index("<code>ben</code>")]
    order = [
        ana.index(s) for s in ("ana/studio", "look set <code>office</code>", "ana/navy-office")
    ]
    order += [
        ana.index(s) for s in ("ana/office-dusk", "look set <code>stage</code>", "ana/keynote")
    ]
    assert order == sorted(order)
    markdown = (out / "catalog.md").read_text(encoding="utf-8")
    assert markdown.count("look set `office`") == 5 and markdown.count("look set `stage`") == 3


def rename_navy(recipe: Path) -> None:
    """navy-office -> navy in the set, with its `moved` entry."""
    edit(recipe, "    navy-office: {prompt", "    navy: {prompt")
    edit(recipe, "from: navy-office}", "from: navy}")
    edit(
        recipe,
        '  - {from: "*/conference", to: "*/keynote"}',
        '  - {from: "*/navy-office", to: "*/navy"}',
    )


def test_prune_before_a_pending_move_keeps_the_moved_looks(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    rename_navy(applied)
    pruned = looks("prune", "--yes", applied)
    assert pruned.code == 0, pruned.err
    assert "Nothing to prune." in pruned.out
    made = creations(simulator)
    assert looks("apply", applied).code == 0
    assert creations(simulator) == made
    assert all(look["status"] == "completed" for look in simulator.state()["looks"])


def test_a_move_half_recorded_by_a_dead_run_is_finished(
    applied: Path, simulator: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    rename_navy(applied)
    # As if a run died between journaling ana/navy and forgetting ana/navy-office.
    path = manifest_path_for(applied)
    manifest = json.loads(path.read_text())
    manifest["nodes"]["ana/navy"] = manifest["nodes"]["ana/navy-office"]
    path.write_text(json.dumps(manifest))
    actions = {a["address"]: a for a in plan_json(looks, applied)["actions"]}
    assert (actions["ana/navy"]["action"], actions["ana/navy"]["moved_from"]) == (
        "move",
        "ana/navy-office",
    )
    made = creations(simulator)
    assert looks("apply", applied).code == 0
    assert creations(simulator) == made
    nodes = nodes_of(applied)
    assert "ana/navy-office" not in nodes and nodes["ana/navy"]["status"] == "completed"


def test_a_revert_after_a_lost_answer_reuses_and_accounts_for_the_lost_look(
    tmp_path: Path, simulator: sim.RunningSimulator
) -> None:
    """A -> B (B's answer lost) -> A: A's look comes back, B's is superseded, not forgotten."""
    recipe = tmp_path / "r.yaml"

    def apply(prompt: str, transport: httpx.AsyncBaseTransport | None = None) -> str:
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
                    simulator.base_url, API_KEY, transport=transport, retry=policy
                ) as client:
                    await Executor(client, [Batch(plan, store)], PlainReporter(io.StringIO())).run()

            asyncio.run(run())
        return {a.address: a.action for a in plan.actions}["bob/office"]

    assert apply("In an office") == "create"
    first = nodes_of(recipe)["bob/office"]["look_id"]
    assert apply("In an office at night", LoseLookAnswers()) == "replace"
    assert nodes_of(recipe)["bob/office"]["status"] == "submitted"
    assert apply("In an office") == "reuse"
    office = nodes_of(recipe)["bob/office"]
    looks = simulator.state()["looks"]
    assert len(looks) == 3  # the base, A, and B (whose answer was lost); nothing more
    lost = ({look["id"] for look in looks} - {first, nodes_of(recipe)["bob"]["look_id"]}).pop()
    assert (office["look_id"], office["status"], office["superseded"]) == (
        first,
        "completed",
        [lost],
    )

"""The planner, without any server: graph, fingerprints, diff against records, --only, cycles."""

from __future__ import annotations

import base64
import graphlib
import hashlib
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from looks.errors import RecipeError
from looks.manifest import ErrorInfo, NodeRecord, Status
from looks.plan import (
    Plan,
    PlanError,
    PlanNode,
    _Draft,
    _fingerprint,
    build_graph,
    build_plan,
    dependency_order,
    select,
    upload_address,
)
from looks.recipe import load_recipe

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
OFFICE = PNG + b"office"  # trailing bytes: another file for the planner, same type
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"

RECIPE = """\
version: 1
defaults: {prompt_suffix: ", studio light"}
avatars:
  sarah:
    name: Sarah
    base: {type: photo, file: {path: sarah.png}}
    looks:
      navy: {prompt: navy blazer, reference_images: [{path: office.png}]}
      dusk: {prompt: dusk, from: navy}
      night: {prompt: night, from: dusk}
      podcast: {prompt: podcast, name: A}
  marco:
    name: Marco
    base: {type: photo, file: {path: photos/marco.png}}
    looks:
      chef: {prompt: chef}
  alex:
    name: Alex
    consent: {reroute_url: "https://example.com/done"}
    base: {type: digital_twin, file: {path: alex.mp4}}
    looks:
      keynote: {prompt: keynote}
  riley:
    name: Riley
    base: {type: existing, look_id: look_1}
    looks:
      spring: {prompt: spring}
"""

UP_PHOTO = "upload:" + hashlib.sha256(PNG).hexdigest()[:16]
UP_OFFICE = "upload:" + hashlib.sha256(OFFICE).hexdigest()[:16]
UP_VIDEO = "upload:" + hashlib.sha256(MP4).hexdigest()[:16]
LOOKS = [
    "sarah/navy",
    "sarah/dusk",
    "sarah/night",
    "sarah/podcast",
    "marco/chef",
    "alex/keynote",
    "riley/spring",
]


def make(directory: Path, text: str = RECIPE, files: Mapping[str, bytes] | None = None) -> Path:
    """Write a recipe and its media (sarah.png and photos/marco.png hold the same bytes)."""
    media = {"sarah.png": PNG, "photos/marco.png": PNG, "office.png": OFFICE, "alex.mp4": MP4}
    for name, data in {**media, **(files or {})}.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    path = directory / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def graph_of(
    directory: Path, text: str = RECIPE, files: Mapping[str, bytes] | None = None
) -> dict[str, PlanNode]:
    directory.mkdir(parents=True, exist_ok=True)
    return build_graph(load_recipe(make(directory, text, files)))


def fingerprints(nodes: Mapping[str, PlanNode]) -> dict[str, str]:
    return {a: n.fingerprint for a, n in nodes.items()}


def changed(before: Mapping[str, PlanNode], after: Mapping[str, PlanNode]) -> set[str]:
    """Addresses present in both whose fingerprint differs, plus new addresses."""
    return {
        a for a, n in after.items() if a not in before or before[a].fingerprint != n.fingerprint
    }


def record(node: PlanNode, status: Status = "completed", **changes: Any) -> NodeRecord:
    """What a manifest would hold after the node was made from exactly this recipe."""
    made: dict[str, dict[str, Any]] = {
        "upload": {"asset_id": f"asset_{node.address}"},
        "base": {"look_id": f"look_{node.address}", "group_id": f"group_{node.address}"},
        "consent": {"consent_url": "https://example.com/consent"},
        "look": {"look_id": f"look_{node.address}"},
    }
    fresh = NodeRecord(
        node.address, node.kind, node.fingerprint, status, node.name, node.stored_request
    )
    return fresh.evolve(**{**made[node.kind], **changes})


def records_of(nodes: Mapping[str, PlanNode]) -> dict[str, NodeRecord]:
    return {a: record(n) for a, n in nodes.items()}


def actions(plan: Plan) -> dict[str, tuple[str, str]]:
    return {a.address: (a.action, a.reason) for a in plan.actions}


# -- graph --------------------------------------------------------------------------------


def test_graph_nodes_and_edges(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    assert {a: (n.kind, n.depends_on) for a, n in nodes.items()} == {
        UP_PHOTO: ("upload", ()),
        UP_OFFICE: ("upload", ()),
        UP_VIDEO: ("upload", ()),
        "sarah": ("base", (UP_PHOTO,)),
        "marco": ("base", (UP_PHOTO,)),  # same bytes, another path: the same upload
        "alex": ("base", (UP_VIDEO,)),
        "consent:alex": ("consent", ("alex",)),
        "riley": ("base", ()),
        "sarah/navy": ("look", tuple(sorted(["sarah", UP_OFFICE]))),
        "sarah/dusk": ("look", ("sarah/navy",)),
        "sarah/night": ("look", ("sarah/dusk",)),
        "sarah/podcast": ("look", ("sarah",)),
        "marco/chef": ("look", ("marco",)),
        "alex/keynote": ("look", ("alex",)),
        "riley/spring": ("look", ("riley",)),
    }
    # Dependency order: every node after what it depends on.
    order = list(nodes)
    for address, node in nodes.items():
        assert all(order.index(d) < order.index(address) for d in node.depends_on)


def test_node_details(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    upload = nodes[UP_PHOTO]
    assert upload.name == "sarah.png"  # the first path that needed it
    assert upload.file is not None
    assert upload.file.local_path == (tmp_path / "sarah.png").resolve()
    # Content alone: a host's MIME table must not change a fingerprint.
    assert upload.template == {"sha256": hashlib.sha256(PNG).hexdigest()}
    assert upload.file.media_type == "image/png"  # sent with the upload, not fingerprinted
    assert upload_address(upload.file) == UP_PHOTO
    assert nodes["sarah"].template == {"type": "photo", "file": {"$asset": UP_PHOTO}}
    assert (nodes["sarah"].name, nodes["sarah"].avatar) == ("Sarah", "sarah")
    assert nodes["consent:alex"].template == {
        "group": {"$group": "alex"},
        "reroute_url": "https://example.com/done",
    }
    assert nodes["sarah/dusk"].template == {
        "type": "prompt",
        "prompt": "dusk, studio light",
        "avatar_id": {"$look": "sarah/navy"},
    }
    assert nodes["sarah/podcast"].name == "A"
    assert nodes["sarah/dusk"].name == "Sarah — dusk"
    assert nodes["riley"].template == {"type": "existing", "look_id": "look_1"}
    assert all(len(n.fingerprint) == 64 for n in nodes.values())
    # A fingerprint is that of the request: sarah and marco send the same one (the same
    # upload); the manifest keys records by address, so they are still two avatars.
    assert nodes["sarah"].fingerprint == nodes["marco"].fingerprint
    others = [n.fingerprint for a, n in nodes.items() if a != "marco"]
    assert len(set(others)) == len(others)


def test_inline_data_is_stored_by_digest(tmp_path: Path) -> None:
    data = base64.b64encode(PNG).decode()
    text = RECIPE.replace(
        "{prompt: podcast, name: A}",
        f"{{prompt: podcast, reference_images: [{{base64: '{data}', media_type: image/png}}]}}",
    )
    node = graph_of(tmp_path, text)["sarah/podcast"]
    assert node.depends_on == ("sarah",)  # inline data is no upload
    digest = hashlib.sha256(data.encode()).hexdigest()
    assert node.stored_request["reference_images"] == [
        {"type": "base64", "media_type": "image/png", "data": f"sha256:{digest}"}
    ]
    assert data not in json.dumps(node.stored_request)
    assert node.template["reference_images"][0]["data"] == data  # sent as is


def test_urls_and_asset_ids_are_no_uploads(tmp_path: Path) -> None:
    text = RECIPE.replace(
        "[{path: office.png}]", "[{url: 'https://example.com/o.png'}, {asset_id: asset_7}]"
    )
    nodes = graph_of(tmp_path, text)
    assert UP_OFFICE not in nodes
    assert nodes["sarah/navy"].depends_on == ("sarah",)
    assert nodes["sarah/navy"].template["reference_images"] == [
        {"type": "url", "url": "https://example.com/o.png"},
        {"type": "asset_id", "asset_id": "asset_7"},
    ]


def test_group_id_goes_into_the_base_request(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(
        tmp_path / "b", RECIPE.replace("name: Marco\n", "name: Marco\n    group_id: g1\n")
    )
    assert after["marco"].template["avatar_group_id"] == "g1"
    assert changed(before, after) == {"marco", "marco/chef"}


# -- fingerprints -------------------------------------------------------------------------


def test_fingerprints_are_deterministic_and_independent_of_the_recipe_location(
    tmp_path: Path,
) -> None:
    assert fingerprints(graph_of(tmp_path / "a")) == fingerprints(graph_of(tmp_path / "b" / "c"))


def test_editing_a_base_file_changes_the_base_and_every_look_downstream(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(tmp_path / "b", files={"sarah.png": PNG + b"edited"})
    new_upload = "upload:" + hashlib.sha256(PNG + b"edited").hexdigest()[:16]
    assert set(after) - set(before) == {new_upload}
    assert set(before) - set(after) == set()  # marco still uploads the old bytes
    assert changed(before, after) == {
        new_upload,
        "sarah",
        "sarah/navy",
        "sarah/dusk",
        "sarah/night",
        "sarah/podcast",
    }


def test_editing_a_reference_image_changes_its_look_and_the_chain(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(tmp_path / "b", files={"office.png": OFFICE + b"!"})
    assert changed(before, after) - {a for a in after if a.startswith("upload:")} == {
        "sarah/navy",
        "sarah/dusk",
        "sarah/night",
    }


def test_editing_a_twin_video_changes_its_consent(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(tmp_path / "b", files={"alex.mp4": MP4 + b"!"})
    assert changed(before, after) - {a for a in after if a.startswith("upload:")} == {
        "alex",
        "consent:alex",
        "alex/keynote",
    }


def test_changing_a_look_prompt_changes_it_and_its_chain_not_its_siblings(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(tmp_path / "b", RECIPE.replace("navy blazer", "navy suit"))
    assert changed(before, after) == {"sarah/navy", "sarah/dusk", "sarah/night"}
    middle = graph_of(tmp_path / "c", RECIPE.replace("prompt: dusk,", "prompt: dawn,"))
    assert changed(before, middle) == {"sarah/dusk", "sarah/night"}


def test_changing_a_look_source_changes_it(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(
        tmp_path / "b", RECIPE.replace("{prompt: night, from: dusk}", "{prompt: night}")
    )
    assert changed(before, after) == {"sarah/night"}
    assert after["sarah/night"].depends_on == ("sarah",)


def test_moving_a_file_with_the_same_bytes_changes_nothing(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    text = RECIPE.replace("path: sarah.png", "path: pictures/sarah-2024.png").replace(
        "path: office.png", "path: refs/the-office.png"
    )
    directory = tmp_path / "b"
    directory.mkdir()
    files = {"pictures/sarah-2024.png": PNG, "refs/the-office.png": OFFICE}
    after = build_graph(load_recipe(make(directory, text, files)))
    assert fingerprints(after) == fingerprints(before)
    assert after[UP_OFFICE].name == "refs/the-office.png"


def test_display_names_change_no_fingerprint(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    text = (
        RECIPE.replace("name: Sarah", "name: Sarah Connor")
        .replace("name: A}", "name: The Podcast}")
        .replace("name: Riley", "name: R.")
    )
    after = graph_of(tmp_path / "b", text)
    assert fingerprints(after) == fingerprints(before)
    assert after["sarah/dusk"].name == "Sarah Connor — dusk"
    assert after["sarah/podcast"].name == "The Podcast"


def test_prompt_suffix_change_changes_every_look(tmp_path: Path) -> None:
    before = graph_of(tmp_path / "a")
    after = graph_of(tmp_path / "b", RECIPE.replace(", studio light", ", golden hour"))
    assert changed(before, after) == set(LOOKS)


def test_prompt_suffix_change_changes_a_prompt_base(tmp_path: Path) -> None:
    text = "version: 1\navatars:\n  c:\n    name: C\n    base: {type: prompt, prompt: p}\n"
    text += "    looks:\n      a: {prompt: q}\n"
    before = graph_of(tmp_path / "a", text)
    after = graph_of(
        tmp_path / "b",
        text.replace("version: 1\n", "version: 1\ndefaults: {prompt_suffix: ', x'}\n"),
    )
    assert changed(before, after) == {"c", "c/a"}


# -- diff ---------------------------------------------------------------------------------


def test_no_manifest_creates_everything(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), {})
    assert list(actions(plan)) == list(nodes)
    expected = {a: ("create", "new") for a in nodes}
    expected["riley"] = ("create", "existing look look_1")
    assert actions(plan) == expected
    assert plan.summary() == {
        "create": 14,
        "check": 1,
        "adopt": 0,
        "move": 0,
        "reuse": 0,
        "update": 0,
        "replace": 0,
        "retry": 0,
        "keep": 0,
        "orphan": 0,
    }
    assert plan.has_changes
    navy = next(a for a in plan.actions if a.address == "sarah/navy")
    assert (navy.kind, navy.depends_on, navy.record) == (
        "look",
        nodes["sarah/navy"].depends_on,
        None,
    )
    assert navy.node == nodes["sarah/navy"]


def test_everything_completed_is_kept(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), records_of(nodes))
    assert set(actions(plan).values()) == {("keep", "unchanged")}
    assert not plan.has_changes
    assert plan.summary()["keep"] == len(nodes)


def test_a_name_change_is_an_update_not_a_regeneration(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a"))
    path = make(tmp_path, RECIPE.replace("name: A}", "name: B}").replace("name: Marco", "name: M"))
    plan = build_plan(load_recipe(path), records)
    changes = {a: v for a, v in actions(plan).items() if v[0] != "keep"}
    assert changes == {
        "marco": ("update", "name changed: 'Marco' -> 'M'"),
        "sarah/podcast": ("update", "name changed: 'A' -> 'B'"),
        "marco/chef": ("update", "name changed: 'Marco — chef' -> 'M — chef'"),
    }
    assert plan.has_changes
    assert plan.summary()["update"] == 3


def test_existing_base_never_renamed(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a"))
    path = make(tmp_path, RECIPE.replace("name: Riley", "name: R."))
    plan = build_plan(load_recipe(path), records)
    assert actions(plan)["riley"] == ("keep", "unchanged")
    assert actions(plan)["riley/spring"] == (
        "update",
        "name changed: 'Riley — spring' -> 'R. — spring'",
    )


def test_existing_base_with_another_look_id(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a"))
    path = make(tmp_path, RECIPE.replace("look_id: look_1", "look_id: look_2"))
    got = actions(build_plan(load_recipe(path), records))
    # Nothing was made for an existing base, so nothing is replaced: it is checked again.
    assert got["riley"] == ("create", "look id changed")
    assert got["riley/spring"] == ("replace", "upstream riley changed")


def test_a_prompt_change_replaces_the_look_and_its_chain(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a"))
    path = make(tmp_path, RECIPE.replace("navy blazer", "navy suit"))
    plan = build_plan(load_recipe(path), records)
    changes = {a: v for a, v in actions(plan).items() if v[0] != "keep"}
    assert changes == {
        "sarah/navy": ("replace", "prompt changed"),
        "sarah/dusk": ("replace", "upstream sarah/navy replaced"),
        "sarah/night": ("replace", "upstream sarah/dusk replaced"),
    }
    assert plan.summary() == {
        "create": 0,
        "check": 0,
        "adopt": 0,
        "move": 0,
        "reuse": 0,
        "update": 0,
        "replace": 3,
        "retry": 0,
        "keep": 12,
        "orphan": 0,
    }
    replaced = next(a for a in plan.actions if a.address == "sarah/navy")
    assert replaced.record == records["sarah/navy"]


def test_a_replaced_base_replaces_everything_on_it(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a"))
    path = make(tmp_path, files={"sarah.png": PNG + b"edited"})
    plan = build_plan(load_recipe(path), records)
    new_upload = "upload:" + hashlib.sha256(PNG + b"edited").hexdigest()[:16]
    changes = {a: v for a, v in actions(plan).items() if v[0] != "keep"}
    assert changes == {
        new_upload: ("create", "new"),
        "sarah": ("replace", "file changed"),
        "sarah/navy": ("replace", "upstream sarah replaced"),
        "sarah/podcast": ("replace", "upstream sarah replaced"),
        "sarah/dusk": ("replace", "upstream sarah/navy replaced"),
        "sarah/night": ("replace", "upstream sarah/dusk replaced"),
    }


def test_a_changed_record_with_nothing_made_is_created_again(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path / "a")
    records = records_of(nodes)
    records["sarah/navy"] = record(
        nodes["sarah/navy"], "failed", look_id=None, error=ErrorInfo("insufficient_credit", "x")
    )
    path = make(tmp_path, RECIPE.replace("navy blazer", "navy suit"))
    got = actions(build_plan(load_recipe(path), records))
    assert got["sarah/navy"] == ("create", "prompt changed")
    assert got["sarah/dusk"] == ("replace", "upstream sarah/navy changed")


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (
            "failed",
            ErrorInfo("insufficient_credit", "not enough credit"),
            "failed: insufficient_credit",
        ),
        ("failed", None, "failed: unknown"),
        (
            "blocked",
            ErrorInfo("consent_pending", "consent not given"),
            "blocked: consent not given",
        ),
        ("blocked", None, "blocked: upstream not ready"),
        ("pending", None, "unfinished: pending when the last run stopped"),
        ("submitted", None, "unfinished: submitted when the last run stopped"),
        ("processing", None, "unfinished: processing when the last run stopped"),
        ("missing", None, "missing: deleted or failed remotely"),
    ],
)
def test_retry(tmp_path: Path, status: Status, error: ErrorInfo | None, reason: str) -> None:
    nodes = graph_of(tmp_path)
    records = records_of(nodes)
    records["sarah/dusk"] = record(nodes["sarah/dusk"], status, error=error)
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), records)
    changes = {a: v for a, v in actions(plan).items() if v[0] != "keep"}
    assert changes == {"sarah/dusk": ("retry", reason)}
    assert plan.summary()["retry"] == 1
    assert plan.has_changes


def test_orphans_are_reported_not_acted_on(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    records = records_of(nodes)
    records["sarah/old"] = NodeRecord("sarah/old", "look", "f" * 64, "completed", look_id="l")
    records["bob"] = NodeRecord("bob", "base", "e" * 64, "failed")
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), records)
    orphans = [a for a in plan.actions if a.action == "orphan"]
    assert [(a.address, a.kind, a.reason, a.depends_on, a.node) for a in orphans] == [
        ("bob", "base", "no longer in the recipe", (), None),
        ("sarah/old", "look", "no longer in the recipe", (), None),
    ]
    assert orphans[1].record == records["sarah/old"]
    assert plan.summary()["orphan"] == 2
    assert not plan.has_changes  # nothing is deleted unless asked


def test_a_removed_look_is_an_orphan(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a"))
    path = make(tmp_path, RECIPE.replace("      podcast: {prompt: podcast, name: A}\n", ""))
    got = actions(build_plan(load_recipe(path), records))
    assert got["sarah/podcast"] == ("orphan", "no longer in the recipe")
    assert list(got)[-1] == "sarah/podcast"


def test_an_upload_renamed_is_kept(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    records = records_of(nodes)
    records[UP_PHOTO] = record(nodes[UP_PHOTO], name="old/path.png")
    got = actions(build_plan(load_recipe(tmp_path / "recipe.yaml"), records))
    assert got[UP_PHOTO] == ("keep", "unchanged")


# -- --only -------------------------------------------------------------------------------


def test_select_an_address_keeps_its_upstream(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    assert select(nodes, ["sarah/night"]) == {
        "sarah/night",
        "sarah/dusk",
        "sarah/navy",
        "sarah",
        UP_PHOTO,
        UP_OFFICE,
    }
    assert select(nodes, ["marco"]) == {"marco", UP_PHOTO}
    assert select(nodes, ["consent:alex"]) == {"consent:alex", "alex", UP_VIDEO}


def test_select_globs(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    assert select(nodes, ["sarah/*"]) == {
        "sarah/navy",
        "sarah/dusk",
        "sarah/night",
        "sarah/podcast",
        "sarah",
        UP_PHOTO,
        UP_OFFICE,
    }
    assert select(nodes, ["*/chef", "riley*"]) == {
        "marco/chef",
        "marco",
        UP_PHOTO,
        "riley",
        "riley/spring",
    }
    assert select(nodes, ["upload:*"]) == {UP_PHOTO, UP_OFFICE, UP_VIDEO}


@pytest.mark.parametrize("patterns", [["nobody"], ["sarah/*", "sarah/nope"], ["Sarah"]])
def test_select_matching_nothing_is_an_error(tmp_path: Path, patterns: list[str]) -> None:
    nodes = graph_of(tmp_path)
    unmatched = patterns[-1]
    with pytest.raises(PlanError) as info:
        select(nodes, patterns)
    assert str(info.value) == (f"--only {unmatched!r} matches no address in the recipe or manifest")
    with pytest.raises(PlanError):
        build_plan(load_recipe(tmp_path / "recipe.yaml"), {}, only=patterns)


def test_plan_only(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    records = records_of(nodes)
    records["sarah/old"] = NodeRecord("sarah/old", "look", "f" * 64, "completed")
    records["bob"] = NodeRecord("bob", "base", "e" * 64, "completed")
    del records["sarah/dusk"]
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), records, only=["sarah/d*"])
    assert actions(plan) == {
        UP_PHOTO: ("keep", "unchanged"),
        UP_OFFICE: ("keep", "unchanged"),
        "sarah": ("keep", "unchanged"),
        "sarah/navy": ("keep", "unchanged"),
        "sarah/dusk": ("create", "new"),
    }
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), records, only=["sarah/*"])
    assert actions(plan)["sarah/old"] == ("orphan", "no longer in the recipe")
    assert "bob" not in actions(plan)


# -- cycles -------------------------------------------------------------------------------


def test_a_cycle_among_drafts_is_a_plan_error() -> None:
    # The recipe loader refuses `from` cycles, so only hand-built drafts reach this check.
    drafts = {
        "c": _Draft("base", {"type": "existing", "look_id": "x"}),
        "a": _Draft("look", {"prompt": "p", "avatar_id": {"$look": "b"}}),
        "b": _Draft("look", {"prompt": "p", "reference_images": [{"$asset": "u"}]}),
        "u": _Draft("upload", {"sha256": "0", "media_type": "image/png", "x": {"$look": "a"}}),
    }
    with pytest.raises(PlanError) as info:
        _fingerprint(drafts)
    assert str(info.value) == "dependency cycle: a -> b -> u -> a"


@pytest.mark.parametrize("seed", range(20))
def test_dependency_order_is_graphlibs_static_order(seed: int) -> None:
    # The plan lists nodes in this order: it must not change with the faster sort.
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(rng.randrange(1, 60))]
    graph = {
        name: {rng.choice(names[:i]) for _ in range(rng.randrange(0, 4))} if i else set()
        for i, name in enumerate(names)
    }
    graph[names[-1]].add("outside")  # a dependency that is no key of its own
    shuffled = dict(rng.sample(sorted(graph.items()), len(graph)))
    expected = list(graphlib.TopologicalSorter(shuffled).static_order())
    assert dependency_order(shuffled) == expected


def test_drafts_without_a_cycle_fingerprint_through_references() -> None:
    def drafts(look_id: str) -> dict[str, _Draft]:
        return {
            "l": _Draft("look", {"prompt": "p", "avatar_id": {"$look": "b"}}),
            "b": _Draft("base", {"type": "existing", "look_id": look_id}),
        }

    one, two = _fingerprint(drafts("x")), _fingerprint(drafts("y"))
    assert list(one) == ["b", "l"]
    assert one["l"].depends_on == ("b",)
    assert one["l"].fingerprint != two["l"].fingerprint


def test_a_from_cycle_is_stopped_by_the_loader(tmp_path: Path) -> None:
    text = RECIPE.replace("{prompt: navy blazer,", "{prompt: navy blazer, from: night,")
    with pytest.raises(RecipeError) as info:
        load_recipe(make(tmp_path, text))
    assert [p.message for p in info.value.problems] == [
        "looks form a cycle through 'from': navy -> night -> dusk -> navy"
    ]


# -- JSON -----------------------------------------------------------------------------------


def test_plan_to_json(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    records = records_of(nodes)
    records["gone"] = NodeRecord("gone", "base", "e" * 64, "completed")
    del records["alex/keynote"]
    data = build_plan(load_recipe(tmp_path / "recipe.yaml"), records).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["version"] == 1
    assert data["summary"] == {
        "create": 1,
        "check": 0,
        "adopt": 0,
        "move": 0,
        "reuse": 0,
        "update": 0,
        "replace": 0,
        "retry": 0,
        "keep": 15 - 1,
        "orphan": 1,
    }
    by_address = {a["address"]: a for a in data["actions"]}
    assert by_address["alex/keynote"] == {
        "address": "alex/keynote",
        "action": "create",
        "kind": "look",
        "reason": "new",
        "depends_on": ["alex"],
        "file": None,
        "changes": [],
    }
    assert by_address["gone"] == {
        "address": "gone",
        "action": "orphan",
        "kind": "base",
        "reason": "no longer in the recipe",
        "depends_on": [],
        "file": None,
        "changes": [],
    }
    assert by_address["sarah/navy"]["depends_on"] == sorted(["sarah", UP_OFFICE])


# -- adopted looks (`looks import`) -------------------------------------------------------

ADOPTED = """\
version: 1
avatars:
  nia:
    name: Nia
    base: {type: existing, look_id: look_base}
    looks:
      beach: {look_id: look_beach, name: Nia at the beach}
      dusk: {prompt: dusk, from: beach}
"""


def test_adopted_look_is_an_existing_node_others_build_on(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path, ADOPTED)
    assert nodes["nia/beach"].kind == "look"
    assert nodes["nia/beach"].template == {"type": "existing", "look_id": "look_beach"}
    assert nodes["nia/beach"].depends_on == ()
    assert nodes["nia/dusk"].depends_on == ("nia/beach",)
    plan = build_plan(load_recipe(make(tmp_path, ADOPTED)), {})
    assert actions(plan)["nia/beach"] == ("create", "existing look look_beach")
    assert next(a for a in plan.actions if a.address == "nia/beach").verb == "check"


def test_adopted_look_recorded_is_kept_and_never_renamed(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a", ADOPTED))
    path = make(tmp_path, ADOPTED.replace("Nia at the beach", "Beach"))
    got = actions(build_plan(load_recipe(path), records))
    assert got["nia/beach"] == ("keep", "unchanged")
    assert got["nia/dusk"] == ("keep", "unchanged")


def test_adopted_look_with_another_look_id_is_checked_not_replaced(tmp_path: Path) -> None:
    records = records_of(graph_of(tmp_path / "a", ADOPTED))
    path = make(tmp_path, ADOPTED.replace("look_id: look_beach", "look_id: look_other"))
    got = actions(build_plan(load_recipe(path), records))
    assert got["nia/beach"] == ("create", "look id changed")
    assert got["nia/dusk"] == ("replace", "upstream nia/beach changed")


def test_only_may_name_an_orphan(tmp_path: Path) -> None:
    nodes = graph_of(tmp_path)
    records = records_of(nodes)
    records["bob"] = record(nodes["marco"], address="bob")
    plan = build_plan(load_recipe(tmp_path / "recipe.yaml"), records, only=["bob"])
    assert actions(plan) == {"bob": ("orphan", "no longer in the recipe")}

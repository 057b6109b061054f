"""The lifecycle's pure decisions, without a server: what prune selects, what an import
adopts and under which keys, and how an imported recipe's text is extended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from looks import recipe_edit
from looks.client import GroupInfo, LookInfo
from looks.errors import LooksError
from looks.lifecycle import (
    AdoptedAvatar,
    RemoteGroup,
    adopt,
    adopted_record,
    look_key,
    prune_selection,
)
from looks.manifest import NodeRecord
from looks.plan import PlanNode

# -- prune selection ----------------------------------------------------------------------


def made(address: str, look_id: str | None, **changes: Any) -> NodeRecord:
    """A record of a look this tool created (it sent a creation for it)."""
    kind = "look" if "/" in address else "base"
    record = NodeRecord(address, kind, "fp", "completed", look_id=look_id, attempts=1)
    return record.evolve(idempotency_key=f"key-{address}", **changes)


def adopted(address: str, look_id: str) -> NodeRecord:
    return NodeRecord(
        address, "look", "fp", "completed", request={"type": "existing"}, look_id=look_id
    )


def node(address: str, **template: Any) -> PlanNode:
    return PlanNode(address, "look" if "/" in address else "base", template, (), "fp")


def graph(*nodes: PlanNode) -> dict[str, PlanNode]:
    return {n.address: n for n in nodes}


def selected(items: list[Any]) -> list[tuple[str, str, str | None, bool]]:
    return [(i.address, i.reason, i.look_id, i.delete) for i in items]


def test_a_superseded_look_is_deleted_and_a_record_still_in_the_recipe_kept() -> None:
    records = {"ava": made("ava", "look_new", superseded=("look_old",))}
    (items,) = prune_selection([records], [graph(node("ava"))])
    assert selected(items) == [("ava", "superseded", "look_old", True)]


def test_an_orphan_made_here_is_deleted_one_adopted_or_without_a_look_only_forgotten() -> None:
    records = {
        "gone": made("gone", "look_1"),
        "ava/kept": adopted("ava/kept", "look_2"),
        "upload:photo": NodeRecord("upload:photo", "upload", "fp", "completed", asset_id="a1"),
    }
    (items,) = prune_selection([records], [graph(node("ava"))])
    assert selected(items) == [
        ("ava/kept", "orphaned", "look_2", False),
        ("gone", "orphaned", "look_1", True),
        ("upload:photo", "orphaned", None, False),
    ]
    assert "not made by looks" in items[0].note


def test_an_orphan_whose_create_answer_was_lost_is_to_be_found_and_deleted_not_forgotten() -> None:
    records = {
        "ava/lost": made("ava/lost", None, status="submitted", group_id="group_1"),
        "ava/never": made("ava/never", None, status="failed"),
    }
    (items,) = prune_selection([records], [graph(node("ava"))])
    assert selected(items) == [
        ("ava/lost", "orphaned", None, True),  # its look is found by name before deletion
        ("ava/never", "orphaned", None, False),
    ]
    assert items[0].describe().startswith("delete (found by name)  ava/lost (orphaned; ")


def test_a_look_another_manifest_pruned_together_records_is_never_deleted() -> None:
    mine = {"old": made("old", "look_shared"), "ava": made("ava", "look_a", superseded=("look_b",))}
    theirs = {"zoe": made("zoe", "look_shared"), "zoe/x": made("zoe/x", "look_b")}
    items, other = prune_selection(
        [mine, theirs], [graph(node("ava")), graph(node("zoe"), node("zoe/x"))]
    )
    assert selected(items) == [
        ("ava", "superseded", "look_b", False),
        ("old", "orphaned", "look_shared", False),
    ]
    assert other == []


def test_looks_recorded_beside_and_existing_looks_of_any_recipe_are_protected() -> None:
    records = {
        "ava": made("ava", "look_a", superseded=("look_beside", "look_named")),
        "old": made("old", "look_named"),
    }
    recipe = graph(node("ava"), node("riley", type="existing", look_id="look_named"))
    (items,) = prune_selection([records], [recipe], beside={"look_beside"})
    assert selected(items) == [
        ("ava", "superseded", "look_beside", False),
        ("ava", "superseded", "look_named", False),
        ("old", "orphaned", "look_named", False),
    ]


# -- import: adoption -----------------------------------------------------------------------


def look(look_id: str, name: str, status: str = "completed", group: str = "g1") -> LookInfo:
    preview = f"https://cdn.example.com/{look_id}.png" if status == "completed" else None
    return LookInfo(
        look_id, name, "photo", group_id=group, status=status, preview_image_url=preview
    )


def test_adopt_keys_from_names_the_first_usable_look_as_base_failed_ones_skipped() -> None:
    remote = RemoteGroup(
        GroupInfo("g1", "Sarah Lee"),
        (
            look("l0", "broken", status="failed"),
            look("l1", "Sarah Lee"),
            look("l2", "Sarah Lee — Navy Office"),
            look("l3", "Base"),
            look("l4", "Sarah Lee"),
        ),
    )
    (avatar,) = adopt([remote])
    assert (avatar.key, avatar.name, avatar.base.id) == ("sarah-lee", "Sarah Lee", "l1")
    # The avatar's name comes off the look keys; `base` is taken (`from: base`); no clash.
    assert [(a.key, a.look.id) for a in avatar.looks] == [
        ("navy-office", "l2"),
        ("base-2", "l3"),
        ("look", "l4"),
    ]
    assert [s.id for s in avatar.skipped] == ["l0"]


def test_adopt_keeps_avatar_keys_apart_and_refuses_a_group_with_nothing_usable() -> None:
    one = RemoteGroup(GroupInfo("g1", "Max"), (look("a", "Max"),))
    two = RemoteGroup(GroupInfo("g2", "max!"), (look("b", "max", group="g2"),))
    assert [a.key for a in adopt([one, two])] == ["max", "max-2"]
    dead = RemoteGroup(GroupInfo("g3", "Dead"), (look("c", "x", status="failed", group="g3"),))
    with pytest.raises(LooksError, match="g3 has only failed looks"):
        adopt([dead])
    with pytest.raises(LooksError, match="g4 has no looks"):
        adopt([RemoteGroup(GroupInfo("g4", "Empty"), ())])


def test_look_key_strips_the_avatars_name() -> None:
    assert look_key("Sarah — Podcast", "sarah") == "podcast"
    assert look_key("Sarah", "sarah") == "look"
    assert look_key("!!!", "sarah") == "look"


def test_an_adopted_record_is_completed_only_when_its_look_is() -> None:
    target = node("ava/red")
    done = adopted_record(target, look("l1", "Red"))
    assert (done.status, done.look_id, done.group_id) == ("completed", "l1", "g1")
    assert done.preview_image_url == "https://cdn.example.com/l1.png"
    busy = adopted_record(target, look("l2", "Red", status="processing"))
    assert (busy.status, busy.look_id, busy.preview_image_url) == ("pending", "l2", None)


# -- import: the recipe's text ------------------------------------------------------------


def imported(key: str = "zoe", name: str = "Zoe") -> AdoptedAvatar:
    (avatar,) = adopt([RemoteGroup(GroupInfo("g9", name), (look("z1", name, group="g9"),))])
    assert avatar.key == key
    return avatar


def test_extending_keeps_comments_and_inserts_at_the_end_of_avatars() -> None:
    text = (
        "# my recipe\n"
        "version: 1\n"
        "avatars:\n"
        "    ava:  # the first\n"
        "        name: Ava\n"
        "        base: {type: prompt, prompt: A portrait}\n"
        "    # a trailing comment about ava\n"
        "defaults:\n"
        "  prompt_suffix: ', soft light'\n"
    )
    out = recipe_edit.extended_text(Path("r.yaml"), text, [imported()])
    assert out.startswith(text[: text.index("    # a trailing")])
    assert "    zoe:  # imported from avatar group g9\n      name: Zoe\n" in out
    assert out.endswith("defaults:\n  prompt_suffix: ', soft light'\n")
    data = yaml.safe_load(out)
    assert list(data["avatars"]) == ["ava", "zoe"]
    assert data["avatars"]["zoe"]["base"] == {"type": "existing", "look_id": "z1"}


def test_extending_an_empty_avatars_mapping_and_a_file_without_a_final_newline() -> None:
    out = recipe_edit.extended_text(Path("r.yaml"), "version: 1\navatars: {}\n", [imported()])
    assert list(yaml.safe_load(out)["avatars"]) == ["zoe"]
    text = "version: 1\navatars:\n  ava:\n    name: Ava\n    base: {type: prompt, prompt: P}"
    out = recipe_edit.extended_text(Path("r.yaml"), text, [imported()])
    assert list(yaml.safe_load(out)["avatars"]) == ["ava", "zoe"]


def test_a_flow_style_avatars_mapping_is_refused_with_the_file_named() -> None:
    text = "version: 1\navatars: {ava: {name: Ava, base: {type: prompt, prompt: P}}}\n"
    with pytest.raises(LooksError, match=r"r\.yaml: cannot extend an `avatars` mapping"):
        recipe_edit.extended_text(Path("r.yaml"), text, [imported()])


def test_a_new_recipe_holds_the_header_and_the_avatars() -> None:
    out = recipe_edit.new_recipe_text("# header\n", [imported()])
    assert out.startswith(
        "# header\nversion: 1\navatars:\n  zoe:  # imported from avatar group g9\n"
    )
    assert yaml.safe_load(out)["avatars"]["zoe"]["name"] == "Zoe"

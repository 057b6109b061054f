"""The pure three-way merge of manifests by address (engine/manifest_merge.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import MergeConflictError
from engine.manifest import Manifest, NodeRecord
from engine.manifest_merge import Side, merge_manifests

FP = "a" * 64
FP2 = "b" * 64
LINEAGE = "0b5f8a4e-1d2c-4e3f-9a8b-7c6d5e4f3a2b"
PATH = "r.manifest.json"


def rec(address: str, look_id: str | None = None, **changes: Any) -> NodeRecord:
    fields: dict[str, Any] = {
        "kind": "look",
        "fingerprint": FP,
        "status": "completed",
        "name": address,
        "look_id": look_id,
        "group_id": "g1",
        "request": {"type": "prompt", "prompt": "p"},
    }
    fields.update(changes)
    return NodeRecord(address=address, **fields)


def text(
    *records: NodeRecord, serial: int = 1, lineage: str = LINEAGE, recipe: str = "r.yaml"
) -> str:
    manifest = Manifest(lineage=lineage, recipe=recipe, serial=serial)
    manifest.nodes = {r.address: r for r in records}
    return manifest.dumps()


def merge(base: str | None, ours: str, theirs: str) -> dict[str, Any]:
    result = merge_manifests(
        Side(base, "base") if base is not None else None,
        Side(ours, "ours"),
        Side(theirs, "theirs"),
        PATH,
    )
    data: dict[str, Any] = json.loads(result.text)
    return data


BASE = rec("sarah", "look_base", kind="base", submitted_at=100.0)


def test_new_records_on_both_sides_that_sort_together_are_both_kept() -> None:
    a = rec("sarah/office-a", "look_a", submitted_at=200.0)
    b = rec("sarah/office-b", "look_b", submitted_at=210.0)
    merged = merge(text(BASE), text(BASE, a, serial=2), text(BASE, b, serial=5))
    assert merged["nodes"] == {
        "sarah": BASE.to_json(),
        "sarah/office-a": a.to_json(),
        "sarah/office-b": b.to_json(),
    }
    assert merged["serial"] == 6 and merged["lineage"] == LINEAGE


def test_merged_text_is_exactly_what_the_writer_produces() -> None:
    a = rec("sarah/office-a", "look_a", submitted_at=200.0)
    b = rec("sarah/office-b", "look_b", submitted_at=210.0)
    result = merge_manifests(
        Side(text(BASE), "base"),
        Side(text(BASE, a, serial=2), "ours"),
        Side(text(BASE, b, serial=3), "theirs"),
        PATH,
    )
    assert result.text == text(BASE, a, b, serial=4)


def test_the_merge_does_not_depend_on_which_side_is_ours() -> None:
    a = rec("sarah/office", "look_a", submitted_at=200.0)
    b = rec("sarah/office", "look_b", submitted_at=200.0, name="other")
    one = merge(text(BASE), text(BASE, a, serial=3), text(BASE, b, serial=3))
    two = merge(text(BASE), text(BASE, b, serial=3), text(BASE, a, serial=3))
    assert one == two


def test_same_address_changed_on_both_sides_keeps_the_later_and_supersedes_the_other() -> None:
    old = rec("sarah/office", "look_0", submitted_at=150.0)
    ours = rec(
        "sarah/office", "look_1", fingerprint=FP2, submitted_at=300.0, superseded=("look_0",)
    )
    theirs = rec(
        "sarah/office", "look_2", fingerprint=FP2, submitted_at=250.0, superseded=("look_0",)
    )
    merged = merge(text(BASE, old), text(BASE, ours, serial=9), text(BASE, theirs, serial=2))
    node = merged["nodes"]["sarah/office"]
    assert node["look_id"] == "look_1"
    assert node["superseded"] == ["look_0", "look_2"]


def test_recency_falls_back_to_the_serial() -> None:
    ours = rec("sarah/office", "look_1")
    theirs = rec("sarah/office", "look_2")
    merged = merge(None, text(ours, serial=3), text(theirs, serial=4))
    assert merged["nodes"]["sarah/office"]["look_id"] == "look_2"
    assert merged["nodes"]["sarah/office"]["superseded"] == ["look_1"]


def test_an_adopted_look_is_never_superseded() -> None:
    existing = {"type": "existing", "look_id": "look_mine"}
    ours = rec("sarah/office", "look_mine", request=existing)
    theirs = rec("sarah/office", "look_2", submitted_at=500.0)
    merged = merge(None, text(ours), text(theirs))
    assert merged["nodes"]["sarah/office"]["look_id"] == "look_2"
    assert "superseded" not in merged["nodes"]["sarah/office"]


def test_the_same_look_recorded_differently_supersedes_nothing() -> None:
    ours = rec("sarah/office", "look_1", name="New name", submitted_at=200.0)
    theirs = rec("sarah/office", "look_1", status="processing", submitted_at=200.0)
    merged = merge(text(BASE), text(BASE, ours), text(BASE, theirs, serial=2))
    assert "superseded" not in merged["nodes"]["sarah/office"]


def test_a_record_pruned_on_one_side_and_untouched_on_the_other_is_gone() -> None:
    orphan = rec("sarah/old", "look_old", submitted_at=120.0)
    a = rec("sarah/office-a", "look_a", submitted_at=200.0)
    merged = merge(text(BASE, orphan), text(BASE, serial=2), text(BASE, orphan, a, serial=2))
    assert set(merged["nodes"]) == {"sarah", "sarah/office-a"}


def test_a_record_pruned_on_one_side_and_changed_on_the_other_is_kept() -> None:
    old = rec("sarah/old", "look_old", submitted_at=120.0)
    replaced = rec("sarah/old", "look_new", submitted_at=220.0, superseded=("look_old",))
    merged = merge(text(BASE, old), text(BASE, serial=2), text(BASE, replaced, serial=2))
    assert merged["nodes"]["sarah/old"] == replaced.to_json()


def test_superseded_ids_pruned_on_one_side_stay_pruned() -> None:
    old = rec("sarah/office", "look_1", superseded=("look_0", "look_x"), submitted_at=100.0)
    pruned = rec("sarah/office", "look_1", submitted_at=100.0)
    renamed_and_replaced = rec(
        "sarah/office", "look_2", submitted_at=300.0, superseded=("look_0", "look_x", "look_1")
    )
    merged = merge(text(old), text(pruned, serial=2), text(renamed_and_replaced, serial=2))
    assert merged["nodes"]["sarah/office"]["superseded"] == ["look_1"]


def test_a_rename_on_one_side_and_a_new_look_on_the_other_merge() -> None:
    """A look key renamed: a new address on that side, the old one still there (orphan)."""
    old = rec("sarah/office", "look_1", submitted_at=100.0)
    renamed = rec("sarah/workplace", "look_2", submitted_at=200.0)
    new = rec("sarah/park", "look_3", submitted_at=210.0)
    merged = merge(
        text(BASE, old), text(BASE, old, renamed, serial=2), text(BASE, old, new, serial=2)
    )
    assert set(merged["nodes"]) == {"sarah", "sarah/office", "sarah/workplace", "sarah/park"}


def test_a_name_change_on_one_side_is_taken() -> None:
    old = rec("sarah/office", "look_1", submitted_at=100.0)
    renamed = rec("sarah/office", "look_1", name="Office 2", submitted_at=100.0)
    a = rec("sarah/office-a", "look_a", submitted_at=200.0)
    merged = merge(text(old), text(renamed, serial=2), text(old, a, serial=2))
    assert merged["nodes"]["sarah/office"]["name"] == "Office 2"
    assert "superseded" not in merged["nodes"]["sarah/office"]


def test_different_lineages_conflict() -> None:
    other = "11111111-1d2c-4e3f-9a8b-7c6d5e4f3a2b"
    with pytest.raises(MergeConflictError, match="different manifests"):
        merge(None, text(BASE), text(BASE, lineage=other))


def test_an_unsupported_format_conflicts_naming_the_side() -> None:
    future = json.loads(text(BASE))
    future["version"] = 2
    with pytest.raises(MergeConflictError, match=r"\(theirs\).*version 2"):
        merge(text(BASE), text(BASE), json.dumps(future))


def test_conflict_markers_in_a_side_conflict() -> None:
    with pytest.raises(MergeConflictError, match=r"\(ours\): manifest holds git conflict markers"):
        merge(text(BASE), "<<<<<<< HEAD\n", text(BASE))


def test_the_recipe_changed_differently_on_both_sides_conflicts() -> None:
    with pytest.raises(MergeConflictError, match="`recipe` changed on both sides"):
        merge(text(BASE), text(BASE, recipe="a.yaml"), text(BASE, recipe="b.yaml"))


def test_the_recipe_changed_on_one_side_is_taken() -> None:
    merged = merge(text(BASE), text(BASE, recipe="moved/r.yaml"), text(BASE, serial=2))
    assert merged["recipe"] == "moved/r.yaml"


def test_an_unanswered_creation_losing_to_the_other_side_conflicts() -> None:
    pending = rec(
        "sarah/office", None, status="submitted", idempotency_key="looks:k:1", submitted_at=100.0
    )
    done = rec("sarah/office", "look_2", submitted_at=300.0)
    with pytest.raises(MergeConflictError, match="awaits the answer to a creation"):
        merge(None, text(pending), text(done))


def test_journal_changes_replayed_on_ours_are_merged() -> None:
    a = rec("sarah/office-a", "look_a", submitted_at=200.0)
    b = rec("sarah/office-b", "look_b", submitted_at=210.0)
    change = {"address": a.address, "record": a.to_json()}
    result = merge_manifests(
        Side(text(BASE), "base"),
        Side(text(BASE), "ours", (change,)),
        Side(text(BASE, b, serial=2), "theirs"),
        PATH,
    )
    assert set(json.loads(result.text)["nodes"]) == {"sarah", "sarah/office-a", "sarah/office-b"}

"""Looks recorded by the manifests beside a run's own, read leniently from real files."""

from __future__ import annotations

import json
from pathlib import Path

from looks.manifest import ManifestStore, NodeRecord, journal_path_for
from looks.ownership import recorded_beside


def test_other_manifests_and_their_journals_are_read_and_damage_is_skipped(
    tmp_path: Path,
) -> None:
    store = ManifestStore(tmp_path / "mine.manifest.json", "mine.yaml")
    try:
        other = {
            "lineage": "other",
            "nodes": {
                "a": {"look_id": "look_a", "superseded": ["look_old", 7]},
                "b": {"look_id": None},
                "c": "not a record",
                "e": {"look_id": "look_imported", "request": {"type": "existing"}},
            },
        }
        (tmp_path / "other.manifest.json").write_text(json.dumps(other))
        journal = journal_path_for(tmp_path / "other.manifest.json")
        record = NodeRecord("d", "look", "0" * 64, "processing", look_id="look_d").to_json()
        journal.write_text(json.dumps({"address": "d", "record": record}) + "\n")
        (tmp_path / "broken.manifest.json").write_text('{"lineage": ["x"], "nodes": [1]}')
        (tmp_path / "torn.manifest.json").write_text('{"lineage": "t", "no')
        (tmp_path / "binary.manifest.json").write_bytes(b"\xff\xfe\x00")
        (tmp_path / "deep.manifest.json").write_text("[" * 100_000 + "]" * 100_000)
        backup = {"lineage": store.manifest.lineage, "nodes": {"x": {"look_id": "look_mine"}}}
        (tmp_path / "backup.manifest.json").write_text(json.dumps(backup))
        made = {"look_a", "look_old", "look_d"}
        assert recorded_beside([store], made_only=True) == made
        assert recorded_beside([store]) == {*made, "look_imported"}  # prune keeps it too
    finally:
        store.close()

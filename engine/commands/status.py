"""`looks status`: what the manifests record, offline."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.commands.plan import recipe_label
from engine.commands.validate import load_all
from engine.manifest import STATUSES, NodeRecord, manifest_path_for, read_manifest
from engine.recipe import MAX_LOOKS
from engine.report import table


def run(
    paths: Sequence[Path], *, manifest: Path | None, as_json: bool, max_looks: int = MAX_LOOKS
) -> int:
    """What the manifests record, offline: the media files need not be on disk."""
    recipes = load_all(paths, max_looks=max_looks, media="optional")
    labelled: list[tuple[str | None, NodeRecord]] = []  # (recipe when several, record)
    for recipe in recipes:
        path = manifest or manifest_path_for(recipe.path)
        label = str(recipe.path) if len(recipes) > 1 else None
        records = read_manifest(path, recipe_label(recipe, path)).nodes
        labelled.extend((label, records[a]) for a in sorted(records))
    summary = Counter(rec.status for _, rec in labelled)
    if as_json:
        nodes = [_entry(rec, label) for label, rec in labelled]
        ordered = {s: summary[s] for s in STATUSES if summary[s]}
        print(json.dumps({"nodes": nodes, "summary": ordered}, indent=2))
        return 0
    rows = [
        [
            f"{label}: {rec.address}" if label else rec.address,
            rec.kind,
            rec.status,
            rec.look_id or "",
            _note(rec),
        ]
        for label, rec in labelled
    ]
    if rows:
        print(table(rows, ["address", "kind", "status", "look id", "note"]))
    print(", ".join(f"{summary[s]} {s}" for s in STATUSES if summary[s]) or "nothing recorded")
    return 0


def _entry(rec: NodeRecord, recipe: str | None) -> dict[str, Any]:
    error = {"code": rec.error.code, "message": rec.error.message} if rec.error else None
    entry: dict[str, Any] = {
        "address": rec.address,
        "kind": rec.kind,
        "status": rec.status,
        "look_id": rec.look_id,
        "group_id": rec.group_id,
        "preview_image_url": rec.preview_image_url,
        "error": error,
    }
    if recipe is not None:
        entry["recipe"] = recipe
    return entry


def _note(rec: NodeRecord) -> str:
    if rec.error:
        return rec.error.message
    if rec.consent_url:
        return f"consent: {rec.consent_url}"
    return ""

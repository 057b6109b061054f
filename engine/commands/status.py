"""`looks status`: what the manifests record, offline."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.commands.plan import recipe_label
from engine.commands.validate import load_all
from engine.manifest import STATUSES, manifest_path_for, read_manifest
from engine.report import table


def run(paths: Sequence[Path], *, manifest: Path | None, as_json: bool) -> int:
    """What the manifests record, offline."""
    recipes = load_all(paths)
    nodes: list[dict[str, Any]] = []
    for recipe in recipes:
        path = manifest or manifest_path_for(recipe.path)
        for address, rec in sorted(read_manifest(path, recipe_label(recipe, path)).nodes.items()):
            entry: dict[str, Any] = {
                "address": address,
                "kind": rec.kind,
                "status": rec.status,
                "look_id": rec.look_id,
                "group_id": rec.group_id,
                "preview_image_url": rec.preview_image_url,
                "error": {"code": rec.error.code, "message": rec.error.message}
                if rec.error
                else None,
            }
            if len(recipes) > 1:
                entry["recipe"] = str(recipe.path)
            nodes.append(entry)
    summary = Counter(n["status"] for n in nodes)
    if as_json:
        ordered = {s: summary[s] for s in STATUSES if summary[s]}
        print(json.dumps({"nodes": nodes, "summary": ordered}, indent=2))
        return 0
    rows = [
        [
            (f"{n['recipe']}: " if "recipe" in n else "") + n["address"],
            n["kind"],
            n["status"],
            n["look_id"] or "",
            n["error"]["message"] if n["error"] else "",
        ]
        for n in nodes
    ]
    if rows:
        print(table(rows, ["address", "kind", "status", "look id", "note"]))
    print(", ".join(f"{summary[s]} {s}" for s in STATUSES if summary[s]) or "nothing recorded")
    return 0

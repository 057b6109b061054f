"""`looks status`: what the manifests record, offline."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import api
from ..manifest import STATUSES, NodeRecord
from ..recipe import MAX_LOOKS
from ..report import table


def run(
    paths: Sequence[Path], *, manifest: Path | None, as_json: bool, max_looks: int = MAX_LOOKS
) -> int:
    """What the manifests record, offline: the media files need not be on disk."""
    recipes = api.validate(paths, max_looks=max_looks, media="optional")
    several = len(recipes) > 1
    labelled: list[tuple[str | None, NodeRecord]] = [  # (recipe when several, record)
        (str(r.recipe) if several else None, r.record)
        for r in api.status(recipes, manifest=manifest)
    ]
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

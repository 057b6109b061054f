"""Whose look it is: looks manifests record are no other record's to adopt or to prune.

Recipes may share an avatar group (an avatar's `group_id`), so a group can hold another
recipe's look under the very name this recipe gives its own, and no field of the API says
whose a look is: only the manifests do. A run takes as recorded what its own manifests hold
(superseded looks included) and what the manifests beside them hold (the same directory,
where a catalog keeps its recipes, with their journals not yet folded in).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from .errors import ManifestError
from .manifest import ManifestStore, NodeRecord, journal_path_for, read_journal
from .paths import resolved


def recorded_ids(records: Iterable[NodeRecord], *, made_only: bool = False) -> set[str]:
    """Every look the records hold: the looks they use and those they superseded.

    made_only: without the looks they only refer to (`existing`, imported or adopted by
    id), which were made elsewhere, maybe by the recipe looking for its own.
    """
    ids: set[str] = set()
    for record in records:
        ids.update(record.superseded)
        if record.look_id is not None and not (made_only and _refers(record.request)):
            ids.add(record.look_id)
    return ids


def recorded_beside(own: Iterable[ManifestStore], *, made_only: bool = False) -> frozenset[str]:
    """The looks recorded by the other manifests in the directories of these manifests.

    A manifest of the same lineage as one of ours (a backup, an older copy) is our own
    history, not another recipe's: its looks stay ours to adopt. One that cannot be read or
    parsed is skipped: it is not this run's to repair, and its own runs refuse it.
    """
    stores = list(own)
    mine = {resolved(store.path) for store in stores}
    lineages = {store.manifest.lineage for store in stores}
    ids: set[str] = set()
    for directory in sorted({path.parent for path in mine}):
        with contextlib.suppress(OSError):
            for path in sorted(directory.glob("*.manifest.json")):
                if resolved(path) not in mine:
                    ids |= _read(path, lineages, made_only)
    return frozenset(ids)


def _read(path: Path, lineages: Collection[str], made_only: bool) -> set[str]:
    """Look ids in another manifest and its journal, read leniently: only the ids matter,
    and validating a large manifest that is not this run's would cost its full price."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):  # nested too deeply
        return set()
    try:
        changes = read_journal(journal_path_for(path))
    except (OSError, ManifestError):
        changes = []  # the manifest's own records still count
    if not isinstance(data, dict):
        return set()
    lineage = data.get("lineage")
    if isinstance(lineage, str) and lineage in lineages:
        return set()
    nodes = data.get("nodes")
    records = list(nodes.values()) if isinstance(nodes, dict) else []
    records += [change.get("record") for change in changes]
    ids: set[str] = set()
    for record in records:
        if isinstance(record, dict):
            refers = made_only and _refers(record.get("request"))
            ids |= _ids(None if refers else record.get("look_id"), record.get("superseded"))
    return ids


def _refers(request: object) -> bool:
    """A record of a look made elsewhere, which it only refers to by id."""
    return isinstance(request, Mapping) and request.get("type") == "existing"


def _ids(look_id: object, superseded: object) -> set[str]:
    ids = {look_id} if isinstance(look_id, str) else set()
    if isinstance(superseded, list):
        ids |= {i for i in superseded if isinstance(i, str)}
    return ids

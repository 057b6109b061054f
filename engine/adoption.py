"""Finding looks made here whose record was lost: pure rules over listings and records.

A look this tool made can end up unrecorded (one side of a merge kept, an older manifest
restored, a journal deleted, an answer lost past its key's lifetime); apply and refresh
find it by name in the group its avatar made here, and record it instead of paying for it
again. These functions decide where to look and which listed looks may be it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from .client import LookInfo
from .manifest import NodeRecord
from .plan import PlanNode


def unrecorded_looks(
    looks: Iterable[LookInfo], group: str, name: str | None, taken: Collection[str | None]
) -> list[LookInfo]:
    """The looks of this name in a group's listing that no record holds and that did not
    fail, oldest first (the API lists a group's looks in creation order)."""
    return [
        look if look.group_id else dataclasses.replace(look, group_id=group)
        for look in looks
        if look.name == name and look.id not in taken and look.status != "failed"
    ]


def adoption_group(node: PlanNode, records: Mapping[str, NodeRecord], before: float) -> str | None:
    """The group where a look made for node may exist unrecorded, or None.

    Only a prompt look whose record never sent anything (none at all: one side of a merge
    kept, an older manifest restored, a journal deleted), in the group its avatar's base
    made here before `before` (the run's start). Never a group made by hand, or named in
    the recipe, where a look of the same name may be someone else's.
    """
    old = records.get(node.address)
    if old is not None and (old.look_id or old.idempotency_key or old.attempts):
        return None  # the record knows what was sent: replay or reconcile that
    if node.kind != "look" or node.template.get("type") != "prompt":
        return None
    base = records.get(node.avatar or "")
    if base is None or base.kind != "base" or base.idempotency_key is None:
        return None
    request = base.request or {}
    if request.get("type") in ("existing", None) or "avatar_group_id" in request:
        return None
    if (base.submitted_at or 0.0) >= before:
        return None  # its group is new in this run: nothing older can be in it
    return base.group_id


def shared_names(nodes: Iterable[PlanNode]) -> set[tuple[str | None, str | None]]:
    """(avatar, name) of looks sharing a name: which of them would a look by that name be?"""
    seen = Counter((n.avatar, n.name) for n in nodes if n.kind == "look")
    return {key for key, count in seen.items() if count > 1}

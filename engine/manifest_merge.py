"""Three-way merge of manifests by address, for `looks merge-driver`. Pure: text in, text out.

Git merges a manifest line by line, so two branches that each recorded a new look whose
addresses sort next to each other always conflict. Merged by address instead:

- an address changed on one side only takes that side's record (a new record, a change,
  a deletion by prune);
- changed on both sides differently: the more recent record is kept — the later
  `submitted_at` (the last creation sent for it), then the higher serial of the side's
  manifest, then the record's canonical text, so the result never depends on which side is
  "ours" — and the other record's look is added to the kept record's `superseded`, so
  `looks prune` deletes it. Superseded ids are merged as sets (an id one side pruned stays
  pruned); an adopted (`existing`) look is never superseded, as prune must not delete it;
- a deletion on one side against a change on the other keeps the change: a record is only
  ever dropped when nothing new was learnt about it (a look already deleted is a 404 to
  prune, which counts it as gone).

What cannot be merged raises MergeConflictError (git then reports a conflict): different
lineages (two histories of the manifest), an unreadable or unsupported format, a recipe
changed differently on both sides, or a record whose kept rival still awaits the answer to
a creation (its look is unknown, so it could be neither kept nor superseded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ManifestError, MergeConflictError
from .manifest import Manifest, NodeRecord, apply_change, parse_manifest
from .plan import canonical_json


@dataclass(frozen=True)
class Side:
    """One version of the manifest given to the merge: its text and a name for messages."""

    text: str
    label: str  # "base", "ours", "theirs"
    changes: tuple[Mapping[str, object], ...] = ()  # journal lines still to replay on it


@dataclass(frozen=True)
class MergeResult:
    """The merged manifest's text, as the manifest writer would write it."""

    text: str
    kept_both: tuple[str, ...]  # addresses changed on both sides (the other look superseded)


def merge_manifests(base: Side | None, ours: Side, theirs: Side, path: str) -> MergeResult:
    """Merge two manifests by address against their common ancestor (None: added on both)."""
    mine, other = _parse(ours, path), _parse(theirs, path)
    if mine.lineage != other.lineage:
        raise MergeConflictError(
            f"{path}: ours and theirs are different manifests (lineage {mine.lineage} vs"
            f" {other.lineage}): each branch applied the recipe from scratch, so each made its"
            " own looks, in groups of its own; keep one side and copy into it the records only"
            " the other side has (`looks apply` would pay again for those, not adopt them)"
        )
    ancestor = _parse(base, path) if base is not None and base.text.strip() else None
    if ancestor is not None and ancestor.lineage != mine.lineage:
        ancestor = None  # an unrelated history: no common records to diff against
    merged = Manifest(
        lineage=mine.lineage,
        recipe=mine.recipe,
        serial=max(mine.serial, other.serial) + 1,
    )
    for f in dataclasses.fields(Manifest):
        if f.name in ("lineage", "serial", "nodes"):
            continue
        value = _merge_value(
            f.name,
            getattr(ancestor, f.name, None),
            getattr(mine, f.name),
            getattr(other, f.name),
            path,
        )
        setattr(merged, f.name, value)
    old = ancestor.nodes if ancestor is not None else {}
    both: list[str] = []
    for address in sorted(mine.nodes.keys() | other.nodes.keys()):
        o, t = mine.nodes.get(address), other.nodes.get(address)
        record, changed_both = _merge_record(
            old.get(address), (o, mine.serial), (t, other.serial), path
        )
        if record is not None:
            merged.nodes[address] = record
        if changed_both:
            both.append(address)
    return MergeResult(merged.dumps(), tuple(both))


def touched_by(base: Side | None, side: Side, path: str) -> set[str]:
    """The addresses whose record differs between the ancestor and a side."""
    new = _parse(side, path).nodes
    old = _parse(base, path).nodes if base is not None and base.text.strip() else {}
    return {a for a in old.keys() | new.keys() if old.get(a) != new.get(a)}


def _parse(side: Side, path: str) -> Manifest:
    try:
        manifest = parse_manifest(side.text, Path(f"{path} ({side.label})"))
    except ManifestError as e:
        raise MergeConflictError(str(e)) from None
    for change in side.changes:
        apply_change(manifest, change)
    return manifest


def _merge_value(name: str, base: object, ours: object, theirs: object, path: str) -> object:
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    raise MergeConflictError(
        f"{path}: `{name}` changed on both sides ({ours!r} vs {theirs!r}): merge it by hand"
    )


def _merge_record(
    base: NodeRecord | None,
    ours: tuple[NodeRecord | None, int],
    theirs: tuple[NodeRecord | None, int],
    path: str,
) -> tuple[NodeRecord | None, bool]:
    """The merged record (None: deleted) and whether both sides had changed it."""
    o, t = ours[0], theirs[0]
    if o == t or t == base:
        return o, False
    if o == base:
        return t, False
    if o is None or t is None:
        return (o or t), False  # deleted against changed: keep what was learnt
    kept, lost = sorted((ours, theirs), key=_recency, reverse=True)
    winner, loser = kept[0], lost[0]
    assert winner is not None and loser is not None
    if loser.status == "submitted" and loser.look_id is None and loser.idempotency_key:
        raise MergeConflictError(
            f"{path}: {loser.address} awaits the answer to a creation on one side and was"
            " changed on the other: run `looks apply` on the branch that sent it, commit the"
            " manifest, then merge again"
        )
    superseded = _merge_ids(
        base.superseded if base is not None else (), winner.superseded, loser.superseded
    )
    if (
        loser.look_id is not None
        and loser.look_id != winner.look_id
        and not _adopted(loser)
        and loser.look_id not in superseded
    ):
        superseded = (*superseded, loser.look_id)
    superseded = tuple(i for i in superseded if i != winner.look_id)
    # The run cache of both sides, and the loser's own look: still reusable, not paid again.
    cache = {**loser.reusable, **winner.reusable}
    if loser.status == "completed" and loser.look_id is not None:
        cache.setdefault(loser.fingerprint, loser.look_id)
    cache = {f: i for f, i in cache.items() if i in superseded and f != winner.fingerprint}
    return winner.evolve(superseded=superseded, reusable=cache), True


def _recency(side: tuple[NodeRecord | None, int]) -> tuple[float, int, str]:
    """Later creation sent, then the later manifest, then the text: a total order."""
    record, serial = side
    assert record is not None
    return (record.submitted_at or 0.0, serial, canonical_json(record.to_json()))


def _merge_ids(base: Iterable[str], ours: Iterable[str], theirs: Iterable[str]) -> tuple[str, ...]:
    """A set merge keeping order: an id either side dropped (pruned) stays dropped."""
    before = set(base)
    dropped = {i for i in before if i not in set(ours) or i not in set(theirs)}
    merged = dict.fromkeys(i for i in (*ours, *theirs) if i not in dropped)
    return tuple(merged)


def _adopted(record: NodeRecord) -> bool:
    """A look made outside this tool: never superseded, as prune would delete it."""
    return (record.request or {}).get("type") == "existing"

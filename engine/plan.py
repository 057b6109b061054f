"""The planner: recipe + manifest in, an ordered list of actions out. No I/O.

Each node of the graph (upload, base, consent, look) carries a request *template*:
the body it will send, where references to upstream nodes are `{"$look": ADDR}`,
`{"$group": ADDR}` or `{"$asset": ADDR}`. The fingerprint is the sha256 of that
template with each reference replaced by the upstream node's fingerprint, so editing
a base changes every look built on it, and moving a file without changing it does not.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import graphlib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import LooksError
from .manifest import NodeKind, NodeRecord
from .recipe import AvatarSpec, CreditPrices, FileSpec, LookSpec, Recipe

ActionKind = Literal[
    "create", "adopt", "move", "reuse", "update", "replace", "retry", "keep", "orphan"
]
# `adopt` (a look found unrecorded by `plan --refresh`), `move` (a record re-keyed by the
# recipe's `moved`) and `reuse` (the run cache) are counted only when there are some.
ACTION_KINDS: tuple[ActionKind, ...] = ("create", "update", "replace", "retry", "keep", "orphan")
# The words a person and a program read (text, JSON, graph): an action, except that creating
# an existing look (an `existing` base, an adopted look) only checks that it is there.
Verb = Literal[
    "create", "check", "adopt", "move", "reuse", "update", "replace", "retry", "keep", "orphan"
]
VERBS: tuple[Verb, ...] = (
    "create",
    "check",
    "adopt",
    "move",
    "reuse",
    "update",
    "replace",
    "retry",
    "keep",
    "orphan",
)
REF_KEYS = ("$look", "$group", "$asset")


class PlanError(LooksError):
    """The graph cannot be planned (a dependency cycle, an --only that matches nothing)."""


@dataclass(frozen=True)
class PlanNode:
    """One thing the API is asked to make, and what it needs first."""

    address: str
    kind: NodeKind
    template: Mapping[str, Any]
    depends_on: tuple[str, ...]
    fingerprint: str
    name: str | None = None
    avatar: str | None = None
    file: FileSpec | None = None  # the local file of an upload node

    @property
    def stored_request(self) -> dict[str, Any]:
        """The template as recorded in the manifest: inline data replaced by its digest."""
        redacted: dict[str, Any] = substitute(self.template, redact=True)
        return redacted


@dataclass(frozen=True)
class PlanAction:
    """What happens to one address in this run, and why."""

    address: str
    action: ActionKind
    reason: str
    kind: NodeKind
    depends_on: tuple[str, ...] = ()
    node: PlanNode | None = None  # None for orphans
    record: NodeRecord | None = None
    moved_from: str | None = None  # the address whose record a `moved` entry re-keys here

    @property
    def verb(self) -> Verb:
        """The word shown for this action, the same in text and JSON."""
        if self.action == "create" and self.node is not None and _is_existing(self.node):
            return "check"
        return self.action

    @property
    def file(self) -> str | None:
        """An upload's file, as the recipe names it (relative to the recipe)."""
        if self.kind != "upload":
            return None
        if self.node is not None and self.node.file is not None:
            return self.node.file.value
        return self.record.name if self.record is not None else None

    @property
    def changes(self) -> tuple[FieldChange, ...]:
        """What differs between the recorded request and the recipe's, field by field."""
        if self.node is None or self.record is None:
            return ()
        if self.record.fingerprint != self.node.fingerprint:
            return _changed_fields(self.record.request or {}, self.node.stored_request)
        if self.action == "update":
            return (FieldChange("name", self.record.name, self.node.name),)
        return ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "action": self.verb,
            "kind": self.kind,
            "reason": self.reason,
            "depends_on": list(self.depends_on),
            "file": self.file,
            "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in self.changes],
        }
        if self.moved_from is not None:
            out["moved_from"] = self.moved_from
        return out


@dataclass(frozen=True)
class FieldChange:
    """One field of a node's request, as recorded (old) and as the recipe has it now (new)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Plan:
    """Actions in dependency order (every action after those it depends on)."""

    actions: tuple[PlanAction, ...]
    nodes: Mapping[str, PlanNode] = field(default_factory=dict)
    prices: CreditPrices = field(default_factory=CreditPrices)  # the recipe's, for engine.cost
    notes: tuple[str, ...] = ()  # one per local file not on disk, for stderr

    def summary(self) -> dict[str, int]:
        """How many actions of each verb."""
        counts: dict[str, int] = dict.fromkeys(VERBS, 0)
        for action in self.actions:
            counts[action.verb] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        """Whether apply would do anything: orphans are only reported, never acted on."""
        return any(a.action not in ("keep", "orphan") for a in self.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "actions": [a.to_json() for a in self.actions],
            "summary": self.summary(),
        }


def build_graph(
    recipe: Recipe, records: Mapping[str, NodeRecord] | None = None
) -> dict[str, PlanNode]:
    """Every node of the recipe, in dependency order, with its fingerprint.

    A local file not on disk (a recipe loaded with optional media) takes the content of
    its last completed upload in `records`: unchanged, it needs no bytes. Never uploaded,
    it is addressed by its path, and only its upload fails in apply.
    """
    drafts: dict[str, _Draft] = {}
    uploaded = _uploaded_digests(records or {})
    for avatar in recipe.avatars:
        _add_avatar(drafts, avatar, uploaded)
    return _fingerprint(drafts)


def _uploaded_digests(records: Mapping[str, NodeRecord]) -> dict[str, str]:
    """Recipe path -> sha256 of its most recent completed upload."""
    latest: dict[str, NodeRecord] = {}
    for record in records.values():
        digest = (record.request or {}).get("sha256")
        if record.kind != "upload" or record.status != "completed" or not record.name:
            continue
        if not isinstance(digest, str) or record.asset_id is None:
            continue
        known = latest.get(record.name)
        if known is None or (record.submitted_at or 0) >= (known.submitted_at or 0):
            latest[record.name] = record
    return {name: str((r.request or {})["sha256"]) for name, r in latest.items()}


def media_notes(nodes: Mapping[str, PlanNode]) -> tuple[str, ...]:
    """One line per local file that is not on disk: what plan and apply make of it."""
    notes = []
    for node in nodes.values():
        file = node.file
        if node.kind != "upload" or file is None or file.local_path is not None:
            continue
        if file.digest is not None:
            notes.append(f"{file.value}: not on disk; unchanged since its recorded upload")
        else:
            notes.append(f"{file.value}: not on disk and never uploaded; apply will fail for it")
    return tuple(notes)


def build_plan(
    recipe: Recipe,
    records: Mapping[str, NodeRecord],
    only: Sequence[str] = (),
    adoptable: Mapping[str, str] = {},
) -> Plan:
    """Diff the recipe's graph against the manifest's records.

    `adoptable`: address -> id of a look found unrecorded in the account (plan --refresh).
    """
    nodes = build_graph(recipe, records)
    records, moved = _rekeyed(recipe, nodes, records)
    selected = select(nodes, only, records) if only else set(nodes)
    actions: dict[str, PlanAction] = {}
    for address, node in nodes.items():
        if address in selected:
            action = _diff(node, records.get(address), actions, adoptable.get(address))
            actions[address] = _as_move(action, moved[address]) if address in moved else action
    for address in sorted(records.keys() - nodes.keys()):
        if only and not _matches(address, only):
            continue
        record = records[address]
        actions[address] = PlanAction(
            address, "orphan", "no longer in the recipe", record.kind, record=record
        )
    return Plan(
        actions=tuple(actions.values()),
        nodes=nodes,
        prices=recipe.credits,
        notes=media_notes(nodes),
    )


def select(
    nodes: Mapping[str, PlanNode], patterns: Sequence[str], recorded: Iterable[str] = ()
) -> set[str]:
    """The nodes matching any address or glob, with everything they depend on.

    A pattern may also match only recorded addresses (orphans); one matching nothing at
    all is an error.
    """
    chosen = {a for a in nodes if _matches(a, patterns)}
    known = [*nodes, *recorded]
    unmatched = [p for p in patterns if not any(_matches(a, [p]) for a in known)]
    if unmatched:
        raise PlanError(f"--only {unmatched[0]!r} matches no address in the recipe or manifest")
    stack = list(chosen)
    while stack:
        for dep in nodes[stack.pop()].depends_on:
            if dep not in chosen:
                chosen.add(dep)
                stack.append(dep)
    return chosen


def _matches(address: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(address, p) for p in patterns)


# -- graph --------------------------------------------------------------------------


@dataclass
class _Draft:
    kind: NodeKind
    template: dict[str, Any]
    name: str | None = None
    avatar: str | None = None
    file: FileSpec | None = None


def upload_address(file: FileSpec) -> str:
    """Uploads are addressed by content, so one file used twice uploads once (a file
    neither on disk nor ever uploaded, by its path)."""
    return f"upload:{file.digest[:16]}" if file.digest is not None else f"upload:{file.value}"


def consent_address(avatar: str) -> str:
    return f"consent:{avatar}"


def _file_ref(
    drafts: dict[str, _Draft], file: FileSpec, uploaded: Mapping[str, str]
) -> dict[str, Any]:
    if file.kind == "path":
        if file.digest is None and file.value in uploaded:
            file = dataclasses.replace(file, digest=uploaded[file.value])
        address = upload_address(file)
        known = drafts.get(address)
        if known is None or (known.file and not known.file.local_path and file.local_path):
            # Content only: the media type is guessed from the host's MIME table, which
            # must not turn into a paid regeneration on another machine.
            template: dict[str, Any] = {"sha256": file.digest}
            if file.digest is None:
                template["path"] = file.value
            drafts[address] = _Draft("upload", template, name=file.value, file=file)
        return {"$asset": address}
    if file.kind == "base64":
        return {"type": "base64", "media_type": file.media_type, "data": file.value}
    return {"type": file.kind, file.kind: file.value}


def _add_avatar(drafts: dict[str, _Draft], avatar: AvatarSpec, uploaded: Mapping[str, str]) -> None:
    base = avatar.base
    template: dict[str, Any] = {"type": base.type}
    if base.type == "existing":
        template["look_id"] = base.look_id
    else:
        if base.file is not None:
            template["file"] = _file_ref(drafts, base.file, uploaded)
        if base.prompt is not None:
            template["prompt"] = base.prompt
        if base.reference_images:
            template["reference_images"] = [
                _file_ref(drafts, f, uploaded) for f in base.reference_images
            ]
        if avatar.group_id:
            template["avatar_group_id"] = avatar.group_id
    drafts[avatar.address] = _Draft("base", template, name=avatar.name, avatar=avatar.key)
    if base.type == "digital_twin":
        consent: dict[str, Any] = {"group": {"$group": avatar.address}}
        if avatar.consent_reroute_url:
            consent["reroute_url"] = avatar.consent_reroute_url
        drafts[consent_address(avatar.key)] = _Draft("consent", consent, avatar=avatar.key)
    for look in avatar.looks:
        _add_look(drafts, avatar, look, uploaded)


def _add_look(
    drafts: dict[str, _Draft], avatar: AvatarSpec, look: LookSpec, uploaded: Mapping[str, str]
) -> None:
    if look.look_id is not None:
        # An adopted look: like an existing base, checked rather than created.
        adopted = {"type": "existing", "look_id": look.look_id}
        drafts[look.address] = _Draft("look", adopted, name=look.name, avatar=avatar.key)
        return
    source = avatar.address if look.source == "base" else f"{avatar.key}/{look.source}"
    template: dict[str, Any] = {
        "type": "prompt",
        "prompt": look.prompt,
        "avatar_id": {"$look": source},
    }
    if look.reference_images:
        template["reference_images"] = [
            _file_ref(drafts, f, uploaded) for f in look.reference_images
        ]
    drafts[look.address] = _Draft("look", template, name=look.name, avatar=avatar.key)


def _refs(value: Any) -> set[str]:
    """The addresses a template refers to (a loop, not nested generators: 100,000s of nodes)."""
    found: set[str] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key in REF_KEYS:
                if key in item:
                    found.add(item[key])
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def substitute(
    value: Any, resolve: Callable[[str, str], Any] | None = None, *, redact: bool = False
) -> Any:
    """A template's copy with each `{"$look"|"$group"|"$asset": ADDR}` replaced by
    resolve(kind, ADDR) (kept as is without resolve) and, with `redact`, inline base64 data
    by its digest: the form a manifest may hold."""
    if isinstance(value, dict):
        if resolve is not None:
            for key in REF_KEYS:
                if key in value:
                    return resolve(key, value[key])
        if redact and value.get("type") == "base64" and "data" in value:
            data = str(value["data"]).encode()
            return {**value, "data": "sha256:" + hashlib.sha256(data).hexdigest()}
        # Plain values are kept without a call: most of a template is text.
        return {
            k: substitute(v, resolve, redact=redact) if isinstance(v, (dict, list)) else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            substitute(v, resolve, redact=redact) if isinstance(v, (dict, list)) else v
            for v in value
        ]
    return value


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    # One encoder, not json.dumps: its setup per call was a tenth of a large plan.
    return _CANONICAL.encode(value)


def dependency_order(graph: Mapping[str, set[str]]) -> list[str]:
    """graphlib's static_order, node for node, in a third of its time (a large plan spent a
    quarter of its time there): Kahn's algorithm by levels, over plain dicts."""
    waiting: dict[str, int] = {}  # node -> dependencies not yet ordered; graphlib's order
    successors: dict[str, list[str]] = {}
    for node, dependencies in graph.items():
        waiting[node] = waiting.get(node, 0) + len(dependencies)
        successors.setdefault(node, [])
        for dependency in dependencies:
            waiting.setdefault(dependency, 0)
            successors.setdefault(dependency, []).append(node)
    ready = [node for node, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        order.extend(ready)
        released = []
        for node in ready:
            for successor in successors[node]:
                waiting[successor] -= 1
                if waiting[successor] == 0:
                    released.append(successor)
        ready = released
    if len(order) < len(waiting):
        try:  # graphlib names the cycle
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as e:
            raise PlanError(f"dependency cycle: {' -> '.join(reversed(e.args[1]))}") from None
    return order


def _fingerprint(drafts: dict[str, _Draft]) -> dict[str, PlanNode]:
    graph = {address: _refs(d.template) for address, d in drafts.items()}
    order = dependency_order(graph)
    nodes: dict[str, PlanNode] = {}
    for address in order:
        draft = drafts[address]
        # The document a fingerprint hashes: references by the upstream fingerprints.
        resolved = substitute(
            draft.template, lambda key, ref: {key: nodes[ref].fingerprint}, redact=True
        )
        digest = hashlib.sha256(canonical_json([draft.kind, resolved]).encode()).hexdigest()
        nodes[address] = PlanNode(
            address=address,
            kind=draft.kind,
            template=draft.template,
            depends_on=tuple(sorted(graph[address])),
            fingerprint=digest,
            name=draft.name,
            avatar=draft.avatar,
            file=draft.file,
        )
    return nodes


# -- moved --------------------------------------------------------------------------


def pending_moves(
    recipe: Recipe, nodes: Mapping[str, PlanNode], records: Mapping[str, NodeRecord]
) -> dict[str, str]:
    """target -> source of every `moved` entry a run has yet to apply to these records."""
    return _rekeyed(recipe, nodes, records)[1]


def _rekeyed(
    recipe: Recipe, nodes: Mapping[str, PlanNode], records: Mapping[str, NodeRecord]
) -> tuple[Mapping[str, NodeRecord], dict[str, str]]:
    """The records as the recipe's `moved` entries re-key them, and target -> source.

    An entry whose source has no record is ignored (done already, or never made), so it
    may stay in the recipe; one onto an address already recorded would lose a look.
    """
    if not recipe.moves:
        return records, {}
    out = dict(records)
    moved: dict[str, str] = {}
    avatars = sorted({n.avatar for n in nodes.values() if n.kind == "base" and n.avatar})
    for move in recipe.moves:
        source_avatar, source_key = move.source.split("/", 1)
        target_key = move.target.split("/", 1)[1]
        pairs = (
            [(f"{a}/{source_key}", f"{a}/{target_key}") for a in avatars]
            if source_avatar == "*"
            else [(move.source, move.target)]
        )
        for source, target in pairs:
            old = out.get(source)
            if old is None or target not in nodes:
                continue
            there = out.get(target)
            # The same look on both sides: a move the last run recorded half of.
            if there is not None and (there.look_id is None or there.look_id != old.look_id):
                raise PlanError(
                    f"{recipe.path}:{move.line}: moved: {target} already has a record, so"
                    f" moving {source} onto it would lose a look; remove this entry"
                )
            out[target] = old.evolve(address=target)
            del out[source]
            moved[target] = moved.pop(source, source)
    return out, moved


def _as_move(action: PlanAction, source: str) -> PlanAction:
    """The action on a moved record: `move` unless its request changed as well."""
    if action.action in ("keep", "update"):
        extra = f"; {action.reason}" if action.action == "update" else ""
        reason = f"from {source}{extra}"
        return dataclasses.replace(action, action="move", reason=reason, moved_from=source)
    reason = f"moved from {source}; {action.reason}"
    return dataclasses.replace(action, reason=reason, moved_from=source)


# -- diff ---------------------------------------------------------------------------


_INTERRUPTED = {"pending", "submitted", "processing"}


def _diff(
    node: PlanNode,
    record: NodeRecord | None,
    upstream: Mapping[str, PlanAction],
    unrecorded: str | None = None,
) -> PlanAction:
    def act(action: ActionKind, reason: str) -> PlanAction:
        return PlanAction(node.address, action, reason, node.kind, node.depends_on, node, record)

    if unrecorded is not None and (record is None or record.look_id is None):
        return act("adopt", f"look {unrecorded} exists, unrecorded")
    if record is None:
        if _is_existing(node):
            return act("create", f"existing look {node.template.get('look_id')}")
        return act("create", "new")
    if record.fingerprint != node.fingerprint:
        reason = _change_reason(node, record, upstream)
        reusable = record.reusable_look(node.fingerprint)
        if reusable is not None and not _is_existing(node):
            return act("reuse", f"{reason}; look {reusable} was made from this before")
        made_something = record.look_id is not None and not _is_existing(node)
        return act("replace" if made_something else "create", reason)
    if record.status == "completed":
        if node.kind in ("base", "look") and record.name != node.name and not _is_existing(node):
            return act("update", f"name changed: {record.name!r} -> {node.name!r}")
        return act("keep", "unchanged")
    if record.status == "failed":
        code = record.error.code if record.error else "unknown"
        return act("retry", f"failed: {code}")
    if record.status == "blocked":
        message = record.error.message if record.error else "upstream not ready"
        return act("retry", f"blocked: {message}")
    if record.status == "missing":
        return act("retry", "missing: deleted or failed remotely")
    if record.status == "awaiting_consent":
        return act("retry", "awaiting consent approval when the last run stopped")
    return act("retry", f"unfinished: {record.status} when the last run stopped")


def _is_existing(node: PlanNode) -> bool:
    """An existing base or an adopted look: made outside this tool, never renamed or replaced."""
    return node.kind in ("base", "look") and node.template.get("type") == "existing"


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    keys = sorted(old.keys() | new.keys())
    return tuple(FieldChange(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k))


def _change_reason(node: PlanNode, record: NodeRecord, upstream: Mapping[str, PlanAction]) -> str:
    changed = _changed_fields(record.request or {}, node.stored_request)
    if changed:
        return ", ".join(f"{c.field.replace('_', ' ')} changed" for c in changed)
    words = {"replace": "replaced", "create": "changed", "reuse": "reused"}
    moved = [
        f"upstream {u} {words[upstream[u].action]}"
        for u in node.depends_on
        if u in upstream and upstream[u].action in words
    ]
    return ", ".join(moved) or "upstream changed"

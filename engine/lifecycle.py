"""The look lifecycle against the API: import, refresh, prune, consent.

The async functions here talk to the API and record what they learn through a
ManifestStore (journaled before acting, so a crash loses nothing); the pure ones decide
names and what to prune. Opening manifests is engine/api.py's business, recipe text
engine/recipe_edit.py's, printing and prompting the commands' (engine/commands/).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from . import records as transitions
from .adoption import adoption_group, shared_names, unrecorded_looks
from .client import GroupInfo, HeyGenClient, LookInfo
from .errors import ApiError, LooksError
from .manifest import ErrorInfo, ManifestStore, NodeRecord
from .ownership import recorded_ids
from .plan import PlanNode
from .records import idempotency_key

CONCURRENCY = 8  # listings or deletions in flight at once

_T = TypeVar("_T")


async def _bounded(jobs: Iterable[Awaitable[_T]], limit: int = CONCURRENCY) -> list[_T]:
    """Await every job, at most `limit` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[_T]) -> _T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def is_adopted(record: NodeRecord) -> bool:
    """A record of a look made outside this tool (an `existing` base or an adopted look)."""
    return (record.request or {}).get("type") == "existing"


# -- import ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteGroup:
    """An avatar group and its looks, in the order the API lists them (creation order)."""

    group: GroupInfo
    looks: tuple[LookInfo, ...]


async def fetch_groups(client: HeyGenClient, group_ids: Sequence[str]) -> list[RemoteGroup]:
    """GET each group and list its looks (paginated); an unknown group is an ApiError."""

    async def one(group_id: str) -> RemoteGroup:
        group = await client.get_group(group_id)
        looks = await client.list_looks(group_id=group_id)
        return RemoteGroup(group, tuple(looks))

    return await _bounded(one(g) for g in group_ids)


@dataclass(frozen=True)
class AdoptedLook:
    key: str
    look: LookInfo


@dataclass(frozen=True)
class AdoptedAvatar:
    """What one group becomes in a recipe: an `existing` base and adopted looks."""

    key: str
    name: str
    group: GroupInfo
    base: LookInfo
    looks: tuple[AdoptedLook, ...]
    skipped: tuple[LookInfo, ...]  # failed looks: nothing can be built on them

    def recipe_entry(self) -> dict[str, object]:
        """The avatar as recipe data (plain dicts, in the order they are written)."""
        looks: dict[str, object] = {}
        for adopted in self.looks:
            entry: dict[str, object] = {"look_id": adopted.look.id}
            # A name with {braces} would read as a placeholder; the default name then serves.
            if adopted.look.name and "{" not in adopted.look.name:
                entry["name"] = adopted.look.name
            looks[adopted.key] = entry
        avatar: dict[str, object] = {
            "name": self.name,
            "base": {"type": "existing", "look_id": self.base.id},
        }
        if looks:
            avatar["looks"] = looks
        return avatar


def key_slug(text: str, fallback: str) -> str:
    """A recipe key from a display name: `Sarah — Navy Office` -> `sarah-navy-office`."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or fallback


def _unique(wanted: str, taken: set[str]) -> str:
    key, n = wanted, 2
    while key in taken:
        key, n = f"{wanted}-{n}", n + 1
    taken.add(key)
    return key


def look_key(name: str, avatar_slug: str) -> str:
    """The look's slugified name without the avatar's name in front of it."""
    slug = key_slug(name, "look")
    if avatar_slug and slug.startswith(avatar_slug + "-"):
        slug = slug[len(avatar_slug) + 1 :]
    elif slug == avatar_slug:
        slug = "look"
    return slug


def adopt(groups: Sequence[RemoteGroup]) -> list[AdoptedAvatar]:
    """Keys and base for each group; keys are de-duplicated within this import.

    The base is the group's first look in creation order that has not failed; failed
    looks are skipped. A group with nothing usable is an error.
    """
    avatar_keys: set[str] = set()
    adopted: list[AdoptedAvatar] = []
    for remote in groups:
        group = remote.group
        usable = [look for look in remote.looks if look.status != "failed"]
        if not usable:
            what = "no looks" if not remote.looks else "only failed looks"
            raise LooksError(f"avatar group {group.id} has {what}: nothing to import")
        name = group.name or usable[0].name or group.id
        key = _unique(key_slug(name, "avatar"), avatar_keys)
        prefix = key_slug(name, "")
        look_keys = {"base"}  # `from: base` means the base, so no look may be called that
        looks = tuple(
            AdoptedLook(_unique(look_key(look.name, prefix), look_keys), look)
            for look in usable[1:]
        )
        skipped = tuple(look for look in remote.looks if look.status == "failed")
        adopted.append(AdoptedAvatar(key, name, group, usable[0], looks, skipped))
    return adopted


def adopted_record(node: PlanNode, look: LookInfo) -> NodeRecord:
    """The manifest record of an adopted node, as a checking apply would have left it."""
    completed = look.status == "completed"
    return NodeRecord(
        address=node.address,
        kind=node.kind,
        fingerprint=node.fingerprint,
        status="completed" if completed else "pending",  # not finished: the plan checks it
        name=node.name,
        request=node.stored_request,
        look_id=look.id,
        group_id=look.group_id,
        preview_image_url=look.preview_image_url if completed else None,
    )


# -- refresh --------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """A recorded look the account no longer has as recorded."""

    address: str
    status: Literal["missing", "failed"]
    reason: str

    def __str__(self) -> str:
        return f"{self.address}: {self.status} ({self.reason})"


def _watched(record: NodeRecord) -> bool:
    return (
        record.kind in ("base", "look")
        and record.look_id is not None
        and record.status not in ("failed", "missing")
    )


async def refresh(client: HeyGenClient, store: ManifestStore) -> list[Drift]:
    """Compare the manifest with the account and record the drift found.

    One paginated listing per group the manifest knows, not one request per look: a look
    no longer listed becomes `missing` (its id cleared, so nothing tries to delete it), a
    look failed remotely becomes `failed` with the API's error. The next plan retries both.
    """
    records = [r for r in store.nodes.values() if _watched(r)]
    groups = sorted({r.group_id for r in records if r.group_id})
    listings = await _bounded(client.list_looks(group_id=g) for g in groups)
    remote: dict[str, LookInfo | None] = {look.id: look for listing in listings for look in listing}
    for record in records:
        if record.group_id is None:  # never happens for what apply records; be thorough
            assert record.look_id is not None
            remote[record.look_id] = await _get_or_none(client, record.look_id)
    drift: list[Drift] = []
    for record in sorted(records, key=lambda r: r.address):
        assert record.look_id is not None
        look = remote.get(record.look_id)
        if look is None:
            reason = "deleted remotely"
            store.record(transitions.gone(record, reason))
            drift.append(Drift(record.address, "missing", reason))
        elif look.status == "failed":
            code = look.error.code if look.error else "generation_failed"
            message = look.error.message if look.error else "failed remotely"
            store.record(transitions.failed(record, ErrorInfo(code, message)))
            drift.append(Drift(record.address, "failed", f"{code}: {message}"))
    return drift


async def find_unrecorded(
    client: HeyGenClient,
    store: ManifestStore,
    nodes: Iterable[PlanNode],
    elsewhere: Collection[str] = (),
) -> dict[str, str]:
    """Looks of the recipe that exist but that no record holds: address -> look id.

    A record lost (one side of a merge kept, an older manifest restored, a journal
    deleted) leaves the look in its avatar's group under the name this tool gave it. The
    rules are the executor's (adoption_group, unrecorded_looks), which adopts such a look
    rather than creating it again; one listing per group. Looks `elsewhere` (recorded by
    other manifests) are never candidates.
    """
    nodes = list(nodes)
    shared = shared_names(nodes)
    started = time.time()
    wanted: dict[str, tuple[str, PlanNode]] = {}
    for node in nodes:
        group = adoption_group(node, store.nodes, started)
        if group is not None and (node.avatar, node.name) not in shared:
            wanted[node.address] = (group, node)
    groups = sorted({group for group, _ in wanted.values()})
    looks = await _bounded(client.list_looks(group_id=g) for g in groups)
    listings = dict(zip(groups, looks, strict=True))
    taken: set[str | None] = {*recorded_ids(store.nodes.values()), *elsewhere}
    found: dict[str, str] = {}
    for address, (group, node) in sorted(wanted.items()):
        candidates = unrecorded_looks(listings[group], group, node.name, taken)
        if candidates:
            found[address] = candidates[-1].id  # the newest, as apply takes it
            taken.update(look.id for look in candidates)
    return found


async def _get_or_none(client: HeyGenClient, look_id: str) -> LookInfo | None:
    try:
        return await client.get_look(look_id)
    except ApiError as e:
        if e.status == 404:
            return None
        raise


# -- prune ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneItem:
    """One thing prune does: delete a look (and record it), or only forget a record."""

    address: str
    reason: Literal["superseded", "orphaned"]
    look_id: str | None  # the look to delete; None when there is nothing to delete
    delete: bool  # False: the look stays (not made by this tool), only the record goes
    note: str = ""

    def describe(self) -> str:
        verb = "delete" if self.delete else "forget"
        what = self.look_id or ("(found by name)" if self.delete else "(no look)")
        note = f"; {self.note}" if self.note else ""
        return f"{verb:<6} {what}  {self.address} ({self.reason}{note})"


def _lost_answer(record: NodeRecord) -> bool:
    """A create was sent for the record (its key journaled) but no answer named the look."""
    return record.status == "submitted" and record.look_id is None and _made_here(record)


def _made_here(record: NodeRecord) -> bool:
    """Whether this tool created the record's look: it sent a creation for it."""
    made = record.idempotency_key is not None or record.attempts >= 1
    return made and record.kind in ("base", "look") and not is_adopted(record)


def protected_ids(records: Iterable[NodeRecord], nodes: Iterable[PlanNode]) -> set[str]:
    """Look ids prune never deletes: adopted ones, and every look a record still uses."""
    ids = {str(n.template["look_id"]) for n in nodes if n.template.get("type") == "existing"}
    ids |= {r.look_id for r in records if r.look_id is not None}
    return ids


def prune_items(
    records: Mapping[str, NodeRecord],
    addresses: Collection[str],
    protected: Collection[str],
    elsewhere: Collection[str] = (),
) -> list[PruneItem]:
    """What to prune: every superseded look, and the looks of records not in the recipe.

    `addresses` are the recipe's graph nodes; `protected` ids are only dropped from the
    manifest, never deleted (see protected_ids); neither is an orphan's look that is used
    `elsewhere` (by another manifest's record, or as an existing look by any recipe).
    """
    items: list[PruneItem] = []
    for address in sorted(records):
        record = records[address]
        for old in record.superseded:
            keep = old in protected
            note = "adopted or still in use: kept" if keep else ""
            items.append(PruneItem(address, "superseded", old, not keep, note))
        if address in addresses:
            continue
        look_id = record.look_id
        if look_id is not None and _made_here(record):
            others = {r.look_id for a, r in records.items() if a != address}
            keep = look_id in others or look_id in _adopted_ids(records) or look_id in elsewhere
            note = "still in use: kept" if keep else ""
            items.append(PruneItem(address, "orphaned", look_id, not keep, note))
        elif look_id is not None:
            items.append(PruneItem(address, "orphaned", look_id, False, "not made by looks: kept"))
        elif _lost_answer(record):
            # Forgetting the key would leave what the send made (and was paid for) unknown.
            note = "its create's answer was lost: the look it made, found by name"
            items.append(PruneItem(address, "orphaned", None, True, note))
        else:
            items.append(PruneItem(address, "orphaned", None, False, f"{record.kind} record"))
    return items


def prune_selection(
    manifests: Sequence[Mapping[str, NodeRecord]],
    graphs: Sequence[Mapping[str, PlanNode]],
    beside: Collection[str] = (),
    moving: Sequence[Collection[str]] = (),
) -> list[list[PruneItem]]:
    """Per manifest (with its recipe's graph), what prune deletes or forgets.

    Pruned together, the manifests protect each other's looks (a shared group): a look
    one of them records, a look any recipe names as `existing`, and the looks `beside`
    (recorded by other manifests in the same directories) are never deleted. `moving`:
    per manifest, addresses a pending `moved` entry re-keys into the recipe (not orphans:
    their looks are to be kept, not paid for again).
    """
    moving = moving or [()] * len(manifests)
    nodes = [n for g in graphs for n in g.values()]
    protected = protected_ids((r for m in manifests for r in m.values()), nodes) | set(beside)
    existing = protected_ids((), nodes) | set(beside)

    def used_outside(mine: Mapping[str, NodeRecord]) -> set[str]:
        others = (r.look_id for m in manifests if m is not mine for r in m.values())
        return existing | {look_id for look_id in others if look_id}

    return [
        prune_items(records, graph.keys() | set(moved), protected, used_outside(records))
        for records, graph, moved in zip(manifests, graphs, moving, strict=True)
    ]


def _adopted_ids(records: Mapping[str, NodeRecord]) -> set[str]:
    return {r.look_id for r in records.values() if r.look_id and is_adopted(r)}


@dataclass(frozen=True)
class PruneOutcome:
    item: PruneItem
    error: LooksError | None = None  # the deletion (or the search) failed: the record was kept
    already_gone: bool = False  # 404 on delete: recorded as pruned

    def summary(self) -> str:
        """What happened, without the address: `deleted look_1 (superseded)`."""
        if self.error is not None:
            return f"could not delete {self.item.look_id}: {self.error}"
        if not self.item.delete:
            return f"forgot the record ({self.item.reason}; {self.item.note})"
        gone = ", already gone" if self.already_gone else ""
        return f"deleted {self.item.look_id} ({self.item.reason}{gone})"

    def describe(self) -> str:
        return f"{self.item.address}: {self.summary()}"


async def prune(
    client: HeyGenClient,
    store: ManifestStore,
    items: Sequence[PruneItem],
    on_outcome: Callable[[PruneOutcome], None] | None = None,
    recorded: Collection[str] = (),
) -> list[PruneOutcome]:
    """Carry out prune items, recording each as soon as it is done.

    A deleted superseded id leaves the record's `superseded`; an orphan's record is
    forgotten once its look is deleted (or when there is nothing to delete). A 404 means
    the look is already gone: pruned all the same. An orphan whose create's answer was
    lost has its look found by name first (never one of the `recorded` ids, which other
    manifests or recipes hold). Items of one address run in order (superseded first),
    addresses concurrently.
    """
    by_address: dict[str, list[PruneItem]] = {}
    for item in items:
        by_address.setdefault(item.address, []).append(item)

    async def one_address(group: list[PruneItem]) -> list[PruneOutcome]:
        outcomes = []
        for item in group:
            outcome = await _prune_one(client, store, item, recorded)
            if on_outcome is not None:
                on_outcome(outcome)
            outcomes.append(outcome)
            if outcome.error is not None:
                break  # keep the orphan's record while a look of it could not be deleted
        return outcomes

    results = await _bounded(one_address(g) for g in by_address.values())
    return [o for outcomes in results for o in outcomes]


async def find_made(
    client: HeyGenClient,
    name: str | None,
    sent_at: float | None,
    group: str | None,
    taken: Collection[str | None],
    list_group: Callable[[str], Awaitable[list[LookInfo]]] | None = None,
) -> LookInfo | None:
    """The look a send (at `sent_at`) whose answer was lost made, found by its name: in
    `group` (the existing group the create went into) or, for a new group, in the groups
    of that name created since it was sent, never in older ones (which may be avatars made
    by hand). Looks `taken` (recorded anywhere, superseded ones included) and failed looks are
    not it; of several, the newest (an older one is a look made before it).
    `list_group` lists a group's looks (default: a listing per call)."""
    if group is not None:
        groups = [group]
    else:
        since = (sent_at or 0.0) - 60  # clocks differ
        listed = await client.list_groups()
        groups = [g.id for g in listed if g.name == name and g.created_at >= since]
    for group_id in groups:
        if list_group is not None:
            listing = await list_group(group_id)
        else:
            listing = await client.list_looks(group_id=group_id)
        looks = unrecorded_looks(listing, group_id, name, taken)
        if looks:
            return looks[-1]
    return None


async def _resolved(
    client: HeyGenClient, store: ManifestStore, item: PruneItem, recorded: Collection[str]
) -> PruneItem:
    """The item naming the look a lost answer made, found as apply finds it (find_made).
    No such look: nothing to delete, the record only is forgotten."""
    record = store.nodes.get(item.address)
    if not item.delete or item.look_id is not None or record is None:
        return item
    taken = {*recorded, *recorded_ids(store.nodes.values())}
    group = _sent_into(record, store.nodes)
    made = await find_made(client, record.name, record.submitted_at, group, taken)
    if made is not None:
        return replace(item, look_id=made.id)
    note = "its create's answer was lost; no look of its name found"
    return replace(item, delete=False, note=note)


def _sent_into(record: NodeRecord, records: Mapping[str, NodeRecord]) -> str | None:
    """The existing group a create went into: journaled with its key (older manifests:
    the group of the look it was built on)."""
    if record.group_id is not None:
        return record.group_id
    built_on = (record.request or {}).get("avatar_id")
    upstream = records.get(built_on["$look"]) if isinstance(built_on, Mapping) else None
    return upstream.group_id if upstream is not None else None


async def _prune_one(
    client: HeyGenClient, store: ManifestStore, item: PruneItem, recorded: Collection[str]
) -> PruneOutcome:
    try:
        item = await _resolved(client, store, item, recorded)
    except LooksError as e:
        return PruneOutcome(item, error=e)  # the record and its key are kept for next time
    gone = False
    if item.delete:
        assert item.look_id is not None
        try:
            await client.delete_look(item.look_id)
        except ApiError as e:
            if e.status != 404:
                return PruneOutcome(item, error=e)
            gone = True
    record = store.nodes.get(item.address)
    if record is not None:
        if item.reason == "superseded":
            store.record(transitions.pruned(record, item.look_id))
        else:
            store.forget(item.address)
    return PruneOutcome(item, already_gone=gone)


# -- consent --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentState:
    """A digital twin's consent, as the API and the manifest know it."""

    avatar: str
    status: str | None  # the group's consent_status; None when the twin does not exist yet
    url: str | None = None
    started: bool = False  # the flow was started by this call
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return f"{self.avatar}: {self.note}"
        started = ", consent flow started" if self.started else ""
        url = f": {self.url}" if self.url else ""
        return f"{self.avatar}: {self.status}{started}{url}"


async def consent(
    client: HeyGenClient, store: ManifestStore, avatar: str, node: PlanNode
) -> ConsentState:
    """The twin's consent status and URL; start its consent flow if it never was.

    `node` is the plan's consent node (`consent:<avatar>`). The flow is started as the
    executor starts it: an idempotency key derived from the manifest's lineage, the
    address, fingerprint and attempt, journaled before the request; the record it leaves
    is the one apply would have left, so the next plan keeps it.
    """
    base = store.nodes.get(avatar)
    if base is None or base.group_id is None:
        return ConsentState(avatar, None, note="not created yet (run looks apply)")
    try:
        group = await client.get_group(base.group_id)
    except ApiError as e:
        if e.status != 404:
            raise
        return ConsentState(
            avatar, None, note=f"group {base.group_id} not found (deleted remotely?)"
        )
    record = store.nodes.get(node.address)
    if record is not None and record.status == "completed" and record.consent_url:
        return ConsentState(avatar, group.consent_status, record.consent_url)
    if group.consent_status is None:
        return ConsentState(avatar, None, note=f"group {group.id} needs no consent")
    if group.consent_status == "approved":
        return ConsentState(avatar, "approved")
    record = _consent_record(store, node, record, base.group_id)
    store.record(record)
    assert record.idempotency_key is not None
    reroute = node.template.get("reroute_url")
    answer, url = await client.start_consent(
        base.group_id,
        reroute_url=str(reroute) if reroute else None,
        idempotency_key=record.idempotency_key,
    )
    store.record(transitions.consent_started(record, url))
    return ConsentState(avatar, answer.consent_status or group.consent_status, url, started=True)


def _consent_record(
    store: ManifestStore, node: PlanNode, old: NodeRecord | None, group_id: str
) -> NodeRecord:
    """The record to journal before POST …/consent; a journaled unanswered send replays."""
    if (
        old is not None
        and old.status == "submitted"
        and old.idempotency_key
        and old.fingerprint == node.fingerprint
    ):
        return old
    record = transitions.in_group(transitions.current(node, old), group_id)
    attempt = record.attempts + 1
    key = idempotency_key(store.manifest.lineage, node.address, node.fingerprint, attempt)
    return transitions.submitted(record, key, time.time())

"""How a node's record changes as a run goes: (plan node, old record, event) -> new record.

Pure functions, no I/O: the executor decides *when* an event happened and journals what
these return. The states they keep apart:

- `submitted`: a create was sent (its idempotency key journaled) and not yet answered;
- `processing`: the server generates the look recorded in `look_id`;
- `awaiting_consent`: the look in `look_id` waits for its subject's consent;
- `failed`: the look in `look_id` (if any) ended without a usable result; a new attempt
  records it as superseded and never polls it again;
- `blocked`: an upstream did not complete, so nothing was sent in this run. A blocked
  record never carries a live look: a failed generation's id goes to `superseded`.

Manifests written before `awaiting_consent` existed used `blocked` for both a consent wait
(with the waiting look's id) and an upstream block (possibly with a failed look's stale
id); `legacy_blocked` tells the executor to ask the server which one it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from .client import LookInfo
from .manifest import ErrorInfo, NodeRecord, Status
from .plan import PlanNode


def idempotency_key(lineage: str, address: str, fingerprint: str, attempt: int) -> str:
    """Derived, not random: a resumed run recomputes the very key it journaled."""
    digest = hashlib.sha256(f"{lineage}|{address}|{fingerprint}|{attempt}".encode()).hexdigest()
    return f"looks:{lineage[:8]}:{digest[:40]}"


# Sent and not settled: a generation the next apply picks up rather than creates again.
IN_FLIGHT = ("submitted", "processing", "awaiting_consent")


def _superseding(record: NodeRecord) -> tuple[str, ...]:
    """The record's superseded ids plus its own look, which a new creation replaces."""
    adopted = (record.request or {}).get("type") == "existing"  # not made here: never pruned
    if record.look_id is None or adopted or record.look_id in record.superseded:
        return record.superseded
    return (*record.superseded, record.look_id)


def current(node: PlanNode, old: NodeRecord | None) -> NodeRecord:
    """The node's record brought to the node's fingerprint, name and request.

    The same fingerprint keeps what was made (ids, key, attempts); a new one starts
    afresh, the old look recorded as superseded (for prune) and the attempts counted on,
    so a new key can never replay an old creation.
    """
    fresh = NodeRecord(
        address=node.address,
        kind=node.kind,
        fingerprint=node.fingerprint,
        status="pending",
        name=node.name,
        request=node.stored_request,
    )
    if old is None:
        return fresh
    if old.fingerprint == node.fingerprint:
        return old.evolve(name=node.name, request=node.stored_request)
    superseded = _superseding(old)
    return fresh.evolve(
        superseded=superseded, attempts=old.attempts, reusable=_reusable(old, superseded)
    )


def _reusable(record: NodeRecord, superseded: Iterable[str]) -> dict[str, str]:
    """The run cache once record's look is superseded: each kept look by what made it."""
    kept = set(superseded)
    cache = {fp: look for fp, look in record.reusable.items() if look in kept}
    if record.status == "completed" and record.look_id in kept:
        cache[record.fingerprint] = record.look_id
    return cache


def reused(
    node: PlanNode, old: NodeRecord, look: LookInfo, also_superseded: Iterable[str] = ()
) -> NodeRecord:
    """The record once the run cache brings back `look`, made earlier from node's request:
    the current look (and what a lost send may have made) superseded in its place."""
    superseded = tuple(i for i in (*_superseding(old), *also_superseded) if i != look.id)
    superseded = tuple(dict.fromkeys(superseded))
    cache = _reusable(old, superseded)
    cache.pop(node.fingerprint, None)
    return old.evolve(
        fingerprint=node.fingerprint,
        request=node.stored_request,
        status="completed",
        look_id=look.id,
        group_id=look.group_id or old.group_id,
        preview_image_url=look.preview_image_url,
        error=None,
        superseded=superseded,
        reusable=cache,
        idempotency_key=None,
        submitted_at=None,
    )


def submitted(record: NodeRecord, key: str, now: float, group_id: str | None = None) -> NodeRecord:
    """A new attempt: journaled with its key before the request is sent.

    `group_id` is the existing group the create goes into, if any: where the look a lost
    answer made is to be found, even once its base has been replaced by another group.
    """
    return record.evolve(
        group_id=group_id or record.group_id,
        idempotency_key=key,
        attempts=record.attempts + 1,
        submitted_at=round(now, 3),
        status="submitted",
        error=None,
        look_id=None,
        preview_image_url=None,
        superseded=_superseding(record),  # a failed look stays recorded, for prune
    )


def created(record: NodeRecord, look_id: str, group_id: str) -> NodeRecord:
    """The create was answered: the look generates on the server."""
    return record.evolve(status="processing", look_id=look_id, group_id=group_id, error=None)


def awaiting_consent(record: NodeRecord) -> NodeRecord:
    """The look exists and waits for its subject's consent before it generates."""
    return record.evolve(status="awaiting_consent")


def blocked(node: PlanNode, old: NodeRecord | None, upstream: str) -> NodeRecord | None:
    """An upstream did not complete; None when the record is to stay as it is.

    A completed record stays completed. A record in flight keeps its state (its key may
    still replay a look, or its look still generates) and notes why this run passed it
    by, even under an older fingerprint: a lost answer's look is only found (and
    superseded) through its key and group. Anything else becomes `blocked`, never holding
    a look id as if it were live.
    """
    error = ErrorInfo("blocked", f"upstream {upstream} did not complete")
    if old is not None and old.status == "completed":
        return None
    if old is not None and in_flight(old):
        return old.evolve(error=error)
    record = current(node, old)
    return record.evolve(
        status="blocked",
        error=error,
        look_id=None,
        preview_image_url=None,
        superseded=_superseding(record),
    )


def is_live(record: NodeRecord) -> bool:
    """The recorded look is a generation in progress: watch it, do not create another."""
    return record.look_id is not None and record.status in ("processing", "awaiting_consent")


def legacy_blocked(record: NodeRecord) -> bool:
    """A `blocked` record with a look id, as older versions wrote: a consent wait or a
    failed look's stale id, which only the look's state on the server tells apart."""
    return record.status == "blocked" and record.look_id is not None


def in_flight(record: NodeRecord) -> bool:
    """Sent and not settled (maybe billed): counted apart from work never started."""
    if legacy_blocked(record):
        return record.error is None or record.error.code != "blocked"  # a consent wait
    return record.status in IN_FLIGHT


# -- the remaining transitions: every change a run makes to a record goes through here ----


def failed(record: NodeRecord, error: ErrorInfo | None, status: Status = "failed") -> NodeRecord:
    """The node ended without a usable result (`missing`: its look is gone); a new
    attempt sends a new key and records this look as superseded."""
    return record.evolve(status=status, error=error if error is not None else record.error)


def noted(record: NodeRecord, error: ErrorInfo) -> NodeRecord:
    """Why this run stopped at the node, its state kept: an answer that said nothing of
    the outcome keeps the key, so the next run replays the send instead of paying again."""
    return record.evolve(error=error)


def completed(
    record: NodeRecord, look_id: str, group_id: str | None, preview: str | None
) -> NodeRecord:
    """The look is made and usable."""
    return record.evolve(
        status="completed",
        look_id=look_id,
        group_id=group_id or record.group_id,
        preview_image_url=preview,
        error=None,
    )


def uploaded(record: NodeRecord, asset_id: str) -> NodeRecord:
    """The file is an asset the API can use."""
    return record.evolve(status="completed", asset_id=asset_id, upload=None, error=None)


def asset_lost(record: NodeRecord, message: str) -> NodeRecord:
    """The API cannot use the asset recorded: the next apply uploads the file again."""
    return record.evolve(status="failed", error=ErrorInfo("asset_not_available", message))


def in_group(record: NodeRecord, group_id: str | None) -> NodeRecord:
    """The record of a node whose avatar group is known (a consent's, an existing look's)."""
    return record.evolve(group_id=group_id)


def consent_started(record: NodeRecord, url: str) -> NodeRecord:
    """The twin's consent flow is started; the subject approves at `url`."""
    return record.evolve(status="completed", consent_url=url)


def renamed(record: NodeRecord, name: str | None) -> NodeRecord:
    return record.evolve(name=name, error=None)


def expired(record: NodeRecord) -> NodeRecord:
    """A send past its key's lifetime whose look was not found: sent again, with a new key."""
    return record.evolve(status="pending")


def made_here(record: NodeRecord) -> NodeRecord:
    """A record adopting a look this tool made: prune treats the look as its own."""
    return record.evolve(attempts=max(1, record.attempts))


def superseding(record: NodeRecord, *look_ids: str) -> NodeRecord:
    """Looks made for the address and replaced: kept recorded, for prune."""
    return record.evolve(superseded=(*record.superseded, *look_ids))


def pruned(record: NodeRecord, look_id: str | None) -> NodeRecord:
    """A superseded look deleted: no longer recorded, nor kept in the run cache."""
    return record.evolve(
        superseded=tuple(i for i in record.superseded if i != look_id),
        reusable={f: i for f, i in record.reusable.items() if i != look_id},
    )


def gone(record: NodeRecord, reason: str) -> NodeRecord:
    """The account no longer has the look: its id is cleared, so nothing deletes it."""
    error = ErrorInfo("missing", f"look {record.look_id} was {reason}")
    return record.evolve(status="missing", look_id=None, preview_image_url=None, error=error)


def upload_restarted(record: NodeRecord) -> NodeRecord:
    """A direct upload begins anew (its URL expired, its asset lost): nothing kept."""
    return record.evolve(status="pending", asset_id=None, upload=None)


def upload_progress(
    record: NodeRecord, asset_id: str | None, state: Mapping[str, Any]
) -> NodeRecord:
    """A direct upload's phase (`put`, `uploaded`) and URL expiry, journaled as it goes."""
    return record.evolve(asset_id=asset_id, upload=dict(state))


def moved(record: NodeRecord, address: str) -> NodeRecord:
    """The record of a look re-keyed by a `moved` entry, at its new address."""
    return record.evolve(address=address)


def uncached(record: NodeRecord, look_id: str) -> NodeRecord:
    """A look of the run cache that is gone (or never finished): not reused again."""
    return record.evolve(reusable={f: i for f, i in record.reusable.items() if i != look_id})

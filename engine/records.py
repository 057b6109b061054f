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

from engine.manifest import ErrorInfo, NodeRecord
from engine.plan import PlanNode

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
    return fresh.evolve(superseded=_superseding(old), attempts=old.attempts)


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

"""The create step: make a base or a look, or pick up one made earlier, and see it through.

Before paying for a look, it looks for one already made: a generation the manifest
records as running is resumed; a send whose answer was lost is replayed with its key (or,
past the key's lifetime, found by name in its group); a look made here whose record was
lost is adopted (engine/adoption.py). Only then is a create sent, holding a job slot,
its key journaled first.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from .. import records
from ..adoption import adoption_group, shared_names, unrecorded_looks
from ..client import LookInfo, wait_retry_after
from ..errors import ApiError
from ..lifecycle import find_made
from ..manifest import NodeRecord
from ..node_graph import GraphNode
from ..ownership import recorded_ids
from ..plan import substitute
from ..progress import Event
from ..run_context import RunContext, ids, upstream_group
from ..runs import Outcome
from ..slots import Stopped
from .generation import await_generation, confirm_missing, generating

KEY_TTL = 23 * 3600.0  # the API keeps idempotency keys 24 h; reconcile by name past this


class Creation:
    """Creates (or resumes, replays, adopts) the bases and looks of one run."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._listings: dict[str, asyncio.Task[list[LookInfo]]] = {}  # group -> its looks
        self._shared_names: dict[int, set[tuple[str | None, str | None]]] = {}  # per batch

    async def reuse(self, n: GraphNode) -> Outcome:
        """The run cache: the look made from this fingerprint before, still there, again."""
        record = n.record
        assert record is not None
        look_id = record.reusable_look(n.node.fingerprint)
        look = await confirm_missing(self.ctx, look_id) if look_id is not None else None
        if look_id is None or look is None or not look.usable:
            # Deleted behind our back (or never finished): pay for it after all.
            if look_id is not None:
                self.ctx.save(n, records.uncached(record, look_id))
            return await self.make(n)
        made = None
        if record.status == "submitted":
            # B's send lost its answer: what it may have made is superseded, never unaccounted.
            made = await self._find_made(n, record)
        self.ctx.save(n, records.reused(n.node, record, look, [made.id] if made else []))
        if n.node.name is not None and look.name != n.node.name:
            await self.ctx.client.rename_look(look.id, n.node.name)
        self.ctx.save(n, records.renamed(n.record or record, n.node.name))
        self.ctx.reporter.event(Event(n.address, "reused", look.id, n.batch.label))
        return "completed"

    async def make(self, n: GraphNode) -> Outcome:
        """Create a base or a look (or pick up one made earlier) and see it through."""
        old = n.record
        record = self.ctx.record_for(n)  # carries a look id only when the fingerprint is the same
        if records.legacy_blocked(record):
            record = await self._settle_legacy(n, record)
        if records.is_live(record):
            self.ctx.hold_slot(n)  # its generation already runs on the server
        elif (adopted := await self._adopt(n, record)) is not None:
            record = adopted
            self.ctx.hold_slot(n)  # counted like a resumed generation until it is seen done
        else:
            if (
                old is not None
                and old.status == "submitted"
                and old.fingerprint != record.fingerprint
            ):
                # The recipe changed after a send whose answer was lost: what it may have
                # made is recorded as superseded (for prune), never left unaccounted for.
                made = await self._find_made(n, old)
                if made is not None:
                    record = records.superseding(record, made.id)
            record = await self._submit(n, record)
        self.ctx.created(n)
        return await await_generation(self.ctx, n, record)

    async def _settle_legacy(self, n: GraphNode, record: NodeRecord) -> NodeRecord:
        """An older manifest's `blocked` record with a look id: a consent wait (live) or a
        failed look's stale id (to be superseded by a new creation); the server tells."""
        assert record.look_id is not None
        look = await confirm_missing(self.ctx, record.look_id)  # None: deleted meanwhile
        group = (look.group_id if look is not None else None) or record.group_id
        alive = look is not None and (
            generating(look) or look.usable or look.status == "pending_consent"
        )
        if look is None or group is None or not alive:
            settled = records.failed(record, None)  # a new attempt supersedes it
        elif look.status == "pending_consent":
            settled = records.awaiting_consent(records.in_group(record, group))
        else:
            settled = records.created(record, look.id, group)
        self.ctx.save(n, settled)
        return settled

    async def _submit(self, n: GraphNode, record: NodeRecord) -> NodeRecord:
        """Send the create while holding a job slot; its key is journaled first."""
        await self.ctx.take_slot(n)
        if self.ctx.stopping:
            raise Stopped
        record, replay = self.ctx.with_key(n, record)
        if replay and time.time() - (record.submitted_at or 0.0) > KEY_TTL:
            found = await self._reconcile(n, record)
            if found is not None:
                return found
            record, replay = self.ctx.with_key(n, records.expired(record))
        budget = self.ctx.budget
        if not replay and budget and not budget.spend(n.node, n.batch.plan.prices):
            self.ctx.stop("max_credits")  # a replayed key is free; a new one would pass it
            raise Stopped
        self.ctx.save(n, record)
        body = substitute(n.node.template, lambda k, a: self._resolve(n, k, a))
        body["name"] = n.node.name
        assert record.idempotency_key is not None
        self.ctx.reporter.event(Event(n.address, "submitted", recipe=n.batch.label))
        key = record.idempotency_key
        async for attempt in self._rate_limit_policy():
            with attempt:
                look, group = await self.ctx.sending(
                    self.ctx.client.create_avatar(body, idempotency_key=key), job=True
                )
        self.ctx.slots.succeeded()
        record = records.created(record, look.id, group.id)
        self.ctx.save(n, record)
        self.ctx.reporter.event(
            Event(n.address, "created", look.id, n.batch.label, look.id, group.id)
        )
        if replay and n.node.name and look.name != n.node.name:
            # Renamed in the recipe since the answer was lost: the replay has the old name.
            await self.ctx.client.rename_look(look.id, n.node.name)
        return record

    def _rate_limit_policy(self) -> AsyncRetrying:
        """Beyond the client's own retries, a 429 storm never fails a node: it waits.

        Only the node timeout ends it; the slot limit has already been lowered by then.
        A wait that would end past it (Retry-After: 999999) is not slept: the node fails now.
        """
        return AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, ApiError) and e.status == 429),
            wait=wait_retry_after(wait_exponential(multiplier=1, max=60) + wait_random(0, 1)),
            stop=stop_before_delay(self.ctx.options.node_timeout),
            reraise=True,
        )

    async def _reconcile(self, n: GraphNode, record: NodeRecord) -> NodeRecord | None:
        """Past the key's lifetime, adopt what a lost answer made."""
        look = await self._find_made(n, record)
        if look is None:
            return None
        assert look.group_id is not None  # unrecorded_looks names the group
        found = records.created(record, look.id, look.group_id)
        self.ctx.save(n, found)
        return found

    async def _adopt(self, n: GraphNode, record: NodeRecord) -> NodeRecord | None:
        """A look made here whose record was lost (one side of a merge kept, an older
        manifest restored, a journal deleted): found by name in its avatar's group, as a
        lost answer is (_reconcile), and recorded instead of paid for again."""
        if not self._may_exist(n):
            return None
        # One attempt at least was made, by this tool: prune treats it as its own.
        found = await self._reconcile(n, records.made_here(record))
        if found is None:
            return None
        assert found.group_id is not None
        # Older looks of the name, unrecorded too (the record lost with a replaced look's
        # superseded ids): made here for this address all the same, so prune deletes them.
        taken = self._recorded(n)
        listing = await self._list_group(found.group_id)
        older = [look.id for look in unrecorded_looks(listing, found.group_id, n.node.name, taken)]
        if older:
            found = records.superseding(found, *older)
            self.ctx.save(n, found)
        self.ctx.reporter.event(
            Event(n.address, "adopted", str(found.look_id), n.batch.label, *ids(found))
        )
        return found

    def _may_exist(self, n: GraphNode) -> bool:
        group = adoption_group(n.node, n.batch.store.nodes, self.ctx.started_at)
        if group is None or group != upstream_group(n):
            return False
        if id(n.batch) not in self._shared_names:
            self._shared_names[id(n.batch)] = shared_names(n.batch.plan.nodes.values())
        return (n.node.avatar, n.node.name) not in self._shared_names[id(n.batch)]

    async def _list_group(self, group_id: str) -> list[LookInfo]:
        """A group's looks, listed once per run: every caller looks for a look made before
        this run, which any listing made during it shows."""
        task = self._listings.get(group_id)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self.ctx.client.list_looks(group_id=group_id))
            self._listings[group_id] = task
        return await asyncio.shield(task)

    async def _find_made(self, n: GraphNode, record: NodeRecord) -> LookInfo | None:
        """The look a send whose answer was lost made (lifecycle.find_made): in the group
        it went into, or its base's; never a look any record holds."""
        name = record.name or n.node.name
        group = record.group_id or upstream_group(n)
        taken = self._recorded(n) | set(record.superseded)
        return await find_made(
            self.ctx.client, name, record.submitted_at, group, taken, self._list_group
        )

    def _recorded(self, n: GraphNode) -> set[str | None]:
        """Looks a record holds: n's manifest, or another one made them (in this run or
        beside it: another recipe's look in a shared group may bear one of our names)."""
        taken: set[str | None] = set(self.ctx.options.recorded_elsewhere)
        for batch in self.ctx.batches:
            taken |= recorded_ids(batch.store.nodes.values(), made_only=batch is not n.batch)
        return taken

    def _resolve(self, n: GraphNode, ref_kind: str, address: str) -> Any:
        dep = n.batch.store.nodes[address]
        if ref_kind == "$look":
            return dep.look_id
        if ref_kind == "$group":
            return dep.group_id
        return {"type": "asset_id", "asset_id": dep.asset_id}

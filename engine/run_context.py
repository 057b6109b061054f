"""What the steps of a run share, and how each of them records what happened.

A step (engine/steps/) sends requests through `client`, takes a job slot for a generation,
waits on the poller, and journals every change through `save` *before* acting on it: a
change that cannot be written stops the node where it was on disk (Stopped).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from . import records
from .client import HeyGenClient, LookInfo
from .cost import Budget
from .errors import StateWriteError
from .manifest import ErrorInfo, NodeRecord, Status
from .node_graph import GraphNode, NodeGraph
from .poller import LookPoller
from .progress import Event, EventError, Reporter
from .runs import ApplyOptions, ApplyResult, Batch, Outcome
from .slots import JobSlots, Stopped

_T = TypeVar("_T")


def ids(record: NodeRecord | None) -> tuple[str | None, str | None]:
    """The look and group a record holds, for events."""
    return (record.look_id, record.group_id) if record is not None else (None, None)


def upstream_group(n: GraphNode) -> str | None:
    """The existing group a create for n goes into, if any (its base's, or the recipe's)."""
    for dep in n.node.depends_on:
        rec = n.batch.store.nodes.get(dep)
        if rec is not None and rec.group_id and rec.kind in ("base", "look"):
            return rec.group_id
    group = n.node.template.get("avatar_group_id")
    return str(group) if group else None


class RunContext:
    """The client, options, job slots, poller, reporter and result of one run."""

    def __init__(
        self,
        client: HeyGenClient,
        batches: Sequence[Batch],
        reporter: Reporter,
        options: ApplyOptions,
        budget: Budget | None = None,
    ) -> None:
        self.client = client
        self.batches = batches
        self.reporter = reporter
        self.options = options
        self.budget = budget  # apply --max-credits: asked before each new paid generation
        self.slots = JobSlots(options.max_jobs)
        self.poller = LookPoller(client, options)
        self.result = ApplyResult()
        self.uploads = asyncio.Semaphore(options.upload_concurrency)
        self.stopping: str | None = None
        self.started_at = time.time()
        self.total = 0  # nodes the run works on
        self.in_request: set[asyncio.Task[Any]] = set()  # sending a creating request
        self.creating: set[asyncio.Task[Any]] = set()  # of those, sending a generation
        self._holding: set[GraphNode] = set()  # generations in progress on the server
        self.graph: NodeGraph | None = None  # the run's, once it runs
        self._pledges: dict[GraphNode, int] = {}  # slots kept for looks just unblocked

    # -- stopping -------------------------------------------------------------------------

    def stop(self, why: str) -> None:
        """Submit nothing new from now on; work in flight finishes and is recorded."""
        if self.stopping is None:
            self.stopping = why
            self.result.stopped = why
            self.slots.cancel_waiters()

    def write_failed(self, error: StateWriteError) -> None:
        """State cannot be written: submit nothing more, but answers in flight are still
        recorded if the disk lets them (what is journaled already is safe either way)."""
        if self.result.write_error is None:
            self.result.write_error = error
        self.stop("state_write")

    # -- records --------------------------------------------------------------------------

    def save(self, n: GraphNode, record: NodeRecord, *, sync: bool = True) -> None:
        try:
            n.batch.store.record(record, sync=sync)
        except StateWriteError as e:
            # Not journaled, so not acted on: the node ends here, as it was on disk.
            self.write_failed(e)
            raise Stopped from None

    def record_for(self, n: GraphNode) -> NodeRecord:
        """The node's record brought to the current fingerprint, name and request."""
        return records.current(n.node, n.record)

    def with_key(self, n: GraphNode, record: NodeRecord) -> tuple[NodeRecord, bool]:
        """The record carrying the idempotency key to send; True when it replays a send."""
        if record.status == "submitted" and record.idempotency_key:
            return record, True
        attempt = record.attempts + 1
        lineage = n.batch.store.manifest.lineage
        key = records.idempotency_key(lineage, n.address, n.node.fingerprint, attempt)
        return records.submitted(record, key, time.time(), upstream_group(n)), False

    def fail(
        self,
        n: GraphNode,
        code: str,
        message: str,
        status: Status | None,
        request_id: str | None = None,
    ) -> Outcome:
        """Record and report why the node failed; `status` None keeps its state (and key)."""
        # The request id is what HeyGen's support asks for.
        stored = f"{message} (request {request_id})" if request_id else message
        current = n.record or self.record_for(n)
        error = ErrorInfo(code, stored)
        self.save(
            n,
            records.noted(current, error)
            if status is None
            else records.failed(current, error, status),
        )
        self.report_failure(n, "failed", f"{code}: {stored}", EventError(code, message, request_id))
        return "failed"

    def report_failure(self, n: GraphNode, kind: str, message: str, error: EventError) -> None:
        self.result.failures.append((self.label(n), f"{kind}: {message}"))
        self.reporter.event(Event(n.address, kind, message, n.batch.label, *ids(n.record), error))

    def complete(self, n: GraphNode, record: NodeRecord, look: LookInfo) -> Outcome:
        done = records.completed(record, look.id, look.group_id, look.preview_image_url)
        # No request waits on a completion (the API holds it; a next run would ask it
        # again), so it is not fsynced on its own: the next key or the fold takes it to
        # disk, and the job slot it freed goes to the next create one fsync sooner.
        self.save(n, done, sync=False)
        self.reporter.event(
            Event(n.address, "completed", look.id, n.batch.label, look.id, done.group_id)
        )
        return "completed"

    # -- requests and slots ------------------------------------------------------------

    async def sending(self, request: Awaitable[_T], *, job: bool = False) -> _T:
        """Await a creating request; an interrupt lets it finish within the grace period.

        A `job` (a generation) refused with 429 lowers the job limit; see Executor.on_retry.
        """
        task = asyncio.current_task()
        assert task is not None
        tracked = (self.in_request, self.creating) if job else (self.in_request,)
        for tasks in tracked:
            tasks.add(task)
        try:
            return await request
        finally:
            for tasks in tracked:
                tasks.discard(task)

    def created(self, n: GraphNode) -> None:
        """n's ids (its group) are known: what waits for that may start."""
        if self.graph is not None:
            self.graph.created(n)

    async def take_slot(self, n: GraphNode) -> None:
        await self.slots.acquire(n.rank, self._pledges.pop(n, None))
        self._holding.add(n)
        self.tick()

    def hold_slot(self, n: GraphNode) -> None:
        """Count a generation the server already runs, even past the limit."""
        self.slots.force()
        self._holding.add(n)

    def pledge_unblocked(self, n: GraphNode) -> None:
        """The looks that n's completion unblocks get the slot n frees before lower ranks:
        the critical path takes it, not a leaf that was queued earlier."""
        if self.graph is None:
            return
        for d in self.graph.unblocked_by(n):
            if d not in self._pledges:
                self._pledges[d] = self.slots.pledge(d.rank)

    def forget_pledge(self, n: GraphNode) -> None:
        token = self._pledges.pop(n, None)
        if token is not None:
            self.slots.forget(token)

    def drop_slot(self, n: GraphNode) -> None:
        if n in self._holding:
            self._holding.discard(n)
            self.slots.release()
            self.tick()

    # -- progress -----------------------------------------------------------------------

    def label(self, n: GraphNode) -> str:
        return f"{n.batch.label}: {n.address}" if n.batch.label else n.address

    def tick(self) -> None:
        counts = Counter(self.result.counts)
        counts["in_flight"] = self.slots.in_use
        self.reporter.counts(counts, self.total)

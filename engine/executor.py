"""The executor: runs plans against the API, concurrently, within its job limit.

Every creating request carries an idempotency key that is journaled *before* the request
is sent, so a retry, a lost answer or a kill -9 followed by a resume can only ever replay
the original creation, never pay for a second one.

This module is the orchestration: one task per node, started once its upstreams are
ready (engine/node_graph.py), dispatched to its step (engine/steps/), its outcome counted
and reported. What the steps share is engine/run_context.py; job slots are
engine/slots.py, the poller engine/poller.py, record transitions engine/records.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from . import records
from .client import HeyGenClient
from .cost import Budget
from .errors import ApiError, ApiStalledError, StateWriteError, TransportError
from .manifest import ManifestStore, Status
from .node_graph import GraphNode, NodeGraph
from .progress import Event, EventError, Reporter
from .run_context import RunContext
from .runs import ApplyOptions, ApplyResult, Batch, Outcome
from .slots import JobSlots, Stopped
from .steps.check import check_existing
from .steps.consent import start_consent
from .steps.create import Creation
from .steps.move import moved, rekey
from .steps.rename import rename
from .steps.upload import upload

__all__ = ["ApplyOptions", "ApplyResult", "Batch", "Executor", "JobSlots", "Outcome"]

FOLD_EVERY_CHANGES = 5000  # or 3 per node of the manifest: O(1) amortised per change
FOLD_EVERY_SECONDS = 30.0


def _asset_refused(e: ApiError) -> bool:
    """The API cannot use an asset id the create sent: not available (a direct upload not
    completed, expired), or refused as the field's value (an asset it no longer knows)."""
    return e.code == "asset_not_available" or (
        e.status == 400 and (e.param or "").endswith("asset_id")
    )


def _outcome_unknown(error: ApiError) -> bool:
    in_progress = error.status == 409 and error.code == "request_in_progress"
    return error.status >= 500 or in_progress or error.code == "invalid_response"


class Executor:
    """Runs batches of plans; one instance per `looks apply`."""

    def __init__(
        self,
        client: HeyGenClient,
        batches: Sequence[Batch],
        reporter: Reporter,
        options: ApplyOptions | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.ctx = RunContext(client, batches, reporter, options or ApplyOptions(), budget)
        self.batches = batches
        self._creation = Creation(self.ctx)
        self._tasks: dict[asyncio.Task[None], GraphNode] = {}
        # Per manifest: folding one must not put off the others' folds.
        self._last_fold = {id(b.store): time.monotonic() for b in batches}

    @property
    def result(self) -> ApplyResult:
        return self.ctx.result

    @property
    def slots(self) -> JobSlots:
        return self.ctx.slots

    @property
    def options(self) -> ApplyOptions:
        return self.ctx.options

    # -- run --------------------------------------------------------------------------

    async def run(self) -> ApplyResult:
        graph = NodeGraph(self.batches)
        self.ctx.graph = graph
        work = graph.work
        self.ctx.total = len(work)
        self.result.counts["queued"] = len(work)
        # Started in slot order, so the first free slots already go to the critical path.
        for n in sorted(work, key=lambda n: -n.rank):
            self._tasks[asyncio.create_task(self._run_node(graph, n))] = n
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            if self._tasks:
                await asyncio.gather(*self._tasks)
        finally:
            heartbeat.cancel()
            await self.ctx.poller.aclose()
            for batch in self.batches:
                try:
                    batch.store.fold()
                except StateWriteError as e:
                    self.ctx.write_failed(e)
        self._count_unfinished(graph, work)
        return self.result

    async def _heartbeat(self) -> None:
        """Progress (rate, ETA, the periodic line in logs) moves even while nothing happens."""
        while True:
            await asyncio.sleep(self.options.heartbeat)
            self.ctx.tick()

    def _count_unfinished(self, graph: NodeGraph, work: Sequence[GraphNode]) -> None:
        """Nodes without an outcome: still generating (sent, maybe billed) or not started."""
        del self.result.counts["queued"]
        for n in work:
            if graph.outcome(n) is None:
                record = n.record
                sent = record is not None and records.in_flight(record)
                self.result.counts["in_flight" if sent else "not_started"] += 1
        for outcome in ("completed", "failed", "blocked", "in_flight", "not_started"):
            self.result.counts[outcome] += 0
        self.ctx.reporter.counts(self.result.counts, self.ctx.total)

    def interrupt(self) -> None:
        """First Ctrl-C: stop submitting, give answers in flight a grace period, then stop."""
        self.stop("interrupted")
        for task in self._tasks:
            if task not in self.ctx.in_request:
                task.cancel()
        asyncio.get_running_loop().call_later(self.options.interrupt_grace, self._cancel_all)

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    def stop(self, why: str) -> None:
        """Submit nothing new from now on; work in flight finishes and is recorded."""
        self.ctx.stop(why)

    def on_retry(self, exc: BaseException, wait: float) -> None:
        """Called by the client before each retry sleep."""
        if isinstance(exc, ApiError) and exc.status == 429:
            self.result.requests_429 += 1
            if asyncio.current_task() in self.ctx.creating:  # a job refused, not a busy poll
                self.slots.throttled()

    # -- one node -------------------------------------------------------------------------

    async def _run_node(self, graph: NodeGraph, n: GraphNode) -> None:
        try:
            blocker = await graph.blocker(n)
            if self.ctx.stopping:
                return  # left as it was: the next apply picks it up
            graph.start(n)
            self.result.counts["queued"] -= 1
            outcome = self._block(n, blocker) if blocker else await self._dispatch(n)
            graph.finish(n, outcome)
            self.result.counts[outcome] += 1
            self.ctx.tick()
            if outcome != "completed" and self.options.fail_fast:
                self.stop("fail_fast")
        except Stopped:
            pass
        except asyncio.CancelledError:
            if graph.started(n):
                record = n.record
                look_id = record.look_id if record is not None else None
                self.ctx.reporter.event(
                    Event(n.address, "interrupted", recipe=n.batch.label, look_id=look_id)
                )
        finally:
            self.ctx.forget_pledge(n)
            self.ctx.drop_slot(n)
            graph.release(n)  # a node that never ran still releases its dependents
            self._maybe_fold(n.batch.store)

    def _block(self, n: GraphNode, upstream: str) -> Outcome:
        message = f"upstream {upstream} did not complete"
        record = records.blocked(n.node, n.record, upstream)
        if record is not None:
            self.ctx.save(n, record)
        self.ctx.report_failure(n, "blocked", message, EventError("blocked", message))
        return "blocked"

    async def _dispatch(self, n: GraphNode) -> Outcome:
        try:
            if n.action.moved_from is not None:
                rekey(self.ctx, n, n.action.moved_from)
            if n.action.action == "move":
                return await moved(self.ctx, n)
            if n.action.action == "reuse":
                return await self._creation.reuse(n)
            if n.action.action == "update":
                return await rename(self.ctx, n)
            if n.node.kind == "upload":
                return await upload(self.ctx, n)
            if n.node.kind == "consent":
                return await start_consent(self.ctx, n)
            if n.node.template.get("type") == "existing":
                return await check_existing(self.ctx, n)
            return await self._creation.make(n)
        except ApiError as e:
            if e.code == "insufficient_credit":
                self.stop("insufficient_credit")
            if e.status == 401:  # the key was revoked mid-run: every request would be refused
                self.stop("key_refused")
            if _asset_refused(e):
                self._forget_uploads(n)
            # A refusal ends the key; an answer that says nothing of the outcome (a 5xx after
            # every retry, a request still in progress, an unreadable success) keeps it, so
            # the next run replays it rather than paying again.
            status: Status | None = None if _outcome_unknown(e) else "failed"
            return self.ctx.fail(n, e.code, e.message, status=status, request_id=e.request_id)
        except TransportError as e:
            if isinstance(e, ApiStalledError):
                self.stop("api_stalled")  # each new request would only wait out its deadline
            # The request's outcome is unknown: keep the key, the next run replays it.
            return self.ctx.fail(n, "transport_error", str(e), status=None)

    def _forget_uploads(self, n: GraphNode) -> None:
        """The API cannot use an asset we recorded: its uploads run again on the next apply."""
        store = n.batch.store
        for dep in n.node.depends_on:
            rec = store.nodes.get(dep)
            if rec is not None and rec.kind == "upload" and rec.status == "completed":
                message = f"asset {rec.asset_id} is not available to the API; uploaded again next"
                self.ctx.save(n, records.asset_lost(rec, message))

    def _maybe_fold(self, store: ManifestStore) -> None:
        now = time.monotonic()
        due = now - self._last_fold[id(store)] > FOLD_EVERY_SECONDS
        enough = max(FOLD_EVERY_CHANGES, 3 * len(store.nodes))
        if store.pending_changes >= enough or (due and store.pending_changes):
            try:
                store.fold()
            except StateWriteError as e:
                self.ctx.write_failed(e)
            self._last_fold[id(store)] = now

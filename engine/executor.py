"""The executor: runs plans against the API, concurrently, within its job limit.

Every creating request carries an idempotency key that is journaled *before* the request
is sent, so a retry, a lost answer or a kill -9 followed by a resume can only ever replay
the original creation, never pay for a second one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from engine import records
from engine.client import HeyGenClient, LookInfo, wait_retry_after
from engine.cost import Budget
from engine.errors import (
    ApiError,
    ApiStalledError,
    FileChangedError,
    StateWriteError,
    TransportError,
)
from engine.manifest import ErrorInfo, ManifestStore, NodeRecord, Status
from engine.media import SIMPLE_UPLOAD_MAX_BYTES
from engine.ownership import recorded_ids
from engine.plan import Plan, PlanAction, PlanNode, consent_address, substitute
from engine.poller import LookPoller
from engine.progress import Event, EventError, Reporter
from engine.summary import RunSummary
from engine.uploads import DirectUpload, LocalFile

KEY_TTL = 23 * 3600.0  # the API keeps idempotency keys 24 h; reconcile by name past this
FOLD_EVERY_CHANGES = 5000  # or 3 per node of the manifest: O(1) amortised per change
FOLD_EVERY_SECONDS = 30.0
PLEDGE_SECONDS = 0.25  # a slot kept for an unblocked look, at most (it asks within ms)


@dataclass(frozen=True)
class ApplyOptions:
    """Knobs of a run."""

    max_jobs: int = 10
    fail_fast: bool = False
    node_timeout: float = 900.0
    poll_min: float = 0.01
    poll_max: float = 10.0
    upload_concurrency: int = 2
    heartbeat: float = 1.0  # seconds between progress updates while nothing happens
    missing_after: float = 30.0  # seconds a look may be absent from listings before a GET
    interrupt_grace: float = 5.0
    recorded_elsewhere: frozenset[str] = frozenset()  # made by other manifests: never adopted


@dataclass(frozen=True)
class Batch:
    """One recipe's plan and its open manifest."""

    plan: Plan
    store: ManifestStore
    label: str = ""


@dataclass
class ApplyResult:
    """What a run achieved.

    Once the run is over, `counts` holds each node it was asked to work on under exactly
    one of engine.summary.OUTCOMES (while it runs, also `queued`).
    """

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    stopped: str | None = None  # why new submissions stopped early, if they did
    requests_429: int = 0
    write_error: StateWriteError | None = None  # the state write that stopped the run

    @property
    def ok(self) -> bool:
        unfinished = self.counts["in_flight"] + self.counts["not_started"]
        return not self.failures and self.stopped is None and unfinished == 0

    def summary(self) -> RunSummary:
        counts = {k: v for k, v in self.counts.items() if k != "queued"}
        return RunSummary(counts, self.stopped, tuple(self.failures))


def idempotency_key(lineage: str, address: str, fingerprint: str, attempt: int) -> str:
    """Derived, not random: a resumed run recomputes the very key it journaled."""
    digest = hashlib.sha256(f"{lineage}|{address}|{fingerprint}|{attempt}".encode()).hexdigest()
    return f"looks:{lineage[:8]}:{digest[:40]}"


class _Stop(Exception):
    """New submissions are stopped (out of credits, fail-fast, interrupt)."""


class JobSlots:
    """A counting semaphore served by priority, whose limit adapts to 429s.

    Holds one slot per generation in flight; the highest priority (the longest chain
    still to run) goes first, so the critical path never waits behind leaf looks.
    """

    def __init__(self, limit: int) -> None:
        self.max = limit
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._last_throttle = 0.0
        self._pledged: dict[int, int] = {}  # pledge -> priority of the look it is kept for

    def pledge(self, priority: int) -> int:
        """Keep a slot, from lower priorities, for a look just unblocked that is about to
        ask for one (it takes a few loop turns to get there); expires on its own."""
        token = next(self._order)
        self._pledged[token] = priority
        asyncio.get_running_loop().call_later(PLEDGE_SECONDS, self.forget, token)
        return token

    def forget(self, token: int) -> None:
        """The pledged look will not ask (or already has): the slot is free for anyone."""
        if self._pledged.pop(token, None) is not None:
            self._wake()

    def _held(self, priority: int) -> int:
        return sum(1 for p in self._pledged.values() if p > priority)

    async def acquire(self, priority: int, pledge: int | None = None) -> None:
        if pledge is not None:
            self._pledged.pop(pledge, None)
        outranks = not self._waiters or -self._waiters[0][0] < priority
        if outranks and self.in_use + self._held(priority) < self.limit:
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-priority, next(self._order), future))
        self._wake()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()  # granted and cancelled at once: hand the slot on
            raise

    def _take(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def force(self) -> None:
        """Count a job the server already runs (a resumed generation), even past the limit."""
        self._take()

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use + self._held(-self._waiters[0][0]) < self.limit:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                self._take()
                future.set_result(None)

    def throttled(self) -> None:
        """The server refused a job: it allows fewer than we hold, so hold fewer."""
        self.limit = max(1, self.in_use - 1)
        self._last_throttle = time.monotonic()

    def succeeded(self) -> None:
        # Creep back up after a quiet spell, in case the 429 came from another client's burst.
        if self.limit < self.max and time.monotonic() - self._last_throttle > 30:
            self.limit += 1
            self._last_throttle = time.monotonic()
            self._wake()

    def cancel_waiters(self) -> None:
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(_Stop())
        self._waiters.clear()


Outcome = str  # "completed" | "failed" | "blocked"


@dataclass(eq=False)
class _Node:
    action: PlanAction
    node: PlanNode
    batch: Batch
    done: asyncio.Future[bool]  # True once completed, False if it will not be
    created: asyncio.Future[bool]  # True once its ids (group) are known
    deps: list[_Node] = field(default_factory=list)
    dependents: list[_Node] = field(default_factory=list)
    priority: int = 1  # generations on the longest chain from it down (itself included)
    depth: int = 0  # generations on the longest chain down to it (itself included)
    pledge: int | None = None  # a job slot kept for it by the look it was built on
    holding: bool = False  # holds a job slot: its generation is in progress on the server
    outcome: Outcome | None = None  # None: it never ran (stopped, interrupted)
    started: bool = False

    @property
    def address(self) -> str:
        return self.action.address

    @property
    def record(self) -> NodeRecord | None:
        return self.batch.store.nodes.get(self.address)

    @property
    def runs(self) -> bool:
        return self.action.action in (
            "create",
            "adopt",
            "move",
            "reuse",
            "replace",
            "retry",
            "update",
        )

    @property
    def chain(self) -> int:
        """Generations on the longest chain through it: its place on the critical path."""
        return self.depth + self.priority - (1 if self.runs else 0)

    @property
    def rank(self) -> int:
        """Slot order: the longest chain through it first (a chain's last look too, not
        only its first), then the longest chain still to run from it."""
        return self.chain << 24 | min(self.priority, (1 << 24) - 1)


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


def _ids(record: NodeRecord | None) -> tuple[str | None, str | None]:
    """The look and group a record holds, for events."""
    return (record.look_id, record.group_id) if record is not None else (None, None)


def _outcome_unknown(error: ApiError) -> bool:
    in_progress = error.status == 409 and error.code == "request_in_progress"
    return error.status >= 500 or in_progress or error.code == "invalid_response"


def _generating(look: LookInfo) -> bool:
    return look.status in (None, "processing", "pending", "submitted")


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
        self.client = client
        self.budget = budget  # apply --max-credits: asked before each new paid generation
        self.batches = batches
        self.reporter = reporter
        self.options = options or ApplyOptions()
        self.slots = JobSlots(self.options.max_jobs)
        self.poller = LookPoller(client, self.options)
        self.result = ApplyResult()
        self._uploads = asyncio.Semaphore(self.options.upload_concurrency)
        self._stopping: str | None = None
        self._in_request: set[asyncio.Task[Any]] = set()  # sending a creating request
        self._creating: set[asyncio.Task[Any]] = set()  # of those, sending a generation
        self._tasks: dict[asyncio.Task[None], _Node] = {}
        self._total = 0
        self._last_fold = time.monotonic()
        self._started = time.time()
        self._listings: dict[str, asyncio.Task[list[LookInfo]]] = {}  # group -> its looks
        self._shared_names: dict[int, set[tuple[str | None, str | None]]] = {}  # per batch

    # -- graph --------------------------------------------------------------------------

    def _nodes(self) -> list[_Node]:
        loop = asyncio.get_running_loop()
        nodes: list[_Node] = []
        for batch in self.batches:
            by_address: dict[str, _Node] = {}
            for action in batch.plan.actions:
                if action.node is None:
                    continue  # orphans are reported by plan, pruned only when asked
                n = _Node(action, action.node, batch, loop.create_future(), loop.create_future())
                by_address[action.address] = n
                for dep in action.node.depends_on:
                    if dep in by_address:
                        n.deps.append(by_address[dep])
                        by_address[dep].dependents.append(n)
                nodes.append(n)
            for n in reversed(list(by_address.values())):
                below = [d.priority for d in n.dependents if d.runs]
                n.priority = (1 if n.runs else 0) + max(below, default=0)
            for n in by_address.values():
                n.depth = (1 if n.runs else 0) + max((d.depth for d in n.deps), default=0)
        return nodes

    # -- run --------------------------------------------------------------------------

    async def run(self) -> ApplyResult:
        nodes = self._nodes()
        for n in nodes:
            if not n.runs:
                n.done.set_result(True)
                n.created.set_result(True)
        work = [n for n in nodes if n.runs]
        self._total = len(work)
        self.result.counts["queued"] = len(work)
        # Started in slot order, so the first free slots already go to the critical path.
        for n in sorted(work, key=lambda n: -n.rank):
            self._tasks[asyncio.create_task(self._run_node(n))] = n
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            if self._tasks:
                await asyncio.gather(*self._tasks)
        finally:
            heartbeat.cancel()
            await self.poller.aclose()
            for batch in self.batches:
                try:
                    batch.store.fold()
                except StateWriteError as e:
                    self._write_failed(e)
        self._count_unfinished(work)
        return self.result

    async def _heartbeat(self) -> None:
        """Progress (rate, ETA, the periodic line in logs) moves even while nothing happens."""
        while True:
            await asyncio.sleep(self.options.heartbeat)
            self._tick()

    def _count_unfinished(self, work: Sequence[_Node]) -> None:
        """Nodes without an outcome: still generating (sent, maybe billed) or not started."""
        del self.result.counts["queued"]
        for n in work:
            if n.outcome is None:
                record = n.record
                sent = record is not None and records.in_flight(record)
                self.result.counts["in_flight" if sent else "not_started"] += 1
        for outcome in ("completed", "failed", "blocked", "in_flight", "not_started"):
            self.result.counts[outcome] += 0
        self.reporter.counts(self.result.counts, self._total)

    def interrupt(self) -> None:
        """First Ctrl-C: stop submitting, give answers in flight a grace period, then stop."""
        self.stop("interrupted")
        for task in self._tasks:
            if task not in self._in_request:
                task.cancel()
        asyncio.get_running_loop().call_later(self.options.interrupt_grace, self._cancel_all)

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    def stop(self, why: str) -> None:
        """Submit nothing new from now on; work in flight finishes and is recorded."""
        if self._stopping is None:
            self._stopping = why
            self.result.stopped = why
            self.slots.cancel_waiters()

    def _write_failed(self, error: StateWriteError) -> None:
        """State cannot be written: submit nothing more, but answers in flight are still
        recorded if the disk lets them (what is journaled already is safe either way)."""
        if self.result.write_error is None:
            self.result.write_error = error
        self.stop("state_write")

    def on_retry(self, exc: BaseException, wait: float) -> None:
        """Called by the client before each retry sleep."""
        if isinstance(exc, ApiError) and exc.status == 429:
            self.result.requests_429 += 1
            if asyncio.current_task() in self._creating:  # a job refused, not a busy poll
                self.slots.throttled()

    # -- one node -------------------------------------------------------------------------

    async def _run_node(self, n: _Node) -> None:
        try:
            blocker = await self._wait_for_deps(n)
            if self._stopping:
                return  # left as it was: the next apply picks it up
            n.started = True
            self.result.counts["queued"] -= 1
            outcome = self._block(n, blocker) if blocker else await self._dispatch(n)
            n.outcome = outcome
            if outcome == "completed" and not n.created.done():
                n.created.set_result(True)  # renamed or checked: its ids are known too
            n.done.set_result(outcome == "completed")
            self.result.counts[outcome] += 1
            self._tick()
            if outcome != "completed" and self.options.fail_fast:
                self.stop("fail_fast")
        except _Stop:
            pass
        except asyncio.CancelledError:
            if n.started:
                record = n.record
                look_id = record.look_id if record is not None else None
                self.reporter.event(
                    Event(n.address, "interrupted", recipe=n.batch.label, look_id=look_id)
                )
        finally:
            if n.pledge is not None:
                self.slots.forget(n.pledge)
            self._drop_slot(n)
            # A node that never ran must still release its dependents (they stop too).
            for future in (n.created, n.done):
                if not future.done():
                    future.set_result(False)
            self._maybe_fold(n.batch.store)

    async def _wait_for_deps(self, n: _Node) -> str | None:
        """The first upstream that will not be ready, or None once all are."""
        for dep in n.deps:
            # Shielded: cancelling this node (an interrupt) must not cancel the future the
            # upstream shares with its other dependents and will still resolve.
            ready = await asyncio.shield(dep.created if n.node.kind == "consent" else dep.done)
            if not ready:
                return dep.address
        return None

    def _block(self, n: _Node, upstream: str) -> Outcome:
        message = f"upstream {upstream} did not complete"
        record = records.blocked(n.node, n.record, upstream)
        if record is not None:
            self._save(n, record)
        self._report_failure(n, "blocked", message, EventError("blocked", message))
        return "blocked"

    def _report_failure(self, n: _Node, kind: str, message: str, error: EventError) -> None:
        self.result.failures.append((self._label(n), f"{kind}: {message}"))
        ids = _ids(n.record)
        self.reporter.event(Event(n.address, kind, message, n.batch.label, *ids, error))

    async def _dispatch(self, n: _Node) -> Outcome:
        try:
            if n.action.moved_from is not None:
                self._rekey(n, n.action.moved_from)
            if n.action.action == "move":
                return await self._moved(n)
            if n.action.action == "reuse":
                return await self._reuse(n)
            if n.action.action == "update":
                return await self._rename(n)
            if n.node.kind == "upload":
                return await self._upload(n)
            if n.node.kind == "consent":
                return await self._consent(n)
            if n.node.template.get("type") == "existing":
                return await self._check_existing(n)
            return await self._make(n)
        except ApiError as e:
            if e.code == "insufficient_credit":
                self.stop("insufficient_credit")
            if e.status == 401:  # the key was revoked mid-run: every request would be refused
                self.stop("key_refused")
            if e.code == "asset_not_available":
                self._forget_uploads(n)
            # A refusal ends the key; an answer that says nothing of the outcome (a 5xx after
            # every retry, a request still in progress, an unreadable success) keeps it, so
            # the next run replays it rather than paying again.
            status: Status | None = None if _outcome_unknown(e) else "failed"
            return self._fail(n, e.code, e.message, status=status, request_id=e.request_id)
        except TransportError as e:
            if isinstance(e, ApiStalledError):
                self.stop("api_stalled")  # each new request would only wait out its deadline
            # The request's outcome is unknown: keep the key, the next run replays it.
            return self._fail(n, "transport_error", str(e), status=None)

    def _forget_uploads(self, n: _Node) -> None:
        """The API cannot use an asset we recorded: its uploads run again on the next apply."""
        store = n.batch.store
        for dep in n.node.depends_on:
            rec = store.nodes.get(dep)
            if rec is not None and rec.kind == "upload" and rec.status == "completed":
                message = f"asset {rec.asset_id} is not available to the API; uploaded again next"
                self._save(
                    n, rec.evolve(status="failed", error=ErrorInfo("asset_not_available", message))
                )

    def _fail(
        self,
        n: _Node,
        code: str,
        message: str,
        status: Status | None,
        request_id: str | None = None,
    ) -> Outcome:
        # The request id is what HeyGen's support asks for.
        stored = f"{message} (request {request_id})" if request_id else message
        current = n.record or self._record_for(n)
        changes: dict[str, Any] = {"error": ErrorInfo(code, stored)}
        if status is not None:
            changes["status"] = status
        self._save(n, current.evolve(**changes))
        error = EventError(code, message, request_id)
        self._report_failure(n, "failed", f"{code}: {stored}", error)
        return "failed"

    # -- slots ------------------------------------------------------------------------------

    async def _take_slot(self, n: _Node) -> None:
        await self.slots.acquire(n.rank, n.pledge)
        n.pledge = None
        n.holding = True
        self._tick()

    def _pledge_slots(self, n: _Node) -> None:
        """The looks that n's completion unblocks get the slot n frees before lower ranks:
        the critical path takes it, not a leaf that was queued earlier."""
        for d in n.dependents:
            ready = all(dep is n or (dep.done.done() and dep.done.result()) for dep in d.deps)
            if d.runs and not d.started and d.pledge is None and ready:
                d.pledge = self.slots.pledge(d.rank)

    def _drop_slot(self, n: _Node) -> None:
        if n.holding:
            n.holding = False
            self.slots.release()
            self._tick()

    # -- records ------------------------------------------------------------------------------

    def _record_for(self, n: _Node) -> NodeRecord:
        """The node's record brought to the current fingerprint, name and request."""
        return records.current(n.node, n.record)

    def _with_key(self, n: _Node, record: NodeRecord) -> tuple[NodeRecord, bool]:
        """The record carrying the idempotency key to send; True when it replays a send."""
        if record.status == "submitted" and record.idempotency_key:
            return record, True
        attempt = record.attempts + 1
        lineage = n.batch.store.manifest.lineage
        key = idempotency_key(lineage, n.address, n.node.fingerprint, attempt)
        return records.submitted(record, key, time.time(), self._upstream_group(n)), False

    def _resolve(self, n: _Node, ref_kind: str, address: str) -> Any:
        dep = n.batch.store.nodes[address]
        if ref_kind == "$look":
            return dep.look_id
        if ref_kind == "$group":
            return dep.group_id
        return {"type": "asset_id", "asset_id": dep.asset_id}

    async def _sending(self, coro: Any, *, job: bool = False) -> Any:
        """Await a creating request; an interrupt lets it finish within the grace period.

        A `job` (a generation) refused with 429 lowers the job limit; see on_retry.
        """
        task = asyncio.current_task()
        assert task is not None
        tracked = (self._in_request, self._creating) if job else (self._in_request,)
        for tasks in tracked:
            tasks.add(task)
        try:
            return await coro
        finally:
            for tasks in tracked:
                tasks.discard(task)

    # -- kinds ------------------------------------------------------------------------------

    async def _upload(self, n: _Node) -> Outcome:
        file = n.node.file
        assert file is not None
        if file.local_path is None:
            # Not on disk (the recipe was loaded with optional media): only this node,
            # the one that must send the bytes, fails; nothing is recorded for it.
            message = f"{file.value}: not on disk"
            error = EventError("file_missing", message)
            self._report_failure(n, "failed", f"file_missing: {message}", error)
            return "failed"
        async with self._uploads:
            if self._stopping:
                raise _Stop
            try:
                size = file.local_path.stat().st_size
            except OSError as e:
                return self._fail(n, "file_unreadable", f"{file.value}: {e.strerror}", None)
            record = self._record_for(n)
            if size > SIMPLE_UPLOAD_MAX_BYTES or record.upload is not None:
                return await self._direct_upload(n, record, size)
            record, _ = self._with_key(n, record)
            self._save(n, record)
            assert record.idempotency_key is not None
            try:
                asset = await self._sending(
                    self.client.upload_asset(
                        file.local_path,
                        idempotency_key=record.idempotency_key,
                        media_type=file.media_type,
                    )
                )
            except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
                # Gone or unreadable since the recipe was loaded: nothing was sent.
                message = f"{file.value}: {e.strerror}"
                return self._fail(n, "file_unreadable", message, status="failed")
        self._save(n, record.evolve(status="completed", asset_id=asset.asset_id))
        self.reporter.event(Event(n.address, "uploaded", file.value, n.batch.label))
        return "completed"

    async def _direct_upload(self, n: _Node, record: NodeRecord, size: int) -> Outcome:
        """A file over 32 MB: the three-step direct upload (engine/uploads.py)."""
        file = n.node.file
        assert file is not None and file.local_path is not None and file.digest is not None

        def progress(sent: int, total: int) -> None:
            message = f"{file.value}: {sent / 2**20:.0f}/{total / 2**20:.0f} MiB"
            self.reporter.event(Event(n.address, "uploading", message, n.batch.label))

        flow = DirectUpload(
            self.client,
            LocalFile(
                file.local_path,
                file.local_path.name,
                file.media_type or "application/octet-stream",
                file.digest,
                size,
            ),
            save=lambda r: self._save(n, r),
            new_key=lambda r: self._with_key(n, r)[0],
            progress=progress,
        )
        try:
            asset = await self._sending(flow.run(record))
        except OSError as e:
            return self._fail(n, "file_unreadable", f"{file.value}: {e.strerror or e}", None)
        except FileChangedError as e:
            message = f"{e}; it changed since it was planned: run apply again"
            return self._fail(n, "file_changed", message, "failed")
        done = (n.record or record).evolve(status="completed", asset_id=asset.asset_id)
        self._save(n, done.evolve(upload=None, error=None))
        self.reporter.event(Event(n.address, "uploaded", file.value, n.batch.label))
        return "completed"

    async def _consent(self, n: _Node) -> Outcome:
        base = n.batch.store.nodes[n.node.depends_on[0]]
        assert base.group_id is not None
        record, _ = self._with_key(n, self._record_for(n).evolve(group_id=base.group_id))
        self._save(n, record)
        assert record.idempotency_key is not None
        _, url = await self._sending(
            self.client.start_consent(
                base.group_id,
                reroute_url=n.node.template.get("reroute_url"),
                idempotency_key=record.idempotency_key,
            )
        )
        self._save(n, record.evolve(status="completed", consent_url=url))
        self.reporter.event(
            Event(n.address, "consent", f"the subject must approve: {url}", n.batch.label)
        )
        return "completed"

    async def _check_existing(self, n: _Node) -> Outcome:
        look_id = str(n.node.template["look_id"])
        look = await self.client.get_look(look_id)
        if not look.usable:
            status = look.status or "not usable"
            message = f"existing look {look_id} is {status}; only a completed look can be built on"
            return self._fail(n, "look_not_ready", message, status="failed")
        self._complete(n, self._record_for(n).evolve(group_id=look.group_id), look)
        return "completed"

    async def _rename(self, n: _Node) -> Outcome:
        record = n.record
        assert record is not None and record.look_id is not None and n.node.name is not None
        await self.client.rename_look(record.look_id, n.node.name)
        self._save(n, record.evolve(name=n.node.name, error=None))
        self.reporter.event(Event(n.address, "renamed", n.node.name, n.batch.label))
        return "completed"

    def _rekey(self, n: _Node, source: str) -> None:
        """Move the record at source to this node's address (a `moved` entry): the new
        record is journaled before the old one is forgotten, so a crash loses neither."""
        store = n.batch.store
        old = store.nodes.get(source)
        if old is None:
            return  # re-keyed by a run that stopped before it renamed
        store.record(old.evolve(address=n.address))
        store.forget(source)

    async def _moved(self, n: _Node) -> Outcome:
        """A re-keyed look: nothing is generated; renamed if its name changed."""
        record = n.record
        assert record is not None
        if record.look_id is not None and record.name != n.node.name:
            return await self._rename(n)
        self.reporter.event(Event(n.address, "moved", n.action.moved_from or "", n.batch.label))
        return "completed"

    async def _reuse(self, n: _Node) -> Outcome:
        """The run cache: the look made from this fingerprint before, still there, again."""
        record = n.record
        assert record is not None
        look_id = record.reusable_look(n.node.fingerprint)
        look = await self._confirm_missing(look_id) if look_id is not None else None
        if look_id is None or look is None or not look.usable:
            # Deleted behind our back (or never finished): pay for it after all.
            if look_id is not None:
                cache = {f: i for f, i in record.reusable.items() if i != look_id}
                self._save(n, record.evolve(reusable=cache))
            return await self._make(n)
        made = None
        if record.status == "submitted":
            # B's send lost its answer: what it may have made is superseded, never unaccounted.
            made = await self._find_made(n, record)
        self._save(n, records.reused(n.node, record, look, [made.id] if made else []))
        if n.node.name is not None and look.name != n.node.name:
            await self.client.rename_look(look.id, n.node.name)
        self._save(n, (n.record or record).evolve(name=n.node.name))
        self.reporter.event(Event(n.address, "reused", look.id, n.batch.label))
        return "completed"

    async def _make(self, n: _Node) -> Outcome:
        """Create a base or a look (or pick up one made earlier) and see it through."""
        old = n.record
        record = self._record_for(n)  # carries a look id only when the fingerprint is the same
        if records.legacy_blocked(record):
            record = await self._settle_legacy(n, record)
        if records.is_live(record):
            self.slots.force()  # its generation already runs on the server
            n.holding = True
        elif (adopted := await self._adopt(n, record)) is not None:
            record = adopted
            self.slots.force()  # counted like a resumed generation until it is seen done
            n.holding = True
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
                    record = record.evolve(superseded=(*record.superseded, made.id))
            record = await self._submit(n, record)
        n.created.set_result(True)
        return await self._await_generation(n, record)

    async def _settle_legacy(self, n: _Node, record: NodeRecord) -> NodeRecord:
        """An older manifest's `blocked` record with a look id: a consent wait (live) or a
        failed look's stale id (to be superseded by a new creation); the server tells."""
        assert record.look_id is not None
        look = await self._confirm_missing(record.look_id)  # None: deleted meanwhile
        group = (look.group_id if look is not None else None) or record.group_id
        alive = look is not None and (
            _generating(look) or look.usable or look.status == "pending_consent"
        )
        if look is None or group is None or not alive:
            settled = record.evolve(status="failed")  # a new attempt supersedes it
        elif look.status == "pending_consent":
            settled = records.awaiting_consent(record.evolve(group_id=group))
        else:
            settled = records.created(record, look.id, group)
        self._save(n, settled)
        return settled

    async def _submit(self, n: _Node, record: NodeRecord) -> NodeRecord:
        """Send the create while holding a job slot; its key is journaled first."""
        await self._take_slot(n)
        if self._stopping:
            raise _Stop
        record, replay = self._with_key(n, record)
        if replay and time.time() - (record.submitted_at or 0.0) > KEY_TTL:
            found = await self._reconcile(n, record)
            if found is not None:
                return found
            record, replay = self._with_key(n, record.evolve(status="pending"))
        if not replay and self.budget and not self.budget.spend(n.node, n.batch.plan.prices):
            self.stop("max_credits")  # a replayed key is free; a new one would pass the budget
            raise _Stop
        self._save(n, record)
        body = substitute(n.node.template, lambda k, a: self._resolve(n, k, a))
        body["name"] = n.node.name
        assert record.idempotency_key is not None
        self.reporter.event(Event(n.address, "submitted", recipe=n.batch.label))
        key = record.idempotency_key
        async for attempt in self._rate_limit_policy():
            with attempt:
                look, group = await self._sending(
                    self.client.create_avatar(body, idempotency_key=key), job=True
                )
        self.slots.succeeded()
        record = records.created(record, look.id, group.id)
        self._save(n, record)
        self.reporter.event(Event(n.address, "created", look.id, n.batch.label, look.id, group.id))
        if replay and n.node.name and look.name != n.node.name:
            # Renamed in the recipe since the answer was lost: the replay has the old name.
            await self.client.rename_look(look.id, n.node.name)
        return record

    def _rate_limit_policy(self) -> AsyncRetrying:
        """Beyond the client's own retries, a 429 storm never fails a node: it waits.

        Only the node timeout ends it; the slot limit has already been lowered by then.
        A wait that would end past it (Retry-After: 999999) is not slept: the node fails now.
        """
        return AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, ApiError) and e.status == 429),
            wait=wait_retry_after(wait_exponential(multiplier=1, max=60) + wait_random(0, 1)),
            stop=stop_before_delay(self.options.node_timeout),
            reraise=True,
        )

    async def _reconcile(self, n: _Node, record: NodeRecord) -> NodeRecord | None:
        """Past the key's lifetime, adopt what a lost answer made."""
        look = await self._find_made(n, record)
        if look is None:
            return None
        found = record.evolve(status="processing", look_id=look.id, group_id=look.group_id)
        self._save(n, found)
        return found

    async def _adopt(self, n: _Node, record: NodeRecord) -> NodeRecord | None:
        """A look made here whose record was lost (one side of a merge kept, an older
        manifest restored, a journal deleted): found by name in its avatar's group, as a
        lost answer is (_reconcile), and recorded instead of paid for again."""
        if not self._may_exist(n):
            return None
        # One attempt at least was made, by this tool: prune treats it as its own.
        found = await self._reconcile(n, record.evolve(attempts=max(1, record.attempts)))
        if found is None:
            return None
        assert found.group_id is not None
        # Older looks of the name, unrecorded too (the record lost with a replaced look's
        # superseded ids): made here for this address all the same, so prune deletes them.
        taken = self._recorded(n)
        listing = await self._list_group(found.group_id)
        older = [look.id for look in unrecorded_looks(listing, found.group_id, n.node.name, taken)]
        if older:
            found = found.evolve(superseded=(*found.superseded, *older))
            self._save(n, found)
        self.reporter.event(
            Event(n.address, "adopted", str(found.look_id), n.batch.label, *_ids(found))
        )
        return found

    def _may_exist(self, n: _Node) -> bool:
        group = adoption_group(n.node, n.batch.store.nodes, self._started)
        if group is None or group != self._upstream_group(n):
            return False
        if id(n.batch) not in self._shared_names:
            self._shared_names[id(n.batch)] = shared_names(n.batch.plan.nodes.values())
        return (n.node.avatar, n.node.name) not in self._shared_names[id(n.batch)]

    async def _list_group(self, group_id: str) -> list[LookInfo]:
        """A group's looks, listed once per run: every caller looks for a look made before
        this run, which any listing made during it shows."""
        task = self._listings.get(group_id)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self.client.list_looks(group_id=group_id))
            self._listings[group_id] = task
        return await asyncio.shield(task)

    async def _find_made(self, n: _Node, record: NodeRecord) -> LookInfo | None:
        """The look a send whose answer was lost made, found by its name in its group.

        Looks recorded anywhere (superseded ones included) and failed looks are not it. A
        base that made a new group is looked for in the groups of its name created since
        it was sent, never in older ones (which may be avatars made by hand).
        """
        name = record.name or n.node.name
        known = record.group_id or self._upstream_group(n)
        if known is not None:
            groups = [known]
        else:
            since = (record.submitted_at or 0.0) - 60  # clocks differ
            listed = await self.client.list_groups()
            groups = [g.id for g in listed if g.name == name and g.created_at >= since]
        taken = self._recorded(n) | set(record.superseded)
        for group in groups:
            looks = unrecorded_looks(await self._list_group(group), group, name, taken)
            if looks:
                return looks[-1]  # the newest: an older one is a look made before it
        return None

    def _recorded(self, n: _Node) -> set[str | None]:
        """Looks a record holds: n's manifest, or another one made them (in this run or
        beside it: another recipe's look in a shared group may bear one of our names)."""
        taken: set[str | None] = set(self.options.recorded_elsewhere)
        for batch in self.batches:
            taken |= recorded_ids(batch.store.nodes.values(), made_only=batch is not n.batch)
        return taken

    def _upstream_group(self, n: _Node) -> str | None:
        for dep in n.node.depends_on:
            rec = n.batch.store.nodes.get(dep)
            if rec is not None and rec.group_id and rec.kind in ("base", "look"):
                return rec.group_id
        group = n.node.template.get("avatar_group_id")
        return str(group) if group else None

    async def _await_generation(self, n: _Node, record: NodeRecord) -> Outcome:
        assert record.look_id is not None and record.group_id is not None
        started = time.monotonic()
        deadline = started + self.options.node_timeout

        async def until(predicate: Callable[[LookInfo], bool]) -> LookInfo | None:
            assert record.look_id is not None and record.group_id is not None
            remaining = max(0.0, deadline - time.monotonic())
            return await self.poller.wait(
                record.group_id, record.look_id, started, predicate, remaining, chain=n.chain
            )

        try:
            look = await until(lambda look: not _generating(look))
            if look is not None and look.usable:
                self._pledge_slots(n)
            self._drop_slot(n)
            if look is not None and look.status == "pending_consent":
                self._save(n, records.awaiting_consent(n.record or record))
                look = await until(lambda look: look.status not in ("pending_consent", None))
                if look is not None and _generating(look):
                    self.slots.force()  # approved: its generation now runs on the server
                    n.holding = True
                    look = await until(lambda look: not _generating(look))
        except TimeoutError:
            return self._timed_out(n)
        if look is None:
            look = await self._confirm_missing(record.look_id)
            if look is None:
                return self._fail(
                    n, "missing", f"look {record.look_id} no longer exists", "missing"
                )
        if not look.usable:
            code = look.error.code if look.error else "generation_failed"
            message = look.error.message if look.error else f"look ended {look.status}"
            return self._fail(n, code, message, status="failed")
        self._complete(n, n.record or record, look)
        return "completed"

    async def _confirm_missing(self, look_id: str) -> LookInfo | None:
        """The look as a GET shows it, once listings lost sight of it; None on a 404."""
        try:
            look = await self.client.get_look(look_id)
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return look

    def _consent_url(self, n: _Node) -> str | None:
        assert n.node.avatar is not None
        rec = n.batch.store.nodes.get(consent_address(n.node.avatar))
        return rec.consent_url if rec is not None else None

    def _timed_out(self, n: _Node) -> Outcome:
        record = n.record
        assert record is not None
        if record.status == "awaiting_consent":
            url = self._consent_url(n) or "run `looks consent` for the URL"
            message = f"waiting for consent approval: {url}"
            self._save(n, record.evolve(error=ErrorInfo("consent_pending", message)))
            self._report_failure(n, "blocked", message, EventError("consent_pending", message))
            return "blocked"
        minutes = self.options.node_timeout / 60
        return self._fail(n, "timeout", f"still {record.status} after {minutes:g} min", status=None)

    def _complete(self, n: _Node, record: NodeRecord, look: LookInfo) -> None:
        self._save(
            n,
            record.evolve(
                status="completed",
                look_id=look.id,
                group_id=look.group_id or record.group_id,
                preview_image_url=look.preview_image_url,
                error=None,
            ),
        )
        group_id = look.group_id or record.group_id
        self.reporter.event(
            Event(n.address, "completed", look.id, n.batch.label, look.id, group_id)
        )

    # -- bookkeeping -----------------------------------------------------------------------

    def _save(self, n: _Node, record: NodeRecord) -> None:
        try:
            n.batch.store.record(record)
        except StateWriteError as e:
            # Not journaled, so not acted on: the node ends here, as it was on disk.
            self._write_failed(e)
            raise _Stop from None

    def _maybe_fold(self, store: ManifestStore) -> None:
        now = time.monotonic()
        due = now - self._last_fold > FOLD_EVERY_SECONDS
        enough = max(FOLD_EVERY_CHANGES, 3 * len(store.nodes))
        if store.pending_changes >= enough or (due and store.pending_changes):
            try:
                store.fold()
            except StateWriteError as e:
                self._write_failed(e)
            self._last_fold = now

    def _label(self, n: _Node) -> str:
        return f"{n.batch.label}: {n.address}" if n.batch.label else n.address

    def _tick(self) -> None:
        counts = Counter(self.result.counts)
        counts["in_flight"] = self.slots.in_use
        self.reporter.counts(counts, self._total)

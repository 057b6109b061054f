"""A run's graph bookkeeping, kept apart from the work, as graphlib keeps a graph's.

Which node waits on which, and what became of each: a node's dependents wait until it is
done (completed, or known never to be), a consent only until its base is created (its
group known). The work itself (engine/steps/) never touches these futures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from .manifest import NodeRecord
from .plan import PlanAction, PlanNode
from .runs import Batch, Outcome


@dataclass(frozen=True, eq=False)
class GraphNode:
    """One node of a run: the plan's action for an address, in its batch."""

    action: PlanAction
    node: PlanNode
    batch: Batch
    priority: int = 1  # generations on the longest chain from it down (itself included)
    depth: int = 0  # generations on the longest chain down to it (itself included)

    @property
    def address(self) -> str:
        return self.action.address

    @property
    def record(self) -> NodeRecord | None:
        return self.batch.store.nodes.get(self.address)

    @property
    def runs(self) -> bool:
        return _runs(self.action)

    @property
    def chain(self) -> int:
        """Generations on the longest chain through it: its place on the critical path."""
        return self.depth + self.priority - (1 if self.runs else 0)

    @property
    def rank(self) -> int:
        """Slot order: the longest chain through it first (a chain's last look too, not
        only its first), then the longest chain still to run from it."""
        return self.chain << 24 | min(self.priority, (1 << 24) - 1)


class NodeGraph:
    """The nodes of a run's batches, what each waits for, and each one's outcome."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self.nodes: list[GraphNode] = []
        self._deps: dict[GraphNode, list[GraphNode]] = {}
        self._dependents: dict[GraphNode, list[GraphNode]] = {}
        for batch in batches:
            self._add(batch)
        loop = asyncio.get_running_loop()
        # done: True once completed, False if it will not be; created: its ids are known.
        self._done = {n: loop.create_future() for n in self.nodes}
        self._created = {n: loop.create_future() for n in self.nodes}
        self._outcomes: dict[GraphNode, Outcome] = {}
        self._started: set[GraphNode] = set()
        for n in self.nodes:
            if not n.runs:  # kept: ready from the start
                self._done[n].set_result(True)
                self._created[n].set_result(True)

    def _add(self, batch: Batch) -> None:
        actions = [a for a in batch.plan.actions if a.node is not None]  # orphans: not run
        deps: dict[str, list[str]] = {}
        dependents: dict[str, list[PlanAction]] = {a.address: [] for a in actions}
        for action in actions:
            assert action.node is not None
            deps[action.address] = [d for d in action.node.depends_on if d in dependents]
            for dep in deps[action.address]:
                dependents[dep].append(action)
        priority: dict[str, int] = {}
        for action in reversed(actions):  # dependents come after what they depend on
            below = [priority[d.address] for d in dependents[action.address] if _runs(d)]
            priority[action.address] = (1 if _runs(action) else 0) + max(below, default=0)
        depth: dict[str, int] = {}
        for action in actions:
            above = [depth[d] for d in deps[action.address]]
            depth[action.address] = (1 if _runs(action) else 0) + max(above, default=0)
        by_address: dict[str, GraphNode] = {}
        for action in actions:
            assert action.node is not None
            address = action.address
            n = GraphNode(action, action.node, batch, priority[address], depth[address])
            by_address[action.address] = n
            self._deps[n] = [by_address[d] for d in deps[address]]
            for upstream in self._deps[n]:
                self._dependents.setdefault(upstream, []).append(n)
            self.nodes.append(n)

    @property
    def work(self) -> list[GraphNode]:
        """The nodes this run works on (the others are kept as they are)."""
        return [n for n in self.nodes if n.runs]

    async def blocker(self, n: GraphNode) -> str | None:
        """Wait for n's upstreams: the first that will not be ready, or None once all are."""
        for dep in self._deps[n]:
            ready = self._created[dep] if n.node.kind == "consent" else self._done[dep]
            # Shielded: cancelling this node (an interrupt) must not cancel the future the
            # upstream shares with its other dependents and will still resolve.
            if not await asyncio.shield(ready):
                return dep.address
        return None

    def start(self, n: GraphNode) -> None:
        self._started.add(n)

    def started(self, n: GraphNode) -> bool:
        return n in self._started

    def created(self, n: GraphNode) -> None:
        """n's ids (its group) are known: a consent waiting on it may start."""
        if not self._created[n].done():
            self._created[n].set_result(True)

    def finish(self, n: GraphNode, outcome: Outcome) -> None:
        self._outcomes[n] = outcome
        if outcome == "completed":
            self.created(n)  # renamed or checked: its ids are known too
        self._done[n].set_result(outcome == "completed")

    def release(self, n: GraphNode) -> None:
        """n will do nothing more: whatever still waits on it stops waiting (and stops)."""
        for future in (self._created[n], self._done[n]):
            if not future.done():
                future.set_result(False)

    def unblocked_by(self, n: GraphNode) -> list[GraphNode]:
        """The nodes that n's completion lets start: all their other upstreams are done."""

        def ready(dep: GraphNode) -> bool:
            done = self._done[dep]
            return dep is n or (done.done() and done.result())

        return [
            d
            for d in self._dependents.get(n, [])
            if d.runs and d not in self._started and all(ready(u) for u in self._deps[d])
        ]

    def outcome(self, n: GraphNode) -> Outcome | None:
        """What became of n; None when it never ran (stopped, interrupted)."""
        return self._outcomes.get(n)


def _runs(action: PlanAction) -> bool:
    return action.action in ("create", "adopt", "move", "reuse", "replace", "retry", "update")

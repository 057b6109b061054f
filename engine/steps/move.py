"""The move step: a look re-keyed by a recipe's `moved` entry keeps its look, paid once.

The record at the old address is journaled at the new one before the old one is
forgotten, so a crash loses neither; nothing is generated, and the look is renamed if its
name changed.
"""

from __future__ import annotations

from .. import records
from ..node_graph import GraphNode
from ..progress import Event
from ..run_context import RunContext
from ..runs import Outcome
from .rename import rename


def rekey(ctx: RunContext, n: GraphNode, source: str) -> None:
    """Move the record at `source` to n's address (a `moved` entry)."""
    store = n.batch.store
    old = store.nodes.get(source)
    if old is None:
        return  # re-keyed by a run that stopped before it renamed
    ctx.save(n, records.moved(old, n.address))
    store.forget(source)


async def moved(ctx: RunContext, n: GraphNode) -> Outcome:
    """A re-keyed look: nothing is generated; renamed if its name changed."""
    record = n.record
    assert record is not None
    if record.look_id is not None and record.name != n.node.name:
        return await rename(ctx, n)
    ctx.reporter.event(Event(n.address, "moved", n.action.moved_from or "", n.batch.label))
    return "completed"

"""The rename step: a look whose name alone changed is renamed, not made again."""

from __future__ import annotations

from .. import records
from ..node_graph import GraphNode
from ..progress import Event
from ..run_context import RunContext
from ..runs import Outcome


async def rename(ctx: RunContext, n: GraphNode) -> Outcome:
    record = n.record
    assert record is not None and record.look_id is not None and n.node.name is not None
    await ctx.client.rename_look(record.look_id, n.node.name)
    ctx.save(n, records.renamed(record, n.node.name))
    ctx.reporter.event(Event(n.address, "renamed", n.node.name, n.batch.label))
    return "completed"

"""The check step: a recipe's `existing` look must be completed to be built on."""

from __future__ import annotations

from .. import records
from ..node_graph import GraphNode
from ..run_context import RunContext
from ..runs import Outcome


async def check_existing(ctx: RunContext, n: GraphNode) -> Outcome:
    look_id = str(n.node.template["look_id"])
    look = await ctx.client.get_look(look_id)
    if not look.usable:
        status = look.status or "not usable"
        message = f"existing look {look_id} is {status}; only a completed look can be built on"
        return ctx.fail(n, "look_not_ready", message, status="failed")
    return ctx.complete(n, records.in_group(ctx.record_for(n), look.group_id), look)

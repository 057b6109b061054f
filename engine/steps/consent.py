"""The consent step: start a digital twin's consent flow, once its base's group exists."""

from __future__ import annotations

from .. import records
from ..node_graph import GraphNode
from ..progress import Event
from ..run_context import RunContext
from ..runs import Outcome


async def start_consent(ctx: RunContext, n: GraphNode) -> Outcome:
    base = n.batch.store.nodes[n.node.depends_on[0]]
    assert base.group_id is not None
    record, _ = ctx.with_key(n, records.in_group(ctx.record_for(n), base.group_id))
    ctx.save(n, record)
    assert record.idempotency_key is not None
    _, url = await ctx.sending(
        ctx.client.start_consent(
            base.group_id,
            reroute_url=n.node.template.get("reroute_url"),
            idempotency_key=record.idempotency_key,
        )
    )
    ctx.save(n, records.consent_started(record, url))
    ctx.reporter.event(
        Event(n.address, "consent", f"the subject must approve: {url}", n.batch.label)
    )
    return "completed"

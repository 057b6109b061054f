"""The await step: a look generates on the server until the poller sees it end.

A twin's look may first wait for its subject's consent (recorded `awaiting_consent`);
its job slot is given back meanwhile and taken again once the generation runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import records
from ..client import LookInfo
from ..errors import ApiError
from ..manifest import ErrorInfo, NodeRecord
from ..node_graph import GraphNode
from ..plan import consent_address
from ..progress import EventError
from ..run_context import RunContext
from ..runs import Outcome


def generating(look: LookInfo) -> bool:
    return look.status in (None, "processing", "pending", "submitted")


async def await_generation(ctx: RunContext, n: GraphNode, record: NodeRecord) -> Outcome:
    assert record.look_id is not None and record.group_id is not None
    started = time.monotonic()
    deadline = started + ctx.options.node_timeout

    async def until(predicate: Callable[[LookInfo], bool]) -> LookInfo | None:
        assert record.look_id is not None and record.group_id is not None
        remaining = max(0.0, deadline - time.monotonic())
        return await ctx.poller.wait(
            record.group_id, record.look_id, started, predicate, remaining, chain=n.chain
        )

    try:
        look = await until(lambda look: not generating(look))
        if look is not None and look.usable:
            ctx.pledge_unblocked(n)
        ctx.drop_slot(n)
        if look is not None and look.status == "pending_consent":
            ctx.save(n, records.awaiting_consent(n.record or record))
            look = await until(lambda look: look.status not in ("pending_consent", None))
            if look is not None and generating(look):
                ctx.hold_slot(n)  # approved: its generation now runs on the server
                look = await until(lambda look: not generating(look))
    except TimeoutError:
        return _timed_out(ctx, n)
    if look is None:
        look = await confirm_missing(ctx, record.look_id)
        if look is None:
            return ctx.fail(n, "missing", f"look {record.look_id} no longer exists", "missing")
    if not look.usable:
        code = look.error.code if look.error else "generation_failed"
        message = look.error.message if look.error else f"look ended {look.status}"
        return ctx.fail(n, code, message, status="failed")
    return ctx.complete(n, n.record or record, look)


async def confirm_missing(ctx: RunContext, look_id: str) -> LookInfo | None:
    """The look as a GET shows it, once listings lost sight of it; None on a 404."""
    try:
        look = await ctx.client.get_look(look_id)
    except ApiError as e:
        if e.status == 404:
            return None
        raise
    return look


def _consent_url(ctx: RunContext, n: GraphNode) -> str | None:
    assert n.node.avatar is not None
    rec = n.batch.store.nodes.get(consent_address(n.node.avatar))
    return rec.consent_url if rec is not None else None


def _timed_out(ctx: RunContext, n: GraphNode) -> Outcome:
    record = n.record
    assert record is not None
    if record.status == "awaiting_consent":
        url = _consent_url(ctx, n) or "run `looks consent` for the URL"
        message = f"waiting for consent approval: {url}"
        ctx.save(n, records.noted(record, ErrorInfo("consent_pending", message)))
        ctx.report_failure(n, "blocked", message, EventError("consent_pending", message))
        return "blocked"
    minutes = ctx.options.node_timeout / 60
    return ctx.fail(n, "timeout", f"still {record.status} after {minutes:g} min", status=None)

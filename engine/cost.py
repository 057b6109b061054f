"""What a plan would spend, in credits, and the budget a run may not pass. Pure: no I/O.

Only new generations are paid: a base made from a photo, a video (digital twin) or a
prompt, and a prompt look. Uploads, consent flows, renames, adopted and existing looks,
and anything kept as it is cost nothing; a replacement or a retry is a new generation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from engine.plan import Plan, PlanAction, PlanNode
from engine.recipe import CreditPrices

CostKind = Literal["photo", "digital_twin", "prompt", "look"]
COST_KINDS: tuple[CostKind, ...] = ("photo", "digital_twin", "prompt", "look")
_PAID_ACTIONS = frozenset({"create", "replace", "retry"})


def cost_kind(node: PlanNode) -> CostKind | None:
    """The kind of paid generation making this node is, or None when it is free."""
    kind = node.template.get("type")
    if node.kind == "base" and kind in ("photo", "digital_twin", "prompt"):
        base: CostKind = kind
        return base
    if node.kind == "look" and kind == "prompt":
        return "look"
    return None  # uploads, consent flows, existing bases and adopted looks


def unit_price(node: PlanNode, prices: CreditPrices) -> Decimal:
    """Credits one generation of this node costs (0 when it is free)."""
    kind = cost_kind(node)
    return Decimal(0) if kind is None else Decimal(getattr(prices, kind))


def charged(action: PlanAction) -> bool:
    """Whether carrying out the action sends a new, paid generation.

    A retry that picks up a generation already running, or a twin waiting for consent,
    pays nothing more. A resumed send whose answer was lost is counted: the estimate errs
    high, never low, since the replay is free only if the first send went through.
    """
    if action.node is None or action.action not in _PAID_ACTIONS:
        return False
    if cost_kind(action.node) is None:
        return False
    record = action.record
    if action.action == "retry" and record is not None and record.look_id is not None:
        if record.status == "processing":
            return False
        consent = record.error is None or record.error.code == "consent_pending"
        if record.status == "blocked" and consent:
            return False
    return True


def action_credits(action: PlanAction, prices: CreditPrices) -> Decimal:
    """Credits this action spends."""
    if not charged(action):
        return Decimal(0)
    assert action.node is not None
    return unit_price(action.node, prices)


@dataclass(frozen=True)
class LineItem:
    """`count` generations of one kind at one price."""

    kind: CostKind
    count: int
    price: Decimal

    @property
    def credits(self) -> Decimal:
        return self.count * self.price

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "price": json_number(self.price),
            "credits": json_number(self.credits),
        }


@dataclass(frozen=True)
class Estimate:
    """The credits plans would spend, itemised by kind and price."""

    items: tuple[LineItem, ...] = ()

    @property
    def credits(self) -> Decimal:
        return sum((item.credits for item in self.items), Decimal(0))

    def describe(self) -> str:
        """`6 credits — photo 2 × 1, prompt 1 × 1, look 12 × 0.25`."""
        total = credits_text(self.credits)
        if not self.items:
            return total
        parts = [f"{i.kind} {i.count} × {number_text(i.price)}" for i in self.items]
        return f"{total} — {', '.join(parts)}"

    def line(self) -> str:
        return f"Cost: {self.describe()}"

    def to_json(self) -> list[dict[str, Any]]:
        return [item.to_json() for item in self.items]


def estimate(plans: Iterable[Plan]) -> Estimate:
    """What applying these plans would spend; each plan is priced by its own recipe."""
    counts: Counter[tuple[CostKind, Decimal]] = Counter()
    for plan in plans:
        for action in plan.actions:
            if charged(action):
                assert action.node is not None
                kind = cost_kind(action.node)
                assert kind is not None
                counts[kind, unit_price(action.node, plan.prices)] += 1
    order = sorted(counts, key=lambda key: (COST_KINDS.index(key[0]), key[1]))
    return Estimate(tuple(LineItem(kind, counts[kind, price], price) for kind, price in order))


class Budget:
    """A ceiling on what one run spends: asked before every new paid generation is sent."""

    def __init__(self, limit: Decimal) -> None:
        self.limit = limit
        self.spent = Decimal(0)

    def spend(self, node: PlanNode, prices: CreditPrices) -> bool:
        """Count the node's generation, or False (counting nothing) if it would pass the limit."""
        price = unit_price(node, prices)
        if self.spent + price > self.limit:
            return False
        self.spent += price
        return True

    def stopped_line(self) -> str:
        """What apply says when the budget stopped it."""
        return (
            f"Budget reached: {credits_text(self.spent)} sent; the next generation would pass"
            f" --max-credits {number_text(self.limit)}, so submitting stopped."
            " Raise it and run apply again to finish."
        )


def number_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 12, 0.25, 1.5."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def credits_text(value: Decimal) -> str:
    return f"{number_text(value)} credit" + ("" if value == 1 else "s")


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)

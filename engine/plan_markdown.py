"""A plan as a pull-request comment, in the shape tfcmt and Atlantis users know.

Pure and deterministic (no timestamps, no ids of the run), so a bot can find its comment by
the marker on the first line and update it in place. Everything that comes from a recipe,
a manifest or a server is escaped: a look name cannot break the table, run HTML or
mention someone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.cost import action_credits, estimate, number_text
from engine.plan import Plan, PlanAction
from engine.report import merge_summaries, summary_line

MARKER = "<!-- looks-plan"
MAX_CHARS = 65_536  # GitHub refuses a longer comment: the bot would post nothing
MAX_LISTED = 50  # looks named in each warning
_ESCAPED = re.compile(r"([\\`*_\[\]|~#])")
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class RecipePlan:
    """One recipe's plan, labelled as the command line named the recipe."""

    label: str
    plan: Plan


def text(value: str) -> str:
    """Plain text safe in Markdown, a table cell included."""
    one_line = " ".join(value.split())
    html = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A zero-width space after @ keeps a name like "@team" from notifying anyone.
    return _ESCAPED.sub(r"\\\1", html).replace("@", "@\u200b")


def code(value: str) -> str:
    """An inline code span safe in a table cell, whatever backticks or pipes value holds."""
    one_line = " ".join(value.split()).replace("|", "\\|")
    longest = max((len(m) for m in _BACKTICKS.findall(one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def code_block(body: str, info: str = "") -> str:
    """A fenced block no line of body can close: the fence outgrows its backtick runs."""
    longest = max((len(m) for m in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body.rstrip(chr(10))}\n{fence}"


def render(recipes: Sequence[RecipePlan], full_plan: str) -> str:
    """The comment: marker, title, summary, warnings, actions table, full plan."""
    plans = [r.plan for r in recipes]
    labels = [r.label for r in recipes]
    marker = " ".join(" ".join(labels).split())  # one line
    while "--" in marker:  # "--->" becomes "- -->" after one pass: until none is left
        marker = marker.replace("--", "- -")
    cost = estimate(plans)
    lines = [
        f"{MARKER}: {marker} -->",
        f"### looks plan: {', '.join(text(label) for label in labels)}",
        "",
        f"**{text(summary_line(merge_summaries(plans)))}** {text(cost.line())}",
    ]
    lines += _warnings(recipes)
    table = _table(recipes)
    details = code_block(full_plan, "text")
    whole = _compose(lines, table, details)
    if _size(whole) <= MAX_CHARS:
        return whole
    # Too long for one comment: the full plan goes first, then the table's tail.
    command = code(" ".join(["looks plan", *labels]))
    details = f"Too long for a comment: run {command} to see it."
    without_plan = _compose(lines, table, details)
    if _size(without_plan) <= MAX_CHARS:
        return without_plan
    header, rows = table[:2], table[2:]

    def cut(k: int) -> str:
        more = f"… and {len(rows) - k} more actions: {command} lists them all."
        return _compose(lines, [*header, *rows[:k], "", more], details)

    return cut(_most(len(rows), lambda k: _size(cut(k))))


def _size(comment: str) -> int:
    """Characters as GitHub counts them (UTF-16 units: an emoji is two)."""
    return len(comment.encode("utf-16-le")) // 2


def _compose(head: list[str], table: list[str], details: str) -> str:
    body = [*head, "", *table, "", "<details><summary>Full plan</summary>", "", details]
    return "\n".join([*body, "", "</details>"]) + "\n"


def _most(count: int, size: Callable[[int], int]) -> int:
    """The largest k <= count whose size(k) fits in MAX_CHARS (size grows with k)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if size(middle) <= MAX_CHARS:
            low = middle
        else:
            high = middle - 1
    return low


def _warnings(recipes: Sequence[RecipePlan]) -> list[str]:
    superseded = _listed(recipes, "replace")
    orphaned = _listed(recipes, "orphan")
    if not superseded and not orphaned:
        return []
    lines = ["", "> [!WARNING]"]
    if superseded:
        lines.append(
            f"> **{_looks(len(superseded))} will be superseded** by new generations; the old"
            f" {_them(len(superseded))} in the account until `looks prune` deletes"
            f" {_it(len(superseded))}:"
        )
        lines += [f"> - {item}" for item in _capped(superseded)]
    if orphaned:
        if superseded:
            lines.append(">")
        lines.append(
            f"> **{_looks(len(orphaned))} {_is(len(orphaned))} no longer in the recipe**;"
            f" `looks prune` (or `apply --prune`) deletes {_it(len(orphaned))}:"
        )
        lines += [f"> - {item}" for item in _capped(orphaned)]
    return lines


def _listed(recipes: Sequence[RecipePlan], action: str) -> list[str]:
    items = []
    for r in recipes:
        for a in r.plan.actions:
            if a.action != action or a.record is None or a.record.look_id is None:
                continue
            where = f"{text(r.label)}: " if len(recipes) > 1 else ""
            items.append(f"{where}{code(a.address)} ({text(a.record.look_id)})")
    return items


def _capped(items: list[str]) -> list[str]:
    """The first MAX_LISTED items: the table lists them all; a comment has a size limit."""
    if len(items) <= MAX_LISTED:
        return items
    return [*items[:MAX_LISTED], f"… and {len(items) - MAX_LISTED} more"]


def _looks(n: int) -> str:
    return f"{n} look" + ("" if n == 1 else "s")


def _is(n: int) -> str:
    return "is" if n == 1 else "are"


def _it(n: int) -> str:
    return "it" if n == 1 else "them"


def _them(n: int) -> str:
    return "one stays" if n == 1 else "ones stay"


def _table(recipes: Sequence[RecipePlan]) -> list[str]:
    shown = [(r, a) for r in recipes for a in r.plan.actions if a.action != "keep"]
    if not shown:
        return ["No changes: everything is up to date."]
    several = len(recipes) > 1
    header = ["recipe"] if several else []
    header += ["address", "action", "credits", "reason"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r, a in shown:
        cells = [text(r.label)] if several else []
        cells += [code(a.address), a.verb, _credits(r.plan, a), text(a.reason)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _credits(plan: Plan, action: PlanAction) -> str:
    return number_text(action_credits(action, plan.prices))

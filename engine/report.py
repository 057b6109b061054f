"""Text renderings of plans, graphs and statuses. Pure functions: strings in, strings out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .cost import action_credits, estimate, json_number
from .plan import REF_KEYS, VERBS, FieldChange, Plan, PlanAction

_SUMMARY_WORDS = {
    "create": "to create",
    "check": "to check",
    "adopt": "to adopt",
    "move": "to move",
    "reuse": "to reuse",
    "update": "to update",
    "replace": "to replace",
    "retry": "to retry",
    "keep": "unchanged",
    "orphan": "orphaned",
}

# Words shown around the first difference of a changed prompt, and the most of it shown.
_CONTEXT_WORDS = 4
_MAX_SHOWN = 100


def plan_text(plans: Sequence[tuple[str, Plan]]) -> str:
    """`looks plan` for people: per recipe, one line per action that does something (with the
    changed fields under a replace), then the summary line and the cost line."""
    out: list[str] = []
    for recipe, plan in plans:
        lines = plan_lines(plan.actions)
        out.append(f"{recipe}:" + ("" if lines else " up to date"))
        out.extend(lines)
    out.append(summary_line(merge_summaries([plan for _, plan in plans])))
    out.append(estimate(plan for _, plan in plans).line())
    return "\n".join(out) + "\n"


def plan_document(plans: Sequence[tuple[str, Plan]]) -> dict[str, Any]:
    """`looks plan --json`: the same actions, with the same words, for programs."""
    actions = [
        {"recipe": recipe, **a.to_json(), "credits": json_number(action_credits(a, plan.prices))}
        for recipe, plan in plans
        for a in plan.actions
    ]
    cost = estimate(plan for _, plan in plans)
    return {
        "version": 1,
        "actions": actions,
        "summary": merge_summaries([plan for _, plan in plans]),
        "credits": json_number(cost.credits),
        "credits_breakdown": cost.to_json(),
    }


def summary_line(summary: Mapping[str, int]) -> str:
    """`Plan: N to create, N to replace, N to retry, N unchanged, N orphaned.`

    Renames, checks of existing looks and adoptions cost nothing and are rare, so
    `N to update`, `N to check` and `N to adopt` only appear when there are some.
    """
    optional = ("check", "adopt", "move", "reuse", "update")  # only when there are some
    kinds = [k for k in VERBS if k not in optional or summary.get(k)]
    parts = [f"{summary.get(k, 0)} {_SUMMARY_WORDS[k]}" for k in kinds]
    return "Plan: " + ", ".join(parts) + "."


def plan_lines(actions: Iterable[PlanAction]) -> list[str]:
    """One line per action that does something: verb, address, an upload's file and the
    reason, aligned; a replaced request's changed fields follow as `- old` / `+ new` lines."""
    shown = [a for a in actions if a.action != "keep"]
    if not shown:
        return []
    width = max(len(a.address) for a in shown)
    lines = []
    for a in shown:
        file = f"{printable(a.file)} " if a.file else ""
        lines.append(f"  {a.verb:<8} {a.address:<{width}}  {file}({printable(a.reason)})")
        if a.action != "update":  # a rename's reason already says old -> new
            lines.extend(f"{' ' * 11}{line}" for c in a.changes for line in change_lines(c))
    return lines


def change_lines(change: FieldChange) -> list[str]:
    """`- field: old` and `+ field: new`, prompts trimmed around what differs."""
    old, new = printable(_shown(change.old)), printable(_shown(change.new))
    if isinstance(change.old, str) and isinstance(change.new, str):
        old, new = trim_around_difference(old, new)
    label = change.field.replace("_", " ")
    return [f"- {label}: {_cut(old)}", f"+ {label}: {_cut(new)}"]


# Line breaks and tabs, and what a terminal would obey instead of showing: other control
# characters and the bidirectional overrides that reorder what a reviewer reads.
_LINE_BREAKS = re.compile(r"\s*[\n\r\t\v\f\x1c-\x1f\x85\u2028\u2029]\s*")
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` on one line and inert on a terminal: breaks become a space, other control
    characters their escape (a recipe's prompt must not rewrite the plan a reviewer reads)."""
    text = _LINE_BREAKS.sub(" ", text)
    return _UNSHOWABLE.sub(lambda m: ascii(m.group())[1:-1], text)


def trim_around_difference(old: str, new: str) -> tuple[str, str]:
    """Both texts cut to the words that differ, with a few words of context either side."""
    a, b = old.split(), new.split()
    same_start = 0
    while same_start < min(len(a), len(b)) and a[same_start] == b[same_start]:
        same_start += 1
    same_end = 0
    while (
        same_end < min(len(a), len(b)) - same_start
        and a[len(a) - 1 - same_end] == b[len(b) - 1 - same_end]
    ):
        same_end += 1
    start = max(0, same_start - _CONTEXT_WORDS)
    keep_end = max(0, same_end - _CONTEXT_WORDS)

    def window(words: list[str]) -> str:
        text = " ".join(words[start : len(words) - keep_end])
        return ("... " if start else "") + text + (" ..." if keep_end else "")

    return window(a), window(b)


def _shown(value: Any) -> str:
    """A request field as text: a reference by the address it points at, absent as `-`."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in REF_KEYS:
            if key in value and len(value) == 1:
                return str(value[key])
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 4].rstrip() + " ..."


def merge_summaries(plans: Sequence[Plan]) -> dict[str, int]:
    total: dict[str, int] = dict.fromkeys(VERBS, 0)
    for plan in plans:
        for kind, count in plan.summary().items():
            total[kind] = total.get(kind, 0) + count
    return total


def graph_text(plan: Plan, fmt: str) -> str:
    """The plan's graph as Mermaid or Graphviz dot, each node labelled with its action."""
    ids = {a.address: f"n{i}" for i, a in enumerate(plan.actions)}
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        for a in plan.actions:
            label = f"{a.address}<br/>{a.kind}: {a.verb}".replace('"', "'")
            lines.append(f'  {ids[a.address]}["{label}"]:::{a.verb}')
        for a in plan.actions:
            lines.extend(f"  {ids[d]} --> {ids[a.address]}" for d in a.depends_on if d in ids)
        styles = {
            "create": "#d4f7d4",
            "check": "#e8f4e8",
            "adopt": "#d4f7ef",
            "move": "#e8dcff",
            "reuse": "#d4f7ef",
            "update": "#fff3c4",
            "replace": "#ffd9b3",
            "retry": "#d6e6ff",
            "keep": "#eeeeee",
            "orphan": "#f7d4d4",
        }
        lines.extend(f"  classDef {k} fill:{c}" for k, c in styles.items())
        return "\n".join(lines) + "\n"
    lines = ["digraph looks {", "  rankdir=LR;", "  node [shape=box];"]
    for a in plan.actions:
        label = f"{a.address}\\n{a.kind}: {a.verb}".replace('"', "'")
        style = ', style="dashed"' if a.action == "orphan" else ""
        lines.append(f'  {ids[a.address]} [label="{label}"{style}];')
    for a in plan.actions:
        lines.extend(f"  {ids[d]} -> {ids[a.address]};" for d in a.depends_on if d in ids)
    lines.append("}")
    return "\n".join(lines) + "\n"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*row).rstrip() for row in rows)
    return "\n".join(out)

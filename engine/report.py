"""Text renderings of plans, graphs and statuses. Pure functions: strings in, strings out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from engine.plan import ACTION_KINDS, Plan, PlanAction

_SUMMARY_WORDS = {
    "create": "to create",
    "adopt": "to adopt",
    "move": "to move",
    "reuse": "to reuse",
    "update": "to update",
    "replace": "to replace",
    "retry": "to retry",
    "keep": "unchanged",
    "orphan": "orphaned",
}


def summary_line(summary: Mapping[str, int]) -> str:
    """`Plan: N to create, N to replace, N to retry, N unchanged, N orphaned.`

    Renames cost nothing and are rare, so `N to update` only appears when there are some.
    """
    kinds = [k for k in ACTION_KINDS if k != "update" or summary.get("update")]
    for kind in ("reuse", "move", "adopt"):  # only when there are some, after `create`
        if summary.get(kind):
            kinds.insert(1, kind)
    parts = [f"{summary.get(k, 0)} {_SUMMARY_WORDS[k]}" for k in kinds]
    return "Plan: " + ", ".join(parts) + "."


def plan_lines(actions: Iterable[PlanAction]) -> list[str]:
    """One line per action that does something: action, address and reason, aligned."""
    shown = [a for a in actions if a.action != "keep"]
    if not shown:
        return []
    width = max(len(a.address) for a in shown)
    return [f"  {a.action:<8} {a.address:<{width}}  ({a.reason})" for a in shown]


def merge_summaries(plans: Sequence[Plan]) -> dict[str, int]:
    total: dict[str, int] = dict.fromkeys(ACTION_KINDS, 0)
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
            label = f"{a.address}<br/>{a.kind}: {a.action}".replace('"', "'")
            lines.append(f'  {ids[a.address]}["{label}"]:::{a.action}')
        for a in plan.actions:
            lines.extend(f"  {ids[d]} --> {ids[a.address]}" for d in a.depends_on if d in ids)
        styles = {
            "create": "#d4f7d4",
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
        label = f"{a.address}\\n{a.kind}: {a.action}".replace('"', "'")
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

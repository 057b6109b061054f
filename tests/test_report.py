"""Text renderings: the plan summary line, action lines, merged summaries, tables."""

from __future__ import annotations

from looks.plan import Plan, PlanAction
from looks.report import graph_text, merge_summaries, plan_lines, summary_line, table


def test_summary_line_leaves_out_updates_when_there_are_none() -> None:
    counts = {"create": 3, "update": 0, "replace": 1, "retry": 2, "keep": 10, "orphan": 4}
    assert summary_line(counts) == (
        "Plan: 3 to create, 1 to replace, 2 to retry, 10 unchanged, 4 orphaned."
    )
    assert (
        summary_line({}) == "Plan: 0 to create, 0 to replace, 0 to retry, 0 unchanged, 0 orphaned."
    )


def test_summary_line_with_updates() -> None:
    assert summary_line({"update": 2, "keep": 1}) == (
        "Plan: 0 to create, 2 to update, 0 to replace, 0 to retry, 1 unchanged, 0 orphaned."
    )


def test_plan_lines_skip_keep_and_align() -> None:
    actions = [
        PlanAction("sarah", "keep", "unchanged", "base"),
        PlanAction("sarah/navy-office", "replace", "prompt changed", "look", ("sarah",)),
        PlanAction("bob", "orphan", "no longer in the recipe", "base"),
    ]
    assert plan_lines(actions) == [
        "  replace  sarah/navy-office  (prompt changed)",
        "  orphan   bob                (no longer in the recipe)",
    ]
    assert plan_lines(actions[:1]) == []


def test_merge_summaries() -> None:
    one = Plan(
        (PlanAction("a", "create", "new", "base"), PlanAction("b", "keep", "unchanged", "base"))
    )
    two = Plan(
        (PlanAction("c", "create", "new", "look"), PlanAction("d", "orphan", "gone", "look"))
    )
    assert merge_summaries([one, two]) == {
        "create": 2,
        "check": 0,
        "adopt": 0,
        "move": 0,
        "reuse": 0,
        "update": 0,
        "replace": 0,
        "retry": 0,
        "keep": 1,
        "orphan": 1,
    }


def test_graph_text_escapes_quotes_and_skips_edges_to_unknown_nodes() -> None:
    plan = Plan(
        (
            PlanAction('a"b', "create", "new", "base"),
            PlanAction("a/x", "create", "new", "look", ('a"b', "elsewhere")),
        )
    )
    assert graph_text(plan, "mermaid").splitlines()[:4] == [
        "flowchart LR",
        '  n0["a\'b<br/>base: create"]:::create',
        '  n1["a/x<br/>look: create"]:::create',
        "  n0 --> n1",
    ]
    assert graph_text(plan, "dot").splitlines()[3:6] == [
        '  n0 [label="a\'b\\nbase: create"];',
        '  n1 [label="a/x\\nlook: create"];',
        "  n0 -> n1;",
    ]


def test_table() -> None:
    assert table(
        [("sarah", "completed"), ("sarah/navy-office", "failed")], ("address", "status")
    ) == (
        "address            status\n"
        "-----------------  ---------\n"
        "sarah              completed\n"
        "sarah/navy-office  failed"
    )

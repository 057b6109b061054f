"""`looks plan` and `looks graph`: what a run would do, without doing it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine import plan_markdown
from engine.commands.validate import load_all
from engine.cost import action_credits, estimate, json_number
from engine.manifest import manifest_path_for, read_manifest
from engine.plan import Plan, build_plan
from engine.recipe import Recipe
from engine.report import graph_text, merge_summaries, plan_lines, summary_line


def recipe_label(recipe: Recipe, manifest: Path) -> str:
    """The recipe path as the manifest records it: relative to the manifest's directory."""
    try:
        return str(recipe.path.resolve().relative_to(manifest.parent.resolve()))
    except ValueError:
        return str(recipe.path.resolve())


def plan_recipe(
    recipe: Recipe,
    manifest: Path | None,
    only: Sequence[str],
    adoptable: Mapping[str, str] | None = None,
) -> Plan:
    path = manifest or manifest_path_for(recipe.path)
    records = read_manifest(path, recipe_label(recipe, path)).nodes
    return build_plan(recipe, records, only, adoptable or {})


def run(
    paths: Sequence[Path],
    *,
    manifest: Path | None,
    only: Sequence[str],
    fmt: str,
    detailed_exitcode: bool,
    refresh: bool = False,
) -> int:
    """Print the plans as `fmt` (text, json or markdown)."""
    recipes = load_all(paths)
    adoptable: list[dict[str, str]] = [{} for _ in recipes]
    if refresh:
        from engine.commands.lifecycle import refresh_recipes

        adoptable = refresh_recipes(recipes, manifest)
    plans = [plan_recipe(r, manifest, only, a) for r, a in zip(recipes, adoptable, strict=True)]
    if fmt == "json":
        actions = [
            {
                "recipe": str(r.path),
                **a.to_json(),
                "credits": json_number(action_credits(a, p.prices)),
            }
            for r, p in zip(recipes, plans, strict=True)
            for a in p.actions
        ]
        summary = merge_summaries(plans)
        cost = estimate(plans)
        document = {
            "version": 1,
            "actions": actions,
            "summary": summary,
            "credits": json_number(cost.credits),
            "credits_breakdown": cost.to_json(),
        }
        print(json.dumps(document, indent=2))
    elif fmt == "markdown":
        labelled = [
            plan_markdown.RecipePlan(str(r.path), p) for r, p in zip(recipes, plans, strict=True)
        ]
        print(plan_markdown.render(labelled, _text(recipes, plans)), end="")
    else:
        print(_text(recipes, plans), end="")
    if detailed_exitcode and any(p.has_changes for p in plans):
        return 2
    return 0


def _text(recipes: Sequence[Recipe], plans: Sequence[Plan]) -> str:
    lines: list[str] = []
    for recipe, plan in zip(recipes, plans, strict=True):
        shown = plan_lines(plan.actions)
        lines.append(f"{recipe.path}:" + ("" if shown else " up to date"))
        lines.extend(shown)
    lines.append(summary_line(merge_summaries(plans)))
    lines.append(estimate(plans).line())
    return "\n".join(lines) + "\n"


def run_graph(path: Path, *, manifest: Path | None, fmt: str) -> int:
    (recipe,) = load_all([path])
    print(graph_text(plan_recipe(recipe, manifest, ()), fmt), end="")
    return 0

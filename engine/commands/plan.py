"""`looks plan` and `looks graph`: what a run would do, without doing it."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine import plan_markdown
from engine.commands.validate import load_all
from engine.gcpause import collector_paused
from engine.manifest import manifest_path_for, read_manifest
from engine.manifest import recipe_label as label_for
from engine.plan import Plan, build_plan
from engine.recipe import MAX_LOOKS, Recipe
from engine.report import graph_text, plan_document, plan_text


def recipe_label(recipe: Recipe, manifest: Path) -> str:
    """The recipe path as the manifest records it: relative to the manifest's directory."""
    return label_for(recipe.path, manifest)


def plan_recipe(
    recipe: Recipe,
    manifest: Path | None,
    only: Sequence[str],
    adoptable: Mapping[str, str] | None = None,
) -> Plan:
    path = manifest or manifest_path_for(recipe.path)
    records = read_manifest(path, recipe_label(recipe, path)).nodes
    with collector_paused():
        return build_plan(recipe, records, only, adoptable or {})


def run(
    paths: Sequence[Path],
    *,
    manifest: Path | None,
    only: Sequence[str],
    fmt: str,
    detailed_exitcode: bool,
    refresh: bool = False,
    max_looks: int = MAX_LOOKS,
) -> int:
    """Print the plans as `fmt` (text, json or markdown)."""
    recipes = load_all(paths, max_looks=max_looks, media="optional")
    adoptable: list[dict[str, str]] = [{} for _ in recipes]
    if refresh:
        from engine.commands.lifecycle import refresh_recipes

        adoptable = refresh_recipes(recipes, manifest)
    plans = [plan_recipe(r, manifest, only, a) for r, a in zip(recipes, adoptable, strict=True)]
    print_notes(recipes, plans)
    labelled = [(str(r.path), p) for r, p in zip(recipes, plans, strict=True)]
    if fmt == "json":
        print(json.dumps(plan_document(labelled), indent=2))
    elif fmt == "markdown":
        recipe_plans = [plan_markdown.RecipePlan(label, p) for label, p in labelled]
        print(plan_markdown.render(recipe_plans, plan_text(labelled)), end="")
    else:
        print(plan_text(labelled), end="")
    if detailed_exitcode and any(p.has_changes for p in plans):
        return 2
    return 0


def print_notes(recipes: Sequence[Recipe], plans: Sequence[Plan]) -> None:
    """What the plans assume of files not on disk: one line each, on stderr."""
    for recipe, plan in zip(recipes, plans, strict=True):
        for note in plan.notes:
            print(f"looks: {recipe.path}: {note}", file=sys.stderr)


def run_graph(path: Path, *, manifest: Path | None, fmt: str, max_looks: int = MAX_LOOKS) -> int:
    (recipe,) = load_all([path], max_looks=max_looks, media="optional")
    plan = plan_recipe(recipe, manifest, ())
    print_notes([recipe], [plan])
    print(graph_text(plan, fmt), end="")
    return 0

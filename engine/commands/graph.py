"""`looks graph`: the dependency graph, each node with its planned action."""

from __future__ import annotations

from pathlib import Path

from .. import api
from ..recipe import MAX_LOOKS
from ..report import graph_text
from .plan import print_notes


def run(path: Path, *, manifest: Path | None, fmt: str, max_looks: int = MAX_LOOKS) -> int:
    plan = api.plan(path, manifest=manifest, max_looks=max_looks)
    print_notes(plan)
    (recipe,) = plan.recipes
    print(graph_text(recipe.plan, fmt), end="")
    return 0

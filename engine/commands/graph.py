"""`looks graph`: the dependency graph, each node with its planned action."""

from __future__ import annotations

from pathlib import Path

from engine import api
from engine.report import graph_text


def run(path: Path, *, manifest: Path | None, fmt: str) -> int:
    (recipe,) = api.plan(path, manifest=manifest).recipes
    print(graph_text(recipe.plan, fmt), end="")
    return 0

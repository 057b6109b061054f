"""`looks validate`: check recipes without touching the API or the manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.errors import Problem, RecipeError, UsageError
from engine.recipe import Recipe, load_recipe


def load_all(paths: Sequence[Path]) -> list[Recipe]:
    """Load every recipe; report the problems of all of them at once."""
    recipes: list[Recipe] = []
    problems: list[Problem] = []
    seen: dict[Path, Path] = {}
    for path in paths:
        # Twice the same recipe would be planned (and paid) twice, then lock out itself.
        if path.resolve() in seen:
            raise UsageError(f"{path} is {seen[path.resolve()]} again: give each recipe once")
        seen[path.resolve()] = path
        try:
            recipes.append(load_recipe(path))
        except RecipeError as e:
            problems.extend(e.problems)
    if problems:
        raise RecipeError(problems)
    return recipes


def run(paths: Sequence[Path]) -> int:
    for recipe in load_all(paths):
        looks = sum(len(a.looks) for a in recipe.avatars)
        print(
            f"{recipe.path}: ok ({_count(len(recipe.avatars), 'avatar')}, {_count(looks, 'look')})"
        )
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

"""`looks validate`: check recipes without touching the API or the manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.errors import Problem, RecipeError, UsageError
from engine.gcpause import collector_paused
from engine.recipe import MAX_LOOKS, MediaPolicy, Recipe, load_recipe


def load_all(
    paths: Sequence[Path], *, max_looks: int = MAX_LOOKS, media: MediaPolicy = "required"
) -> list[Recipe]:
    """Load every recipe; report the problems of all of them at once.

    Commands that read only the manifest, or that plan from it, pass media="optional":
    a photo that is not on disk is then no problem (CI need not hold the headshots).
    """
    recipes: list[Recipe] = []
    problems: list[Problem] = []
    seen: dict[Path, Path] = {}
    omitted = 0
    for path in paths:
        # Twice the same recipe would be planned (and paid) twice, then lock out itself.
        if path.resolve() in seen:
            raise UsageError(f"{path} is {seen[path.resolve()]} again: give each recipe once")
        seen[path.resolve()] = path
        try:
            with collector_paused():
                recipes.append(load_recipe(path, max_looks=max_looks, media=media))
        except RecipeError as e:
            problems.extend(e.problems)
            omitted += e.omitted
    if problems:
        raise RecipeError(problems, omitted=omitted)
    return recipes


def run(paths: Sequence[Path], *, max_looks: int = MAX_LOOKS) -> int:
    # validate is the checker: a path that names no file is an error here, always.
    for recipe in load_all(paths, max_looks=max_looks):
        looks = sum(len(a.looks) for a in recipe.avatars)
        print(
            f"{recipe.path}: ok ({_count(len(recipe.avatars), 'avatar')}, {_count(looks, 'look')})"
        )
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

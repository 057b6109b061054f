"""Recipes and their manifests, as every command and the Python API find them.

One place for what each of them needs first: the recipes loaded (every problem of every
recipe reported at once), the manifest of a recipe (`--manifest`, or the one beside it)
and the label the manifest records for it, the manifests opened and locked together. The
API settings from the environment are engine/settings.py's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import Problem, RecipeError, UsageError
from .gcpause import collector_paused
from .manifest import Manifest, ManifestStore, manifest_path_for, read_manifest
from .manifest import recipe_label as label_for
from .paths import resolved
from .recipe import MAX_LOOKS, MediaPolicy, Recipe, load_recipe


def load_recipes(
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
        real = resolved(path)
        if real in seen:
            raise UsageError(f"{path} is {seen[real]} again: give each recipe once")
        seen[real] = path
        try:
            with collector_paused():
                recipes.append(load_recipe(path, max_looks=max_looks, media=media))
        except RecipeError as e:
            problems.extend(e.problems)
            omitted += e.omitted
    if problems:
        raise RecipeError(problems, omitted=omitted)
    return recipes


def manifest_for(recipe: Path, manifest: Path | None = None) -> Path:
    """The manifest a command uses for a recipe: the one given, or the one beside it."""
    return manifest or manifest_path_for(recipe)


def recipe_label(recipe: Path, manifest: Path) -> str:
    """The recipe path as the manifest records it: relative to the manifest's directory."""
    return label_for(recipe, manifest)


def read_recipe_manifest(recipe: Recipe, manifest: Path | None = None) -> Manifest:
    """The recipe's manifest as recorded (journal replayed), read without taking its lock."""
    path = manifest_for(recipe.path, manifest)
    return read_manifest(path, recipe_label(recipe.path, path))


def open_store(recipe: Path, manifest: Path | None = None, **options: bool) -> ManifestStore:
    """The recipe's manifest, locked and open for recording."""
    path = manifest_for(recipe, manifest)
    return ManifestStore(path, recipe_label(recipe, path), **options)


@contextlib.contextmanager
def open_stores(recipes: Sequence[Recipe], manifest: Path | None) -> Iterator[list[ManifestStore]]:
    """Lock and open every recipe's manifest; release them all on the way out."""
    stores: list[ManifestStore] = []
    try:
        for recipe in recipes:
            stores.append(open_store(recipe.path, manifest))
        yield stores
    finally:
        for store in stores:
            store.close()


def count(n: int, noun: str) -> str:
    """`1 look`, `2 looks`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

"""`looks validate`: check recipes without touching the API or the manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine import api
from engine.workspace import count


def run(paths: Sequence[Path]) -> int:
    for recipe in api.validate(paths):
        looks = sum(len(a.looks) for a in recipe.avatars)
        print(f"{recipe.path}: ok ({count(len(recipe.avatars), 'avatar')}, {count(looks, 'look')})")
    return 0

"""`looks validate`: check recipes without touching the API or the manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import api
from ..recipe import MAX_LOOKS
from ..workspace import count


def run(paths: Sequence[Path], *, max_looks: int = MAX_LOOKS) -> int:
    # validate is the checker: a path that names no file is an error here, always.
    for recipe in api.validate(paths, max_looks=max_looks):
        looks = sum(len(a.looks) for a in recipe.avatars)
        print(f"{recipe.path}: ok ({count(len(recipe.avatars), 'avatar')}, {count(looks, 'look')})")
    return 0

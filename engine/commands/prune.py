"""`looks prune`: show what goes, ask, delete, and record each deletion."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .. import api
from ..errors import LooksError
from ..lifecycle import PruneOutcome
from ..recipe import MAX_LOOKS
from ..settings import api_target


def run(
    paths: Sequence[Path], *, manifest: Path | None, yes: bool, max_looks: int = MAX_LOOKS
) -> int:
    settings = api_target()
    recipes = api.validate(paths, max_looks=max_looks)
    selected = False

    def confirm(pruning: Sequence[api.Pruning]) -> bool:
        nonlocal selected
        if not any(p.items for p in pruning):
            print("Nothing to prune.")
            return True
        selected = True
        for p in pruning:
            if p.items:
                print(f"{p.recipe}:")
                for item in p.items:
                    print(f"  {item.describe()}")
        deletions = sum(item.delete for p in pruning for item in p.items)
        forgets = sum(len(p.items) for p in pruning) - deletions
        print(
            f"Prune: {deletions} look{'' if deletions == 1 else 's'} to delete,"
            f" {forgets} record{'' if forgets == 1 else 's'} to forget."
        )
        return not deletions or yes or _confirm(deletions)

    def on_outcome(recipe: Path, outcome: PruneOutcome) -> None:
        prefix = f"{recipe}: " if len(recipes) > 1 else ""
        print(f"{prefix}{outcome.describe()}", flush=True)

    outcomes = api.prune(
        recipes,
        api_key=settings.api_key,
        base_url=settings.base_url,
        request_timeout=settings.request_timeout,
        manifest=manifest,
        confirm=confirm,
        on_outcome=on_outcome,
    )
    if outcomes is None:
        return 1
    if not selected:
        return 0
    failed = sum(o.error is not None for o in outcomes)
    deleted = sum(o.item.delete and o.error is None for o in outcomes)
    forgot = sum(not o.item.delete for o in outcomes)
    print(f"Pruned: {deleted} deleted, {forgot} forgotten, {failed} failed.")
    return 1 if failed else 0


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _confirm(deletions: int) -> bool:
    """Ask on the terminal; without one, refuse rather than guess."""
    what = f"{deletions} look{'' if deletions == 1 else 's'}"
    if not _stdin_is_tty():
        raise LooksError(
            f"prune would delete {what} and stdin is not a terminal to confirm it;"
            " run it again with --yes to delete without asking"
        )
    print(f"Delete {what}? [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        return True
    print("Nothing deleted.")
    return False

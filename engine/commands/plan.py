"""`looks plan`: what a run would do, without doing it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .. import api
from ..plans import Plan
from ..recipe import MAX_LOOKS
from ..settings import api_target
from . import refresh as refresh_command


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
    recipes = api.validate(paths, max_looks=max_looks, media="optional")
    adoptable = None
    if refresh:
        # The drift goes to stderr: stdout may be --json.
        settings = api_target()
        refreshed = api.refresh(
            recipes,
            api_key=settings.api_key,
            base_url=settings.base_url,
            request_timeout=settings.request_timeout,
            manifest=manifest,
        )
        refresh_command.report(refreshed, len(recipes), sys.stderr)
        adoptable = [r.unrecorded for r in refreshed]
    plan = api.plan(recipes, manifest=manifest, only=only, adoptable=adoptable)
    print_notes(plan)
    if fmt == "json":
        print(plan.dumps())
    elif fmt == "markdown":
        print(plan.to_markdown(), end="")
    else:
        print(plan.to_text(), end="")
    if detailed_exitcode and plan.has_changes:
        return 2
    return 0


def print_notes(plan: Plan) -> None:
    """What the plans assume of files not on disk: one line each, on stderr."""
    for recipe in plan.recipes:
        for note in recipe.plan.notes:
            print(f"looks: {recipe.label}: {note}", file=sys.stderr)

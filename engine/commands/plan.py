"""`looks plan`: what a run would do, without doing it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from engine import api
from engine.commands import refresh as refresh_command
from engine.workspace import api_settings


def run(
    paths: Sequence[Path],
    *,
    manifest: Path | None,
    only: Sequence[str],
    fmt: str,
    detailed_exitcode: bool,
    refresh: bool = False,
) -> int:
    """Print the plans as `fmt` (text, json or markdown)."""
    recipes = api.validate(paths)
    adoptable = None
    if refresh:
        # The drift goes to stderr: stdout may be --json.
        base_url, key = api_settings()
        refreshed = api.refresh(recipes, api_key=key, base_url=base_url, manifest=manifest)
        refresh_command.report(refreshed, len(recipes), sys.stderr)
        adoptable = [r.unrecorded for r in refreshed]
    plan = api.plan(recipes, manifest=manifest, only=only, adoptable=adoptable)
    if fmt == "json":
        print(plan.dumps())
    elif fmt == "markdown":
        print(plan.to_markdown(), end="")
    else:
        print(plan.to_text(), end="")
    if detailed_exitcode and plan.has_changes:
        return 2
    return 0

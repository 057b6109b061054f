"""`looks refresh` (and the first half of `plan --refresh`): record the drift between the
manifests and the account."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .. import api
from ..recipe import MAX_LOOKS
from ..settings import api_target


def run(paths: Sequence[Path], *, manifest: Path | None, max_looks: int = MAX_LOOKS) -> int:
    settings = api_target()
    recipes = api.validate(paths, max_looks=max_looks)
    refreshed = api.refresh(
        recipes,
        api_key=settings.api_key,
        base_url=settings.base_url,
        request_timeout=settings.request_timeout,
        manifest=manifest,
    )
    report(refreshed, len(recipes), sys.stdout)
    return 0


def report(refreshed: Sequence[api.Refreshed], recipes: int, out: TextIO) -> None:
    """One line per drift and per look found unrecorded, or `No drift.`."""
    found = False
    for result in refreshed:
        prefix = f"{result.recipe}: " if recipes > 1 else ""
        for drift in result.drift:
            print(f"{prefix}{drift}", file=out)
            found = True
        for address, look_id in result.unrecorded.items():
            print(
                f"{prefix}{address}: unrecorded (look {look_id} exists; apply adopts it)", file=out
            )
            found = True
    if not found:
        print("No drift.", file=out)

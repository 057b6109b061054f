"""`looks apply`: run the plans of recipes against the API, resumably."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from .. import api
from ..executor import ApplyOptions
from ..progress import PROGRESS_EVERY, reporter_for
from ..recipe import MAX_LOOKS
from ..settings import api_target
from ..signals import INTERRUPTED, terminations_interrupt
from .plan import print_notes


def run(
    paths: Sequence[Path],
    *,
    manifest: Path | None,
    only: Sequence[str],
    options: ApplyOptions,
    log_json: bool,
    prune: bool = False,
    max_credits: Decimal | None = None,
    progress_every: float = PROGRESS_EVERY,
    max_looks: int = MAX_LOOKS,
) -> int:
    settings = api_target()  # bad settings fail before anything is loaded
    with terminations_interrupt():
        # A file not on disk fails only the upload that must send it (see Executor._upload).
        recipes = api.validate(paths, max_looks=max_looks, media="optional")
        result = api.apply(
            recipes,
            api_key=settings.api_key,
            base_url=settings.base_url,
            request_timeout=settings.request_timeout,
            manifest=manifest,
            only=only,
            options=options,
            max_credits=max_credits,
            prune=prune,
            reporter=reporter_for(sys.stdout, log_json=log_json, every=progress_every),
            on_plan=print_notes,
        )
    if result.stopped == "interrupted":
        return INTERRUPTED
    return 0 if result.ok else 1

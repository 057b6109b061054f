"""`looks consent`: every digital twin's consent status and URL; start missing flows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import api
from ..lifecycle import ConsentState
from ..recipe import MAX_LOOKS
from ..settings import api_target


def run(paths: Sequence[Path], *, manifest: Path | None, max_looks: int = MAX_LOOKS) -> int:
    recipes = api.validate(paths, max_looks=max_looks)
    if not any(a.base.type == "digital_twin" for r in recipes for a in r.avatars):
        print("No digital twins in these recipes.")
        return 0
    settings = api_target()

    def on_state(recipe: Path, state: ConsentState) -> None:
        prefix = f"{recipe}: " if len(recipes) > 1 else ""
        print(f"{prefix}{state}", flush=True)

    api.consent(
        recipes,
        api_key=settings.api_key,
        base_url=settings.base_url,
        request_timeout=settings.request_timeout,
        manifest=manifest,
        on_state=on_state,
    )
    return 0

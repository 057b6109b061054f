"""`looks import`: adopt avatar groups an account already has into a recipe."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import api
from ..settings import api_target


def run(groups: Sequence[str], *, out: Path) -> int:
    settings = api_target()
    imported = api.import_groups(
        groups,
        out=out,
        api_key=settings.api_key,
        base_url=settings.base_url,
        request_timeout=settings.request_timeout,
    )
    for avatar in imported.avatars:
        count = len(avatar.looks)
        print(
            f"Imported avatar group {avatar.group.id} ({avatar.name}) as {avatar.key}:"
            f" base {avatar.base.id}, {count} look{'' if count == 1 else 's'}."
        )
        for failed in avatar.skipped:
            code = failed.error.code if failed.error else "failed"
            print(f"  skipped {failed.id} ({failed.name}): {code}")
    verb = "Extended" if imported.extended else "Wrote"
    print(
        f"{verb} {imported.recipe} and {imported.manifest.name};"
        f" `looks plan {imported.recipe}` has nothing to create."
    )
    return 0

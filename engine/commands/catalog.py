"""`looks catalog`: write an offline gallery (index.html, catalog.md, previews/) of recipes.

Reads the recipes and their manifests (offline, like `looks status`), downloads the
previews it does not have yet, and writes only the files whose bytes change (see
engine/gallery.py). A preview that cannot be downloaded is a warning line on stderr and
a placeholder in the gallery; the rest is still written, and the command exits 1 at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .. import api
from ..catalog import summary
from ..client import redact_url
from ..gallery import Fetched
from ..recipe import MAX_LOOKS
from ..workspace import count


def run(
    recipes: Sequence[Path], *, manifest: Path | None, out: Path, max_looks: int = MAX_LOOKS
) -> int:
    gallery = api.catalog(recipes, out=out, manifest=manifest, on_failed=_warn, max_looks=max_looks)
    written, removed = gallery.written, gallery.removed
    done = f"{count(written, 'file')} written" if written else "nothing changed"
    if removed:
        done += f", {count(removed, 'stale preview')} removed"
    print(f"{gallery.index}: {summary(gallery.catalog)} ({done})")
    if gallery.failed:
        print(
            f"looks: {count(len(gallery.failed), 'preview')} could not be downloaded; the"
            " gallery shows a placeholder for each (run again to retry)",
            file=sys.stderr,
        )
        return 1
    return 0


def _warn(fetched: Fetched) -> None:
    d = fetched.download
    print(
        f"looks: warning: {d.address}: cannot download the preview of {d.look_id}"
        f" from {redact_url(d.url)}: {fetched.error}",
        file=sys.stderr,
    )

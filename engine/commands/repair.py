"""`looks repair`: keep every complete change of a damaged journal; set the rest aside."""

from __future__ import annotations

from pathlib import Path

from ..manifest import damaged_path_for
from ..workspace import manifest_for, open_store


def run(recipe: Path, *, manifest: Path | None) -> int:
    """Keep every complete change of a damaged journal, set the rest aside, fold."""
    path = manifest_for(recipe, manifest)
    with open_store(recipe, manifest, repair=True) as store:
        scan = store.repaired
        journal = store.journal_path
    assert scan is not None
    if not scan.damaged:
        print(f"{path}: the journal has no damaged line; nothing to repair.")
        return 0
    numbers = ", ".join(str(n) for n, _ in scan.damaged)
    print(
        f"{journal}: kept {len(scan.changes)} complete changes; damaged line(s) {numbers}"
        f" set aside in {damaged_path_for(journal)}; folded into {path}."
    )
    return 0

"""`looks repair` and `looks rehome`: mend a manifest by hand, offline and on purpose."""

from __future__ import annotations

from pathlib import Path

from engine.durable import move, read_state
from engine.errors import ManifestError, UsageError
from engine.manifest import (
    ManifestStore,
    damaged_path_for,
    manifest_path_for,
    parse_manifest,
    real_path,
    recipe_label,
)


def run_repair(recipe: Path, *, manifest: Path | None) -> int:
    """Keep every complete change of a damaged journal, set the rest aside, fold."""
    path = manifest or manifest_path_for(recipe)
    with ManifestStore(path, recipe_label(recipe, path), repair=True) as store:
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


def run_rehome(recipe: Path, *, manifest: Path | None) -> int:
    """Make a manifest the recipe's own: after renaming or moving a recipe, say."""
    if not recipe.is_file():
        raise UsageError(f"{recipe}: no such recipe")
    path = real_path(manifest or manifest_path_for(recipe))
    try:
        text = read_state(path).decode("utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest to re-home") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read manifest ({e})") from None
    before = parse_manifest(text, path).recipe
    label = recipe_label(recipe, path)
    target = manifest_path_for(recipe)
    # The renamed recipe's own manifest name, so that a plain `looks apply RECIPE` finds it:
    # only for a renamed recipe's default manifest, in the same directory, never over a file.
    rename = (
        path != target
        and path.parent == target.parent
        and path.name == f"{Path(before).stem}.manifest.json"
        and not (path.parent / before).exists()  # renamed, not another recipe's still
        and not target.exists()
    )
    with ManifestStore(path, label, rehome=True) as store:
        if rename:
            store.fold()
            move(path, target)
    if before == label:
        print(f"{path}: already the manifest of {label}; unchanged.")
    else:
        print(f"{path}: re-homed from recipe {before} to {label}.")
    if rename:
        print(f"{path} renamed to {target} (commit both with the recipe's rename).")
    return 0

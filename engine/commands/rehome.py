"""`looks rehome`: make a manifest the recipe's own, after renaming or moving a recipe."""

from __future__ import annotations

from pathlib import Path

from engine.errors import ManifestError, UsageError
from engine.manifest import ManifestStore, parse_manifest, real_path
from engine.workspace import manifest_for, recipe_label


def run(recipe: Path, *, manifest: Path | None) -> int:
    """Make a manifest the recipe's own: after renaming or moving a recipe, say."""
    if not recipe.is_file():
        raise UsageError(f"{recipe}: no such recipe")
    path = real_path(manifest_for(recipe, manifest))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest to re-home") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read manifest ({e})") from None
    before = parse_manifest(text, path).recipe
    label = recipe_label(recipe, path)
    with ManifestStore(path, label, rehome=True):
        pass
    if before == label:
        print(f"{path}: already the manifest of {label}; unchanged.")
    else:
        print(f"{path}: re-homed from recipe {before} to {label}.")
    return 0

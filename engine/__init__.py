"""looks: declarative batch look generation for the HeyGen v3 avatar API."""

from engine.errors import (
    ApiError,
    LooksError,
    ManifestError,
    ManifestLockedError,
    Problem,
    RecipeError,
    TransportError,
    UsageError,
)
from engine.recipe import AvatarSpec, BaseSpec, FileSpec, LookSpec, Recipe, load_recipe

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AvatarSpec",
    "BaseSpec",
    "FileSpec",
    "LookSpec",
    "LooksError",
    "ManifestError",
    "ManifestLockedError",
    "Problem",
    "Recipe",
    "RecipeError",
    "TransportError",
    "UsageError",
    "__version__",
    "load_recipe",
]

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

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "LooksError",
    "ManifestError",
    "ManifestLockedError",
    "Problem",
    "RecipeError",
    "TransportError",
    "UsageError",
    "__version__",
]

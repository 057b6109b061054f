"""looks: declarative batch look generation for the HeyGen v3 avatar API.

The Python API (docs/python-api.md): `plan`, `apply` (and `apply_async`), `status`,
`validate`, `catalog`, `refresh`, `prune`, `consent` and `import_groups` do what the
commands of the same names do, and return what those print.
"""

import typing as _typing

from . import api
from .api import (
    ApplyOptions,
    ApplyResult,
    Imported,
    Plan,
    Pruning,
    Record,
    Refreshed,
    apply,
    apply_async,
    catalog,
    consent,
    import_groups,
    plan,
    prune,
    refresh,
    status,
    validate,
)
from .errors import (
    ApiError,
    LooksError,
    ManifestError,
    ManifestLockedError,
    Problem,
    RecipeError,
    TransportError,
    UsageError,
)
from .plan import PlanAction
from .progress import Event, Reporter
from .recipe import AvatarSpec, BaseSpec, FileSpec, LookSpec, Recipe, load_recipe
from .summary import RunSummary
from .version import __version__

if _typing.TYPE_CHECKING:
    from .api import ConsentState, Drift, Gallery, PruneOutcome


def __getattr__(name: str) -> object:
    # Types from modules `looks apply` does not import, imported when first asked for
    # (engine/api.py, engine/deferred.py).
    if name in ("ConsentState", "Drift", "Gallery", "PruneOutcome"):
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # dir() (completion, help()) lists the types __getattr__ gives, as when imported.
    return sorted({*globals(), *__all__})


__all__ = [
    "ApiError",
    "ApplyOptions",
    "ApplyResult",
    "AvatarSpec",
    "BaseSpec",
    "ConsentState",
    "Drift",
    "Event",
    "FileSpec",
    "Gallery",
    "Imported",
    "LookSpec",
    "LooksError",
    "ManifestError",
    "ManifestLockedError",
    "Plan",
    "PlanAction",
    "Problem",
    "PruneOutcome",
    "Pruning",
    "Recipe",
    "RecipeError",
    "Record",
    "Refreshed",
    "Reporter",
    "RunSummary",
    "TransportError",
    "UsageError",
    "__version__",
    "apply",
    "apply_async",
    "catalog",
    "consent",
    "import_groups",
    "load_recipe",
    "plan",
    "prune",
    "refresh",
    "status",
    "validate",
]

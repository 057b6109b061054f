"""looks: declarative batch look generation for the HeyGen v3 avatar API.

The Python API (docs/python-api.md): `plan`, `apply` (and `apply_async`), `status`,
`validate`, `catalog`, `refresh`, `prune`, `consent` and `import_groups` do what the
commands of the same names do, and return what those print.
"""

from .api import (
    ApplyOptions,
    ApplyResult,
    ConsentState,
    Drift,
    Gallery,
    Imported,
    Plan,
    PruneOutcome,
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

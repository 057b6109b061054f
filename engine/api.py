"""The Python API: what the `looks` commands do, callable from Python (docs/python-api.md).

Every function takes recipe paths, as the commands do, and returns data instead of printing
it; the commands in engine/commands/ call these and render what they return. Errors are
raised as engine.errors.LooksError subclasses (RecipeError carries every problem found).
Functions that call the API take `api_key` and `base_url` explicitly: the environment
(HEYGEN_API_KEY, HEYGEN_BASE_URL) is the command line's business.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from . import lifecycle, recipe_edit
from .catalog import Catalog, build_section
from .client import HeyGenClient
from .cost import Budget, credits_text, estimate, number_text
from .errors import BudgetError, LooksError
from .executor import ApplyOptions, ApplyResult, Batch, Executor
from .gallery import Fetched, Gallery, write_gallery
from .gcpause import collector_paused
from .lifecycle import (
    AdoptedAvatar,
    ConsentState,
    Drift,
    PruneItem,
    PruneOutcome,
    RemoteGroup,
)
from .manifest import ManifestStore, NodeRecord, manifest_path_for
from .ownership import recorded_beside, recorded_ids
from .paths import resolved
from .plan import PlanNode, build_graph, build_plan, consent_address, pending_moves
from .plan_markdown import RecipePlan
from .plans import Plan
from .progress import Event, Reporter
from .recipe import MAX_LOOKS, MediaPolicy, Recipe, load_recipe
from .settings import DEFAULT_BASE_URL, DEFAULT_REQUEST_TIMEOUT, ApiSettings
from .signals import stopping_on_signals
from .summary import RunSummary
from .workspace import (
    load_recipes,
    open_store,
    open_stores,
    read_recipe_manifest,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ApplyOptions",
    "ApplyResult",
    "ConsentState",
    "Drift",
    "Gallery",
    "Imported",
    "Plan",
    "PruneOutcome",
    "Pruning",
    "Record",
    "Refreshed",
    "apply",
    "apply_async",
    "catalog",
    "consent",
    "import_groups",
    "plan",
    "prune",
    "refresh",
    "status",
    "validate",
]


Recipes = str | os.PathLike[str] | Recipe | Sequence[str | os.PathLike[str] | Recipe]


def _load(recipes: Recipes, max_looks: int, media: MediaPolicy) -> list[Recipe]:
    """Recipes given by path are loaded (every problem of every one reported at once);
    Recipe objects (from validate) are used as they are.

    `media`: whether the local files a recipe names must be on disk. Commands that only
    read manifests or plan from them do without (CI need not hold the headshots).
    """
    given = [recipes] if isinstance(recipes, str | os.PathLike | Recipe) else list(recipes)
    paths = [Path(r) for r in given if not isinstance(r, Recipe)]
    loaded = iter(load_recipes(paths, max_looks=max_looks, media=media))
    return [r if isinstance(r, Recipe) else next(loaded) for r in given]


def _settings(api_key: str, base_url: str, request_timeout: float) -> ApiSettings:
    return ApiSettings(base_url.rstrip("/"), api_key, request_timeout)


def _manifest(manifest: str | os.PathLike[str] | None) -> Path | None:
    return None if manifest is None else Path(manifest)


def _label(recipe: Recipe, recipes: Sequence[Recipe]) -> str:
    """How a batch names its recipe in events: by path when there are several."""
    return str(recipe.path) if len(recipes) > 1 else ""


# -- validate, plan, status ---------------------------------------------------------------


def validate(
    recipes: Recipes, *, max_looks: int = MAX_LOOKS, media: MediaPolicy = "required"
) -> list[Recipe]:
    """Load and check recipes; a RecipeError lists every problem of every recipe.

    A recipe that expands to more than `max_looks` looks is refused.
    """
    return _load(recipes, max_looks, media)


def plan(
    recipes: Recipes,
    *,
    manifest: str | os.PathLike[str] | None = None,
    only: Sequence[str] = (),
    adoptable: Sequence[Mapping[str, str]] | None = None,
    max_looks: int = MAX_LOOKS,
) -> Plan:
    """What `apply` would do: each recipe diffed against its manifest (offline).

    `only` keeps addresses or globs (and their dependencies); `adoptable` holds, per
    recipe, looks found unrecorded by `refresh` (address -> look id), planned as `adopt`.
    """
    loaded = _load(recipes, max_looks, "optional")
    found = list(adoptable) if adoptable is not None else [{} for _ in loaded]
    plans = []
    for recipe, adopt in zip(loaded, found, strict=True):
        records = read_recipe_manifest(recipe, _manifest(manifest)).nodes
        with collector_paused():
            one = build_plan(recipe, records, only, adopt)
        plans.append(RecipePlan(str(recipe.path), one))
    return Plan(tuple(plans))


@dataclass(frozen=True)
class Record:
    """What a manifest records for one address, and which recipe it belongs to."""

    recipe: Path
    record: NodeRecord

    @property
    def address(self) -> str:
        return self.record.address

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def look_id(self) -> str | None:
        return self.record.look_id


def status(
    recipes: Recipes,
    *,
    manifest: str | os.PathLike[str] | None = None,
    max_looks: int = MAX_LOOKS,
) -> list[Record]:
    """What the manifests record, recipe by recipe, address by address (offline)."""
    out: list[Record] = []
    for recipe in _load(recipes, max_looks, "optional"):
        records = read_recipe_manifest(recipe, _manifest(manifest)).nodes
        out.extend(Record(recipe.path, records[a]) for a in sorted(records))
    return out


# -- apply ------------------------------------------------------------------------------


class _Silent:
    """The reporter of a run nobody watches."""

    def event(self, event: Event) -> None:
        pass

    def counts(self, counts: Counter[str], total: int) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        pass


def apply(
    recipes: Recipes,
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    manifest: str | os.PathLike[str] | None = None,
    only: Sequence[str] = (),
    max_jobs: int = 10,
    fail_fast: bool = False,
    timeout: float = 900.0,
    max_credits: Decimal | None = None,
    prune: bool = False,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    handle_signals: bool = True,
    max_looks: int = MAX_LOOKS,
    on_plan: Callable[[Plan], None] | None = None,
) -> ApplyResult:
    """Create what the plans say, resumably; see apply_async, which this runs in a new loop.

    With `handle_signals` (the main thread only), a first Ctrl-C, SIGTERM or SIGHUP stops new
    submissions and lets answers in flight be recorded; a second leaves at once (the
    journal already holds every change).
    """
    return asyncio.run(
        apply_async(
            recipes,
            api_key=api_key,
            base_url=base_url,
            request_timeout=request_timeout,
            manifest=manifest,
            only=only,
            max_jobs=max_jobs,
            fail_fast=fail_fast,
            timeout=timeout,
            max_credits=max_credits,
            prune=prune,
            reporter=reporter,
            options=options,
            handle_signals=handle_signals,
            max_looks=max_looks,
            on_plan=on_plan,
        )
    )


async def apply_async(
    recipes: Recipes,
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    manifest: str | os.PathLike[str] | None = None,
    only: Sequence[str] = (),
    max_jobs: int = 10,
    fail_fast: bool = False,
    timeout: float = 900.0,
    max_credits: Decimal | None = None,
    prune: bool = False,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    handle_signals: bool = False,
    max_looks: int = MAX_LOOKS,
    on_plan: Callable[[Plan], None] | None = None,
) -> ApplyResult:
    """Create what the plans say, resumably, within the caller's event loop.

    `timeout` is the per-node wait in seconds; `options` (if given) overrides `max_jobs`,
    `fail_fast` and `timeout`. `on_plan` sees the plans before anything is sent. A plan
    costing more than `max_credits` is refused before any request (BudgetError).
    `reporter` receives events, counts and, at the end, the run's summary. The result's
    `.ok` is False when a node failed or was blocked, the run stopped early, or (with
    `prune`) a deletion failed. A manifest that cannot be written raises StateWriteError
    once the run has stopped (what is journaled is kept).
    """
    # A file not on disk fails only the upload that must send it (see Executor._upload).
    loaded = _load(recipes, max_looks, "optional")
    watcher = reporter or _Silent()
    options = options or ApplyOptions(max_jobs=max_jobs, fail_fast=fail_fast, node_timeout=timeout)
    with open_stores(loaded, _manifest(manifest)) as stores:
        batches = [
            Batch(build_plan(recipe, store.nodes, only), store, _label(recipe, loaded))
            for recipe, store in zip(loaded, stores, strict=True)
        ]
        if on_plan is not None:
            labelled = zip(loaded, batches, strict=True)
            on_plan(Plan(tuple(RecipePlan(str(r.path), b.plan) for r, b in labelled)))
        budget = None if max_credits is None else _budget(batches, max_credits)
        beside = recorded_beside(stores, made_only=True)
        options = dataclasses.replace(options, recorded_elsewhere=beside)
        result = ApplyResult()
        # Nothing to do: no connection, not a single request.
        if any(batch.plan.has_changes for batch in batches):
            settings = _settings(api_key, base_url, request_timeout)
            result = await _run(settings, batches, options, watcher, budget, handle_signals)
        if prune and result.ok:
            result.pruned = await _prune_batches(
                _settings(api_key, base_url, request_timeout), batches, watcher
            )
    if result.stopped == "max_credits" and budget is not None:
        result.notes.append(budget.stopped_line())
    watcher.close(result.summary())
    if result.write_error is not None:
        raise result.write_error  # its one line names the file and the cause
    return result


def _budget(batches: Sequence[Batch], limit: Decimal) -> Budget:
    """The run's budget; refused before any request when the plan alone passes it."""
    cost = estimate(batch.plan for batch in batches).credits
    if cost > limit:
        raise BudgetError(
            f"the plan costs {credits_text(cost)}, more than --max-credits {number_text(limit)};"
            " nothing was sent"
        )
    return Budget(limit)


async def _run(
    settings: ApiSettings,
    batches: Sequence[Batch],
    options: ApplyOptions,
    reporter: Reporter,
    budget: Budget | None,
    handle_signals: bool,
) -> ApplyResult:
    executor: Executor | None = None

    def on_retry(exc: BaseException, wait: float) -> None:
        if executor is not None:
            executor.on_retry(exc, wait)

    async with HeyGenClient.for_settings(settings, on_retry=on_retry) as client:
        await client.preflight()  # a refused key or an unreachable API: nothing is sent
        executor = Executor(client, batches, reporter, options, budget)
        if not handle_signals:
            return await executor.run()
        with stopping_on_signals(executor.interrupt):
            return await executor.run()


# -- refresh ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    """One recipe's drift (recorded now) and its looks found unrecorded (address -> id)."""

    recipe: Path
    drift: tuple[Drift, ...]
    unrecorded: Mapping[str, str]


def refresh(
    recipes: Recipes,
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    manifest: str | os.PathLike[str] | None = None,
    max_looks: int = MAX_LOOKS,
) -> list[Refreshed]:
    """Compare the manifests with the account and record the drift, recipe by recipe."""
    loaded = _load(recipes, max_looks, "required")
    with open_stores(loaded, _manifest(manifest)) as stores:
        # With the records: a file not on disk (plan --refresh) keeps its recorded upload.
        graphs = [build_graph(r, store.nodes) for r, store in zip(loaded, stores, strict=True)]
        found = asyncio.run(
            _refresh_all(_settings(api_key, base_url, request_timeout), stores, graphs)
        )
    return [
        Refreshed(recipe.path, tuple(drift), unrecorded)
        for recipe, (drift, unrecorded) in zip(loaded, found, strict=True)
    ]


async def _refresh_all(
    settings: ApiSettings, stores: Sequence[ManifestStore], graphs: Sequence[dict[str, PlanNode]]
) -> list[tuple[list[Drift], dict[str, str]]]:
    beside = recorded_beside(stores, made_only=True)

    def elsewhere(store: ManifestStore) -> set[str]:
        others = (r for s in stores if s is not store for r in s.nodes.values())
        return {*beside, *recorded_ids(others, made_only=True)}

    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()
        return [
            (
                await lifecycle.refresh(client, store),
                await lifecycle.find_unrecorded(client, store, graph.values(), elsewhere(store)),
            )
            for store, graph in zip(stores, graphs, strict=True)
        ]


# -- prune ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruning:
    """What prune selected for one recipe."""

    recipe: Path
    items: tuple[PruneItem, ...]


def prune(
    recipes: Recipes,
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    manifest: str | os.PathLike[str] | None = None,
    confirm: Callable[[Sequence[Pruning]], bool] | None = None,
    on_outcome: Callable[[Path, PruneOutcome], None] | None = None,
    max_looks: int = MAX_LOOKS,
) -> list[PruneOutcome] | None:
    """Delete superseded and orphaned looks, recording each deletion.

    `confirm` sees the selection (the manifests locked meanwhile) and may refuse it: then
    nothing is deleted and None is returned. Without it, prune deletes without asking, as
    `looks prune --yes`. `on_outcome` hears each deletion as it is recorded.
    """
    loaded = _load(recipes, max_looks, "required")
    with open_stores(loaded, _manifest(manifest)) as stores:
        graphs = [build_graph(r) for r in loaded]
        moving = [
            pending_moves(r, g, s.nodes).values()
            for r, g, s in zip(loaded, graphs, stores, strict=True)
        ]
        beside = recorded_beside(stores)  # read once: for the selection and the searches
        selected = _selection(stores, graphs, beside, moving)
        pruning = [Pruning(r.path, tuple(s)) for r, s in zip(loaded, selected, strict=True)]
        if confirm is not None and not confirm(pruning):
            return None
        if not any(selected):
            return []

        def report(index: int, outcome: PruneOutcome) -> None:
            if on_outcome is not None:
                on_outcome(loaded[index].path, outcome)

        settings = _settings(api_key, base_url, request_timeout)
        return asyncio.run(_prune_all(settings, stores, selected, report, beside))


def _selection(
    stores: Sequence[ManifestStore],
    graphs: Sequence[Mapping[str, PlanNode]],
    beside: Collection[str],
    moving: Sequence[Collection[str]] = (),
) -> list[list[PruneItem]]:
    manifests = [s.nodes for s in stores]
    return lifecycle.prune_selection(manifests, graphs, beside, moving)


async def _prune_all(
    settings: ApiSettings,
    stores: Sequence[ManifestStore],
    selected: Sequence[Sequence[PruneItem]],
    report: Callable[[int, PruneOutcome], None],
    beside: frozenset[str],
) -> list[PruneOutcome]:
    outcomes: list[PruneOutcome] = []
    # Whose a look found by name is not: any manifest's, pruned together or beside them.
    recorded = beside.union(*(recorded_ids(s.nodes.values()) for s in stores))
    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()
        for i, (store, items) in enumerate(zip(stores, selected, strict=True)):

            def sink(outcome: PruneOutcome, i: int = i) -> None:
                report(i, outcome)

            outcomes += await lifecycle.prune(client, store, items, sink, recorded)
    return outcomes


async def _prune_batches(
    settings: ApiSettings, batches: Sequence[Batch], reporter: Reporter
) -> bool:
    """`apply --prune`, after a successful run: prune without asking, report as events.

    Returns False when a deletion failed (its record is kept for the next prune).
    """
    stores = [b.store for b in batches]
    beside = recorded_beside(stores)
    selected = _selection(stores, [b.plan.nodes for b in batches], beside)
    if not any(selected):
        return True

    def report(index: int, outcome: PruneOutcome) -> None:
        label = batches[index].label
        item = outcome.item
        if outcome.error is not None:
            message = f"prune: could not delete {item.look_id}: {outcome.error}"
            reporter.event(Event(item.address, "failed", message, label))
            return
        if item.delete:
            gone = ", already gone" if outcome.already_gone else ""
            message = f"deleted {item.look_id}, {item.reason}{gone}"
        else:
            message = f"forgot the record, {item.reason}; {item.note}"
        reporter.event(Event(item.address, "pruned", message, label))

    outcomes = await _prune_all(settings, stores, selected, report, beside)
    return all(o.error is None for o in outcomes)


# -- consent ----------------------------------------------------------------------------


def consent(
    recipes: Recipes,
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    manifest: str | os.PathLike[str] | None = None,
    on_state: Callable[[Path, ConsentState], None] | None = None,
    max_looks: int = MAX_LOOKS,
) -> list[tuple[Path, ConsentState]]:
    """Every digital twin's consent status and URL; starts the flows never started."""
    loaded = _load(recipes, max_looks, "required")
    if not any(a.base.type == "digital_twin" for r in loaded for a in r.avatars):
        return []
    with open_stores(loaded, _manifest(manifest)) as stores:
        settings = _settings(api_key, base_url, request_timeout)
        return asyncio.run(_consent_all(settings, loaded, stores, on_state))


async def _consent_all(
    settings: ApiSettings,
    recipes: Sequence[Recipe],
    stores: Sequence[ManifestStore],
    on_state: Callable[[Path, ConsentState], None] | None,
) -> list[tuple[Path, ConsentState]]:
    states: list[tuple[Path, ConsentState]] = []
    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()
        for recipe, store in zip(recipes, stores, strict=True):
            graph = build_graph(recipe)
            for avatar in recipe.avatars:
                if avatar.base.type != "digital_twin":
                    continue
                node = graph[consent_address(avatar.key)]
                state = await lifecycle.consent(client, store, avatar.key, node)
                states.append((recipe.path, state))
                if on_state is not None:
                    on_state(recipe.path, state)
    return states


# -- import -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """What `import_groups` adopted, into which recipe."""

    recipe: Path
    manifest: Path
    avatars: tuple[AdoptedAvatar, ...]
    extended: bool  # the recipe existed and was extended (else it was written anew)


def import_groups(
    groups: Iterable[str],
    *,
    out: str | os.PathLike[str],
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> Imported:
    """Adopt avatar groups: write (or extend) the recipe `out`, record them as completed."""
    recipe_path = Path(out)
    existing = load_recipe(recipe_path) if recipe_path.exists() else None
    settings = _settings(api_key, base_url, request_timeout)
    remote = asyncio.run(_fetch_groups(settings, list(dict.fromkeys(groups))))
    adopted = lifecycle.adopt(remote)
    recipe_path.parent.mkdir(parents=True, exist_ok=True)
    with open_store(recipe_path) as store:
        check_import(recipe_path, existing, store, remote, adopted)
        text = recipe_path.read_text(encoding="utf-8") if existing is not None else None
        recipe = recipe_edit.write_recipe(
            recipe_path, recipe_edit.recipe_text(recipe_path, text, adopted)
        )
        graph = build_graph(recipe)
        for avatar in adopted:
            store.record(lifecycle.adopted_record(graph[avatar.key], avatar.base))
            for look in avatar.looks:
                node = graph[f"{avatar.key}/{look.key}"]
                store.record(lifecycle.adopted_record(node, look.look))
    return Imported(
        recipe_path, manifest_path_for(recipe_path), tuple(adopted), existing is not None
    )


async def _fetch_groups(settings: ApiSettings, group_ids: list[str]) -> list[RemoteGroup]:
    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()
        return await lifecycle.fetch_groups(client, group_ids)


def check_import(
    out: Path,
    existing: Recipe | None,
    store: ManifestStore,
    remote: Sequence[RemoteGroup],
    adopted: Sequence[AdoptedAvatar],
) -> None:
    """Refuse to clobber: an avatar key taken, or a group already in this recipe."""
    keys = {a.key for a in existing.avatars} if existing is not None else set()
    in_recipe: dict[str, str] = {}  # look id -> address, of what the recipe already adopts
    if existing is not None:
        for node in build_graph(existing).values():
            if node.template.get("type") == "existing":
                in_recipe[str(node.template["look_id"])] = node.address
    by_group = {r.group.id: r for r in remote}
    for avatar in adopted:
        gid = avatar.group.id
        recorded = [r.address for r in store.nodes.values() if r.group_id == gid]
        listed = [in_recipe[look.id] for look in by_group[gid].looks if look.id in in_recipe]
        if recorded or listed:
            where = (recorded or listed)[0]
            raise LooksError(f"avatar group {gid} is already in {out} (as {where}): not imported")
        if avatar.key in keys:
            raise LooksError(
                f"{out}: avatar {avatar.key!r} already exists, and group {gid} ({avatar.name})"
                " would be imported under that key; rename that avatar, or import into another"
                " recipe (--out)"
            )
        mine = [
            a
            for a in store.nodes
            if a in (avatar.key, consent_address(avatar.key)) or a.startswith(avatar.key + "/")
        ]
        if mine:
            raise LooksError(
                f"{store.path}: records {mine[0]} remain from an avatar {avatar.key!r} no longer"
                f" in {out}; run `looks prune {out}` first, or import into another recipe (--out)"
            )


# -- catalog ----------------------------------------------------------------------------


def catalog(
    recipes: Recipes,
    *,
    out: str | os.PathLike[str],
    manifest: str | os.PathLike[str] | None = None,
    on_failed: Callable[[Fetched], None] | None = None,
    max_looks: int = MAX_LOOKS,
) -> Gallery:
    """Write an offline gallery (index.html, catalog.md, previews/) of the recipes' looks.

    Needs no API key: previews are downloaded from their URLs, without credentials.
    """
    # Offline: the gallery shows what the manifests record; the media need not be on disk.
    loaded = _load(recipes, max_looks, "optional")
    target = Path(out)
    sections = []
    for recipe in loaded:
        records = read_recipe_manifest(recipe, _manifest(manifest)).nodes
        sections.append(build_section(recipe, records, _shown_path(recipe.path, target)))
    return write_gallery(Catalog(tuple(sections)), target, on_failed)


def _shown_path(recipe: Path, out: Path) -> str:
    """The recipe's path relative to the gallery, so the page reads the same from any cwd."""
    return Path(os.path.relpath(resolved(recipe), resolved(out))).as_posix()

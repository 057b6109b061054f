"""`looks import`, `refresh`, `prune` and `consent`; `plan --refresh` and `apply --prune`.

The glue: recipes and manifests in, lines out, confirmation asked. The API work is in
engine/lifecycle.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TextIO

import yaml

from engine import durable, lifecycle
from engine._schemas import SCHEMAS
from engine.client import HeyGenClient
from engine.commands.apply import open_stores
from engine.commands.plan import recipe_label
from engine.commands.validate import load_all
from engine.errors import LooksError, RecipeError
from engine.executor import Batch
from engine.lifecycle import AdoptedAvatar, Drift, PruneItem, PruneOutcome, RemoteGroup
from engine.manifest import ManifestStore, manifest_path_for
from engine.ownership import recorded_beside, recorded_ids
from engine.plan import PlanNode, build_graph, consent_address, pending_moves
from engine.progress import Event, Reporter
from engine.recipe import MAX_LOOKS, Recipe, load_recipe
from engine.settings import ApiSettings, api_target

# -- import ---------------------------------------------------------------------------


def run_import(groups: Sequence[str], *, out: Path) -> int:
    """Adopt avatar groups: write (or extend) a recipe and record them as completed."""
    settings = api_target()
    existing = load_recipe(out) if out.exists() else None
    remote = asyncio.run(_fetch_groups(settings, list(dict.fromkeys(groups))))
    adopted = lifecycle.adopt(remote)
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = manifest_path_for(out)
    label = recipe_label(Recipe(path=out, avatars=()), manifest)
    with ManifestStore(manifest, label) as store:
        _check_conflicts(out, existing, store, remote, adopted)
        text = out.read_text(encoding="utf-8") if existing is not None else None
        recipe = _write_recipe(out, _recipe_text(out, text, adopted))
        graph = build_graph(recipe)
        for avatar in adopted:
            store.record(lifecycle.adopted_record(graph[avatar.key], avatar.base))
            for look in avatar.looks:
                node = graph[f"{avatar.key}/{look.key}"]
                store.record(lifecycle.adopted_record(node, look.look))
    for avatar in adopted:
        count = len(avatar.looks)
        print(
            f"Imported avatar group {avatar.group.id} ({avatar.name}) as {avatar.key}:"
            f" base {avatar.base.id}, {count} look{'' if count == 1 else 's'}."
        )
        for failed in avatar.skipped:
            code = failed.error.code if failed.error else "failed"
            print(f"  skipped {failed.id} ({failed.name}): {code}")
    verb = "Extended" if existing is not None else "Wrote"
    print(f"{verb} {out} and {manifest.name}; `looks plan {out}` has nothing to create.")
    return 0


async def _fetch_groups(settings: ApiSettings, group_ids: list[str]) -> list[RemoteGroup]:
    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()
        return await lifecycle.fetch_groups(client, group_ids)


def _check_conflicts(
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


def _schema_header(out: Path) -> str:
    """The editor hint, relative to the recipe; none when the schema file is not there."""
    schema = (SCHEMAS / "recipe.schema.json").resolve()
    if not schema.is_file():
        return ""
    try:
        relative = os.path.relpath(schema, out.parent.resolve())
    except ValueError:  # another drive (Windows)
        return ""
    return f"# yaml-language-server: $schema={Path(relative).as_posix()}\n"


def _avatar_block(avatars: Sequence[AdoptedAvatar], indent: int) -> str:
    """The avatars as YAML mapping entries, each key at column `indent`."""
    text = ""
    for avatar in avatars:
        body = yaml.safe_dump(
            {avatar.key: avatar.recipe_entry()},
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=1_000_000,
        )
        first, rest = body.split("\n", 1)
        text += f"{first}  # imported from avatar group {avatar.group.id}\n{rest}"
    pad = " " * indent
    return "".join(pad + line for line in text.splitlines(keepends=True))


def _recipe_text(out: Path, text: str | None, adopted: Sequence[AdoptedAvatar]) -> str:
    if text is None:
        return f"{_schema_header(out)}version: 1\navatars:\n{_avatar_block(adopted, 2)}"
    return _extend(out, text, adopted)


def _extend(out: Path, text: str, adopted: Sequence[AdoptedAvatar]) -> str:
    """The recipe's text with the avatars added at the end of its `avatars` mapping.

    Text is inserted, not re-dumped, so the recipe's comments and layout stay as they were.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    avatars = next(v for k, v in root.value if k.value == "avatars")
    assert isinstance(avatars, yaml.MappingNode)
    if not avatars.value:  # `avatars: {}`
        start, end = avatars.start_mark.index, avatars.end_mark.index
        rest = text[end:]
        rest = rest[1:] if rest.startswith("\n") else rest
        return text[:start].rstrip(" ") + "\n" + _avatar_block(adopted, 2) + rest
    if avatars.flow_style:
        raise LooksError(
            f"{out}: cannot extend an `avatars` mapping written in flow style ({{...}});"
            " write it in block style first"
        )
    column = avatars.value[0][0].start_mark.column
    end = _content_end(avatars)
    if text[end - 1] != "\n":
        newline = text.find("\n", end)
        end = len(text) if newline == -1 else newline + 1
    head = text[:end] if text[:end].endswith("\n") else text[:end] + "\n"
    return head + _avatar_block(adopted, column) + text[end:]


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends (a block collection's end mark runs past comments)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style:
        return max(_content_end(n) for pair in node.value for n in pair)
    if isinstance(node, yaml.SequenceNode) and not node.flow_style:
        return max(_content_end(n) for n in node.value)
    return int(node.end_mark.index)


def _write_recipe(out: Path, text: str) -> Recipe:
    """Check the new text as a recipe, then replace the file atomically."""
    tmp = durable.temp_path_for(out)
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise durable.write_error(tmp, e) from None
    try:
        load_recipe(tmp)
    except RecipeError as e:
        tmp.unlink()
        details = "; ".join(p.message for p in e.problems)
        raise LooksError(
            f"{out}: the imported recipe would be invalid ({details}); unchanged"
        ) from None
    durable.replace(out, text.encode("utf-8"))  # checked, atomic, keeps the file's mode
    return load_recipe(out)


# -- refresh --------------------------------------------------------------------------


def run_refresh(paths: Sequence[Path], *, manifest: Path | None, max_looks: int = MAX_LOOKS) -> int:
    """`looks refresh`: record the drift between the manifests and the account."""
    settings = api_target()
    _refresh(settings, load_all(paths, max_looks=max_looks), manifest, sys.stdout)
    return 0


def refresh_recipes(recipes: list[Recipe], manifest: Path | None) -> list[dict[str, str]]:
    """`plan --refresh`: refresh first; the drift goes to stderr (stdout may be --json).

    Returns, per recipe, the looks found unrecorded (address -> look id): plan shows `adopt`.
    """
    return _refresh(api_target(), recipes, manifest, sys.stderr)


def _refresh(
    settings: ApiSettings, recipes: list[Recipe], manifest: Path | None, out: TextIO
) -> list[dict[str, str]]:
    with open_stores(recipes, manifest) as stores:
        # With the records: a file not on disk (plan --refresh) keeps its recorded upload.
        graphs = [build_graph(r, store.nodes) for r, store in zip(recipes, stores, strict=True)]
        results = asyncio.run(_refresh_all(settings, stores, graphs))
    found = False
    for recipe, (drift, unrecorded) in zip(recipes, results, strict=True):
        prefix = f"{recipe.path}: " if len(recipes) > 1 else ""
        for d in drift:
            print(f"{prefix}{d}", file=out)
            found = True
        for address, look_id in unrecorded.items():
            print(
                f"{prefix}{address}: unrecorded (look {look_id} exists; apply adopts it)", file=out
            )
            found = True
    if not found:
        print("No drift.", file=out)
    return [unrecorded for _, unrecorded in results]


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


# -- prune ----------------------------------------------------------------------------


def _prune_items(
    stores: Sequence[ManifestStore],
    graphs: Sequence[dict[str, PlanNode]],
    moving: Sequence[Collection[str]] = (),
) -> list[list[PruneItem]]:
    """What to prune per store; `moving`: per store, addresses a pending `moved` entry
    re-keys into the recipe (not orphans: their looks are to be kept, not paid for again)."""
    moving = moving or [()] * len(stores)
    nodes = [n for g in graphs for n in g.values()]
    # Another recipe's looks (a shared group) are never this run's to delete.
    beside = recorded_beside(stores)
    protected = lifecycle.protected_ids((r for s in stores for r in s.nodes.values()), nodes)
    protected |= beside
    existing = lifecycle.protected_ids((), nodes) | beside

    def used_outside(store: ManifestStore) -> set[str]:
        others = (r.look_id for s in stores if s is not store for r in s.nodes.values())
        return existing | {look_id for look_id in others if look_id}

    return [
        lifecycle.prune_items(
            store.nodes, graph.keys() | set(moved), protected, used_outside(store)
        )
        for store, graph, moved in zip(stores, graphs, moving, strict=True)
    ]


def run_prune(
    paths: Sequence[Path], *, manifest: Path | None, yes: bool, max_looks: int = MAX_LOOKS
) -> int:
    """`looks prune`: show what goes, ask, delete, and record each deletion."""
    settings = api_target()
    recipes = load_all(paths, max_looks=max_looks)
    with open_stores(recipes, manifest) as stores:
        graphs = [build_graph(r) for r in recipes]
        moving = [
            pending_moves(r, g, s.nodes).values()
            for r, g, s in zip(recipes, graphs, stores, strict=True)
        ]
        plans = _prune_items(stores, graphs, moving)
        if not any(plans):
            print("Nothing to prune.")
            return 0
        for recipe, items in zip(recipes, plans, strict=True):
            if items:
                print(f"{recipe.path}:")
                for item in items:
                    print(f"  {item.describe()}")
        deletions = sum(item.delete for items in plans for item in items)
        forgets = sum(len(items) for items in plans) - deletions
        print(
            f"Prune: {deletions} look{'' if deletions == 1 else 's'} to delete,"
            f" {forgets} record{'' if forgets == 1 else 's'} to forget."
        )
        if deletions and not yes and not _confirm(deletions):
            return 1
        labels = [str(r.path) if len(recipes) > 1 else "" for r in recipes]
        outcomes = asyncio.run(_prune_all(settings, stores, plans, _print_outcome, labels))
    failed = sum(o.error is not None for o in outcomes)
    deleted = sum(o.item.delete and o.error is None for o in outcomes)
    forgot = sum(not o.item.delete for o in outcomes)
    print(f"Pruned: {deleted} deleted, {forgot} forgotten, {failed} failed.")
    return 1 if failed else 0


def _print_outcome(outcome: PruneOutcome, label: str) -> None:
    prefix = f"{label}: " if label else ""
    print(f"{prefix}{outcome.describe()}", flush=True)


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _confirm(deletions: int) -> bool:
    """Ask on the terminal; without one, refuse rather than guess."""
    what = f"{deletions} look{'' if deletions == 1 else 's'}"
    if not _stdin_is_tty():
        raise LooksError(
            f"prune would delete {what} and stdin is not a terminal to confirm it;"
            " run it again with --yes to delete without asking"
        )
    print(f"Delete {what}? [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        return True
    print("Nothing deleted.")
    return False


async def _prune_all(
    settings: ApiSettings,
    stores: Sequence[ManifestStore],
    plans: Sequence[Sequence[PruneItem]],
    report: Callable[[PruneOutcome, str], None],
    labels: Sequence[str] = (),
) -> list[PruneOutcome]:
    outcomes: list[PruneOutcome] = []
    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()  # before the first deletion
        for i, (store, items) in enumerate(zip(stores, plans, strict=True)):
            label = labels[i] if labels else ""

            def sink(outcome: PruneOutcome, label: str = label) -> None:
                report(outcome, label)

            outcomes += await lifecycle.prune(client, store, items, sink)
    return outcomes


def prune_batches(settings: ApiSettings, batches: Sequence[Batch], reporter: Reporter) -> bool:
    """`apply --prune`, after a successful run: prune without asking, report as events.

    Returns False when a deletion failed (its record is kept for the next prune).
    """
    stores = [b.store for b in batches]
    plans = _prune_items(stores, [dict(b.plan.nodes) for b in batches])
    if not any(plans):
        return True

    def report(outcome: PruneOutcome, label: str) -> None:
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

    labels = [b.label for b in batches]
    outcomes = asyncio.run(_prune_all(settings, stores, plans, report, labels))
    return all(o.error is None for o in outcomes)


# -- consent --------------------------------------------------------------------------


def run_consent(paths: Sequence[Path], *, manifest: Path | None, max_looks: int = MAX_LOOKS) -> int:
    """`looks consent`: every digital twin's consent status and URL; start missing flows."""
    recipes = load_all(paths, max_looks=max_looks)
    twins = [[a for a in r.avatars if a.base.type == "digital_twin"] for r in recipes]
    if not any(twins):
        print("No digital twins in these recipes.")
        return 0
    settings = api_target()
    with open_stores(recipes, manifest) as stores:
        asyncio.run(_consent_all(settings, recipes, stores))
    return 0


async def _consent_all(
    settings: ApiSettings, recipes: Sequence[Recipe], stores: Sequence[ManifestStore]
) -> None:
    async with HeyGenClient.for_settings(settings) as client:
        await client.preflight()
        for recipe, store in zip(recipes, stores, strict=True):
            graph = build_graph(recipe)
            prefix = f"{recipe.path}: " if len(recipes) > 1 else ""
            for avatar in recipe.avatars:
                if avatar.base.type != "digital_twin":
                    continue
                node = graph[consent_address(avatar.key)]
                state = await lifecycle.consent(client, store, avatar.key, node)
                print(f"{prefix}{state}", flush=True)

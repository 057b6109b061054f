"""`looks apply`: run the plans of recipes against the API, resumably."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from engine.client import HeyGenClient
from engine.commands.plan import print_notes, recipe_label
from engine.commands.validate import load_all
from engine.cost import Budget, credits_text, estimate, number_text
from engine.errors import BudgetError
from engine.executor import ApplyOptions, ApplyResult, Batch, Executor
from engine.manifest import ManifestStore, manifest_path_for
from engine.ownership import recorded_beside
from engine.plan import build_plan
from engine.progress import PROGRESS_EVERY, Reporter, reporter_for
from engine.recipe import MAX_LOOKS, Recipe
from engine.settings import ApiSettings, api_target

INTERRUPTED = 130
# Ctrl-C, `kill`, and a terminal closed under the run (SIGHUP) all stop it the same way.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _heeded(signals: Sequence[signal.Signals]) -> list[signal.Signals]:
    """The signals not ignored by whoever started us: under `nohup` (SIGHUP ignored) the
    run must outlive the terminal, as that user asked."""
    return [sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN]


@contextlib.contextmanager
def terminations_interrupt() -> Iterator[None]:
    """Outside the event loop (loading, folding, pruning), SIGTERM and SIGHUP stop apply
    as Ctrl-C does: one line and exit 130, rather than a silent death by signal."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in _heeded(STOP_SIGNALS[1:])}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def open_stores(recipes: Sequence[Recipe], manifest: Path | None) -> Iterator[list[ManifestStore]]:
    """Lock and open every recipe's manifest; release them all on the way out."""
    stores: list[ManifestStore] = []
    try:
        for recipe in recipes:
            path = manifest or manifest_path_for(recipe.path)
            stores.append(ManifestStore(path, recipe_label(recipe, path)))
        yield stores
    finally:
        for store in stores:
            store.close()


def run(
    paths: Sequence[Path],
    *,
    manifest: Path | None,
    only: Sequence[str],
    options: ApplyOptions,
    log_json: bool,
    prune: bool = False,
    max_credits: Decimal | None = None,
    progress_every: float = PROGRESS_EVERY,
    max_looks: int = MAX_LOOKS,
) -> int:
    settings = api_target()  # bad settings fail before anything is loaded
    with terminations_interrupt():
        return _run(
            settings,
            paths,
            manifest,
            only,
            options,
            log_json,
            prune,
            max_credits,
            progress_every,
            max_looks,
        )


def _run(
    settings: ApiSettings,
    paths: Sequence[Path],
    manifest: Path | None,
    only: Sequence[str],
    options: ApplyOptions,
    log_json: bool,
    prune: bool,
    max_credits: Decimal | None,
    progress_every: float,
    max_looks: int,
) -> int:
    # A file not on disk fails only the upload that must send it (see Executor._upload).
    recipes = load_all(paths, max_looks=max_looks, media="optional")
    reporter = reporter_for(sys.stdout, log_json=log_json, every=progress_every)
    with open_stores(recipes, manifest) as stores:
        batches = [
            Batch(
                build_plan(recipe, store.nodes, only),
                store,
                str(recipe.path) if len(recipes) > 1 else "",
            )
            for recipe, store in zip(recipes, stores, strict=True)
        ]
        print_notes(recipes, [batch.plan for batch in batches])
        budget = None if max_credits is None else _budget(batches, max_credits)
        beside = recorded_beside(stores, made_only=True)
        options = dataclasses.replace(options, recorded_elsewhere=beside)
        # Nothing to do: no event loop, no connection, not a single request.
        work = any(batch.plan.has_changes for batch in batches)
        result = (
            asyncio.run(_apply(settings, batches, options, reporter, budget))
            if work
            else ApplyResult()
        )
        pruned = True
        if prune and result.ok:
            from engine.commands.lifecycle import prune_batches

            pruned = prune_batches(settings, batches, reporter)
    summary = result.summary()
    if result.stopped == "max_credits" and budget is not None:
        summary = dataclasses.replace(summary, notes=(budget.stopped_line(),))
    reporter.close(summary)
    if result.write_error is not None:
        raise result.write_error  # its one line names the file and the cause; exit 1
    if result.stopped == "interrupted":
        return INTERRUPTED
    return 0 if result.ok and pruned else 1


def _budget(batches: Sequence[Batch], limit: Decimal) -> Budget:
    """The run's budget; refused before any request when the plan alone passes it."""
    cost = estimate(batch.plan for batch in batches).credits
    if cost > limit:
        raise BudgetError(
            f"the plan costs {credits_text(cost)}, more than --max-credits {number_text(limit)};"
            " nothing was sent"
        )
    return Budget(limit)


async def _apply(
    settings: ApiSettings,
    batches: Sequence[Batch],
    options: ApplyOptions,
    reporter: Reporter,
    budget: Budget | None = None,
) -> ApplyResult:
    executor: Executor | None = None

    def on_retry(exc: BaseException, wait: float) -> None:
        if executor is not None:
            executor.on_retry(exc, wait)

    async with HeyGenClient.for_settings(settings, on_retry=on_retry) as client:
        await client.preflight()  # a refused key or an unreachable API: nothing is sent
        executor = Executor(client, batches, reporter, options, budget)
        loop = asyncio.get_running_loop()
        interrupts = 0

        def on_sigint() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts > 1:
                # The journal already holds every change: leaving now loses nothing.
                os._exit(INTERRUPTED)
            assert executor is not None
            executor.interrupt()

        before = {sig: signal.getsignal(sig) for sig in _heeded(STOP_SIGNALS)}
        for sig in before:
            loop.add_signal_handler(sig, on_sigint)
        try:
            return await executor.run()
        finally:
            for sig, handler in before.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, handler)  # as before the loop (removing set SIG_DFL)

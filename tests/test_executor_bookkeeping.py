"""The executor's bookkeeping: each manifest folded on its own clock; a poll that breaks
for a reason other than the API's ends the wait of the looks it watched, loudly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run
from test_executor import PROMPT, FakeClient, Project
from test_interrupt import write_recipe

from looks import durable
from looks import executor as executor_module
from looks.client import LookInfo
from looks.executor import FOLD_EVERY_SECONDS, ApplyOptions, Batch, Executor
from looks.manifest import ManifestStore, NodeRecord
from looks.plan import build_plan
from looks.progress import PlainReporter
from looks.recipe import load_recipe


class BrokenListing(FakeClient):
    """A listing that fails with a bug, not with an API error."""

    async def list_looks(
        self, *, group_id: str | None = None, avatar_type: str | None = None, page_size: int = 50
    ) -> list[LookInfo]:
        await asyncio.sleep(0)
        raise RuntimeError("listing parser bug")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    p = Project(tmp_path, monkeypatch)
    yield p  # type: ignore[misc]
    p.close()


def test_an_unexpected_poll_error_reaches_the_run_instead_of_a_timeout(project: Project) -> None:
    project.write(PROMPT)
    # Far longer than the run takes when the error is passed on: a hang fails the test.
    with pytest.raises(RuntimeError, match="listing parser bug"):
        project.apply(BrokenListing(), node_timeout=120)
    # The create was journaled before it was sent: the next apply polls it, pays nothing.
    assert project.record("ava").status == "processing"


def _store(tmp_path: Path, name: str) -> tuple[ManifestStore, Batch]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(PROMPT, encoding="utf-8")
    store = ManifestStore(tmp_path / f"{name}.manifest.json", f"{name}.yaml")
    return store, Batch(build_plan(load_recipe(recipe), store.nodes), store, name)


def test_each_manifest_is_folded_on_its_own_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (one, first), (two, second) = _store(tmp_path, "one"), _store(tmp_path, "two")
    try:
        executor = Executor(
            FakeClient(),  # type: ignore[arg-type]
            [first, second],
            PlainReporter(open(tmp_path / "out.txt", "w")),  # noqa: SIM115
            ApplyOptions(),
        )
        for store in (one, two):
            store.record(NodeRecord("ava", "base", "f", "pending"))
        now = executor_module.time.monotonic() + FOLD_EVERY_SECONDS + 1
        monkeypatch.setattr(executor_module.time, "monotonic", lambda: now)
        executor._maybe_fold(one)
        executor._maybe_fold(two)  # due too: folding `one` must not reset its clock
        assert (one.pending_changes, two.pending_changes) == (0, 0)
    finally:
        one.close()
        two.close()


def test_a_look_waits_on_fewer_fsyncs_of_the_journal_than_three(
    tmp_path: Path,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its key before the create and the create's answer are made durable at once; its
    completion asks nothing of the API, so it rides on the next fsync of the journal or on
    the fold: one fsync less in most hand-overs of a job slot (docs/performance.md)."""
    recipe = write_recipe(tmp_path, avatars=1, looks=3)
    synced: list[str] = []
    real_fsync = durable.fsync

    def counting(fd: int, path: Path | str) -> None:
        synced.append(Path(path).name)
        real_fsync(fd, path)

    monkeypatch.setattr(durable, "fsync", counting)
    assert looks("apply", recipe).code == 0
    creates = 4
    # Two per create (its key, its answer); a completion only when it follows another
    # (tests/test_manifest.py: only the journal's last line waits), three per look before.
    assert 2 * creates <= synced.count("batch.manifest.json.journal") < 3 * creates
    # Every completion is in the manifest the run folded at its end.
    manifest = json.loads((tmp_path / "batch.manifest.json").read_text(encoding="utf-8"))
    assert [r["status"] for r in manifest["nodes"].values()] == ["completed"] * creates

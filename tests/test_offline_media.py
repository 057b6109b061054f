"""Offline means offline: commands that do not send the media never need them on disk.

A team that does not commit its people's headshots runs `status`, `catalog`, `graph` and
`plan` in CI; only an upload that really must send a file fails for it, and `validate`,
the checker, still reports a path that names no file.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import API_KEY, Run

from engine import sim
from engine.client import HeyGenClient
from engine.executor import ApplyResult, Batch, Executor
from engine.manifest import ManifestStore, manifest_path_for
from engine.plan import build_plan
from engine.progress import reporter_for
from engine.recipe import load_recipe

MEDIA = ("media/sarah.png", "media/office.png", "media/marco.png")


def test_status_catalog_graph_and_plan_without_the_media(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    tmp_path: Path,
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    for name in MEDIA:
        (recipes / name).unlink()

    status = looks("status", recipe)
    assert (status.code, status.err) == (0, "")
    assert status.out.splitlines()[-1] == "9 completed"
    catalog = looks("catalog", recipe, "--out", tmp_path / "gallery")
    assert (catalog.code, catalog.err) == (0, "")
    graph = looks("graph", recipe)
    assert graph.code == 0
    plan = looks("plan", recipe, "--detailed-exitcode")
    assert (plan.code, plan.out.splitlines()[0]) == (0, f"{recipe}: up to date")
    # Said once per file, though office.png and sarah.png are each used once and marco.png
    # once: three files, three lines.
    assert sorted(plan.err.splitlines()) == sorted(
        f"looks: {recipe}: {name}: not on disk; unchanged since its recorded upload"
        for name in MEDIA
    )
    assert graph.err.splitlines() == plan.err.splitlines()

    # validate is the checker: a path that names no file is an error there.
    validate = looks("validate", recipe)
    assert validate.code == 1
    assert [line.split(": ", 2)[-1] for line in validate.err.splitlines()] == [
        "file not found: media/sarah.png",
        "file not found: media/office.png",
        "file not found: media/marco.png",
    ]


@pytest.mark.parametrize("stand_in", ["directory", "fifo", "dangling-symlink"])
def test_media_replaced_by_what_is_not_a_file_is_offline_too(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    tmp_path: Path,
    stand_in: str,
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    for name in MEDIA:
        path = recipes / name
        path.unlink()
        if stand_in == "directory":
            path.mkdir()
        elif stand_in == "fifo":
            os.mkfifo(path)  # nobody writes to it: opening it plainly would hang
        else:
            path.symlink_to(tmp_path / "gone" / path.name)

    status = looks("status", recipe)
    assert (status.code, status.err) == (0, "")
    assert status.out.splitlines()[-1] == "9 completed"
    catalog = looks("catalog", recipe, "--out", tmp_path / "gallery")
    assert (catalog.code, catalog.err) == (0, "")
    assert looks("graph", recipe).code == 0
    plan = looks("plan", recipe, "--detailed-exitcode")
    assert (plan.code, plan.out.splitlines()[0]) == (0, f"{recipe}: up to date")
    assert len(plan.err.splitlines()) == len(MEDIA)
    # apply opens none of them (a FIFO would hang it): nothing to send, nothing to do.
    before = simulator.stats()["by_route"]
    applied = looks("apply", recipe)
    assert applied.code == 0, applied.out + applied.err
    after = simulator.stats()["by_route"]
    assert {r: n for r, n in after.items() if "GET" not in r} == {
        r: n for r, n in before.items() if "GET" not in r
    }
    # validate, the checker, names each file by line.
    validate = looks("validate", recipe)
    assert validate.code == 1
    assert [line.split(": ")[0] for line in validate.err.splitlines()] == [
        f"{recipe}:12",
        f"{recipe}:17",
        f"{recipe}:27",
    ]


def test_only_the_upload_that_must_send_a_missing_file_fails(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    for name in MEDIA:
        (recipes / name).unlink()
    text = recipe.read_text()
    text = text.replace("Casual grey sweater", "Casual blue sweater")
    text += (
        "  nina:\n"
        "    name: Nina\n"
        "    base: {type: photo, file: {path: media/nina.png}}\n"
        "    looks:\n"
        "      red: {prompt: A red dress}\n"
        "  omar:\n"
        "    name: Omar\n"
        "    base: {type: prompt, prompt: A tall man with a beard}\n"
    )
    recipe.write_text(text)

    plan = looks("plan", recipe, "--json")
    assert plan.code == 0, plan.err
    actions = {a["address"]: a["action"] for a in json.loads(plan.out)["actions"]}
    assert actions["upload:media/nina.png"] == "create"
    assert actions["sarah/podcast"] == "replace"
    assert actions["sarah"] == "keep"
    assert f"looks: {recipe}: media/nina.png: not on disk and never uploaded;" in plan.err

    # The podcast look is replaced on the recorded base, with no bytes needed; Omar is
    # created; only Nina's upload fails, naming the file, and Nina's nodes wait for it.
    applied = looks("apply", recipe)
    assert applied.code == 1
    assert (
        "upload:media/nina.png: failed (file_missing: media/nina.png: not on disk)"
        in applied.out.splitlines()
    )
    nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    assert nodes["sarah/podcast"]["status"] == "completed"
    assert nodes["omar"]["status"] == "completed"
    assert nodes["nina"]["status"] == "blocked"
    assert "upload:media/nina.png" not in nodes  # nothing recorded for a file never seen

    # Once the file is there, the next apply uploads it and finishes.
    shutil.copy(
        Path(__file__).parent.parent / "recipes/media/marco.png", recipes / "media/nina.png"
    )
    again = looks("apply", recipe)
    assert again.code == 0, again.out + again.err
    nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    assert nodes["nina/red"]["status"] == "completed"


def test_a_file_gone_between_loading_and_uploading_fails_only_its_upload(
    recipes: Path, simulator: sim.RunningSimulator
) -> None:
    recipe = load_recipe(recipes / "sarah.yaml")
    (recipes / "media/marco.png").unlink()  # after the recipe was read, before its upload
    store = ManifestStore(manifest_path_for(recipe.path), "sarah.yaml")
    batch = Batch(build_plan(recipe, store.nodes), store)

    async def apply() -> ApplyResult:
        async with HeyGenClient(simulator.base_url, API_KEY) as client:
            reporter = reporter_for(io.StringIO(), log_json=False)
            return await Executor(client, [batch], reporter).run()

    try:
        result = asyncio.run(apply())
    finally:
        store.close()
    failed = [reason for _, reason in result.failures if "file_unreadable" in reason]
    assert failed == ["failed: file_unreadable: media/marco.png: No such file or directory"]
    nodes = json.loads(manifest_path_for(recipe.path).read_text())["nodes"]
    assert nodes["sarah/podcast"]["status"] == "completed"
    assert nodes["marco"]["status"] == "blocked"

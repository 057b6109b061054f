"""The Python API against `looks sim`: what the commands call, usable from Python."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import API_KEY, ROOT, Run

import looks
from looks import sim
from looks.errors import ManifestLockedError, RecipeError
from looks.progress import Event
from looks.summary import RunSummary
from looks.workspace import open_store

DOC = ROOT / "docs" / "python-api.md"


class Recorder:
    """A reporter that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.summary: RunSummary | None = None

    def event(self, event: Event) -> None:
        self.events.append(event)

    def counts(self, counts: Counter[str], total: int) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        self.summary = summary


def test_apply_a_recipe_through_the_python_api(
    recipes: Path, simulator: sim.RunningSimulator
) -> None:
    recipe = recipes / "sarah.yaml"
    plan = looks.plan(recipe)
    assert plan.has_changes
    creates = [a for a in plan.actions if a.action == "create"]
    assert {a.kind for a in creates} == {"upload", "base", "look"}
    assert all(a.reason for a in plan.actions)
    assert plan.to_json()["summary"]["create"] == len(creates)

    reporter = Recorder()
    result = looks.apply(
        recipe, api_key=API_KEY, base_url=simulator.base_url, max_jobs=3, reporter=reporter
    )
    assert result.ok
    runs = sum(1 for a in plan.actions if a.action not in ("keep", "orphan"))
    assert result.counts["completed"] == runs
    assert {e.kind for e in reporter.events} >= {"uploaded", "created", "completed"}
    assert reporter.summary is not None and reporter.summary.count("completed") == runs

    records = looks.status(recipe)
    assert {r.address for r in records} == {a.address for a in plan.actions}
    assert all(r.status == "completed" for r in records)
    assert all(r.look_id for r in records if r.kind in ("base", "look"))
    assert not looks.plan(recipe).has_changes


@pytest.fixture
def cli(looks: Callable[..., Run]) -> Callable[..., Run]:
    """The `looks` fixture of conftest, named apart from the package imported as looks."""
    return looks


def test_plan_to_json_is_what_plan_json_prints(recipes: Path, cli: Callable[..., Run]) -> None:
    recipe = recipes / "characters.yaml"
    run = cli("plan", recipe, "--json")
    assert run.code == 0
    assert json.loads(run.out) == looks.plan(recipe).to_json()


def test_apply_async_runs_in_the_callers_loop(
    recipes: Path, simulator: sim.RunningSimulator
) -> None:
    recipe = recipes / "characters.yaml"

    async def main() -> looks.ApplyResult:
        return await looks.apply_async(
            [recipe], api_key=API_KEY, base_url=simulator.base_url, only=["*"]
        )

    result = asyncio.run(main())
    assert result.ok and result.counts["completed"] > 0
    again = asyncio.run(main())  # nothing left: no request, nothing counted
    assert again.ok and sum(again.counts.values()) == 0


def test_a_locked_manifest_is_refused_not_shared(
    recipes: Path, simulator: sim.RunningSimulator
) -> None:
    recipe = recipes / "characters.yaml"
    with open_store(recipe), pytest.raises(ManifestLockedError):
        looks.apply(recipe, api_key=API_KEY, base_url=simulator.base_url)


def test_validate_reports_every_problem_of_every_recipe(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("version: 1\navatars: {}\nextra: 1\n", encoding="utf-8")
    two.write_text("version: 2\navatars: {}\n", encoding="utf-8")
    with pytest.raises(RecipeError) as caught:
        looks.validate([one, two])
    assert {p.file for p in caught.value.problems} == {str(one), str(two)}


def test_prune_asks_and_a_refusal_deletes_nothing(
    recipes: Path, simulator: sim.RunningSimulator
) -> None:
    recipe = recipes / "characters.yaml"
    assert looks.apply(recipe, api_key=API_KEY, base_url=simulator.base_url).ok
    before = {r.address for r in looks.status(recipe)}
    seen: list[looks.Pruning] = []

    def refuse(pruning: Sequence[looks.Pruning]) -> bool:
        seen.extend(pruning)
        return False

    # Nothing superseded or orphaned yet: the selection is empty and nothing is deleted.
    assert looks.prune(recipe, api_key=API_KEY, base_url=simulator.base_url, confirm=refuse) is None
    assert [p.items for p in seen] == [()]
    assert {r.address for r in looks.status(recipe)} == before


def test_the_documented_example_runs(recipes: Path, simulator: sim.RunningSimulator) -> None:
    (code,) = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.M | re.S)
    env = {
        **os.environ,
        "HEYGEN_BASE_URL": simulator.base_url,
        "HEYGEN_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=recipes.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("create ") for line in lines)
    assert any(line.startswith("ok {") for line in lines)
    assert any(line.startswith("sarah ") and " completed look_" in line for line in lines)

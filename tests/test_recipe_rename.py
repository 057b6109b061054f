"""A recipe renamed (`git mv a.yaml b.yaml`) without its manifest: the next run must not
start a new manifest and pay again for every look; `looks rehome` carries the manifest over
under the new recipe's name, so a plain `looks apply b.yaml` finds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run, drop_target
from test_manifest_home import manifest_json, prompt_recipe, sim_look_ids

from engine import sim
from engine.manifest import manifest_path_for


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_renamed_recipe_is_not_paid_again_and_rehome_carries_its_manifest(
    cwd: Path, simulator: sim.RunningSimulator, api_env: dict[str, str], looks: Callable[..., Run]
) -> None:
    old = prompt_recipe(Path("old.yaml"), "anna")
    assert looks("apply", old).code == 0
    old_manifest = manifest_path_for(old)
    recorded = old_manifest.read_bytes()
    made = sim_look_ids(simulator)
    new = old.rename("new.yaml")  # as `git mv old.yaml new.yaml` leaves it

    for command in ("plan", "apply"):
        refused = looks(command, new)
        assert refused.code == 1, (command, refused.out, refused.err)
        assert drop_target(refused.err).count("\n") == 1, refused.err
        assert "old.manifest.json records recipe old.yaml, which no longer exists" in refused.err
        assert "looks rehome new.yaml --manifest old.manifest.json" in refused.err
    assert sim_look_ids(simulator) == made  # nothing paid again
    assert old_manifest.read_bytes() == recorded
    assert not manifest_path_for(new).exists()

    rehomed = looks("rehome", new, "--manifest", old_manifest)  # the advice, literally
    assert rehomed.code == 0, rehomed.err
    assert not old_manifest.exists()
    assert manifest_json(manifest_path_for(new))["recipe"] == "new.yaml"

    again = looks("apply", new)
    assert again.code == 0, again.err
    assert sim_look_ids(simulator) == made  # every look still the one paid for once


def test_a_new_recipe_beside_a_deleted_ones_manifest_starts_once_it_is_moved_away(
    cwd: Path, simulator: sim.RunningSimulator, api_env: dict[str, str], looks: Callable[..., Run]
) -> None:
    gone = prompt_recipe(Path("gone.yaml"), "anna")
    assert looks("apply", gone).code == 0
    gone.unlink()
    fresh = prompt_recipe(Path("fresh.yaml"), "bert")
    assert looks("plan", fresh).code == 1
    Path("archive").mkdir()
    manifest_path_for(gone).rename(Path("archive") / "gone.manifest.json")  # the advice
    assert looks("apply", fresh).code == 0
    assert manifest_json(manifest_path_for(fresh))["recipe"] == "fresh.yaml"


def test_a_hard_linked_recipe_shares_its_manifest_instead_of_paying_again(
    cwd: Path, simulator: sim.RunningSimulator, api_env: dict[str, str], looks: Callable[..., Run]
) -> None:
    first = prompt_recipe(Path("first.yaml"), "anna")
    assert looks("apply", first).code == 0
    made = sim_look_ids(simulator)
    second = Path("second.yaml")
    second.hardlink_to(first)

    refused = looks("apply", second)
    assert refused.code == 1, refused.out
    assert drop_target(refused.err).count("\n") == 1, refused.err
    assert "is the same file as first.yaml (a hard link)" in refused.err
    assert sim_look_ids(simulator) == made
    assert not manifest_path_for(second).exists()
    # The advice, literally: the manifest recording the looks is found, nothing paid.
    assert looks("apply", second, "--manifest", manifest_path_for(first)).code == 0
    assert sim_look_ids(simulator) == made


def test_a_second_manifest_named_on_purpose_is_not_taken_for_a_hard_link(
    cwd: Path, simulator: sim.RunningSimulator, api_env: dict[str, str], looks: Callable[..., Run]
) -> None:
    recipe = prompt_recipe(Path("r.yaml"), "anna")
    assert looks("apply", recipe).code == 0
    other = looks("plan", recipe, "--manifest", "staging.manifest.json")  # another account's
    assert (other.code, other.err) == (0, "")

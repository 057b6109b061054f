"""A manifest belongs to one recipe: another recipe's is refused, re-homing is explicit,
moving or cloning the repository keeps the pair, and a symlinked recipe is the real file."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Run, drop_target

from engine import sim
from engine.manifest import manifest_path_for


def prompt_recipe(path: Path, avatar: str, looks: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 1",
        "avatars:",
        f"  {avatar}:",
        f"    name: {avatar.title()}",
        "    base: {type: prompt, prompt: A person in a studio}",
        "    looks:",
    ]
    for n in range(looks):
        lines += [f"      look-{n}:", f"        prompt: Outfit {n}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def manifest_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def sim_look_ids(s: sim.RunningSimulator) -> list[str]:
    return sorted(look["id"] for look in s.state()["looks"])


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_another_recipes_manifest_is_refused_before_any_request(
    cwd: Path, simulator: sim.RunningSimulator, api_env: dict[str, str], looks: Callable[..., Run]
) -> None:
    a = prompt_recipe(Path("a.yaml"), "anna")
    b = prompt_recipe(Path("b.yaml"), "bert")
    assert looks("apply", b).code == 0
    b_manifest = manifest_path_for(b)
    before = b_manifest.read_bytes()
    made = sim_look_ids(simulator)
    requests = simulator.stats()["requests"]
    expected = (
        "looks: b.manifest.json: this manifest belongs to recipe b.yaml, not a.yaml; nothing"
        " was done. Pass that recipe or a.yaml's own manifest; to make this one a.yaml's (a"
        " recipe renamed or moved), run: looks rehome a.yaml --manifest b.manifest.json\n"
    )
    for command in (
        ("apply", a, "--manifest", b_manifest, "--prune"),
        ("plan", a, "--manifest", b_manifest),
        ("status", a, "--manifest", b_manifest),
        ("prune", a, "--manifest", b_manifest, "--yes"),
        ("refresh", a, "--manifest", b_manifest),
        ("repair", a, "--manifest", b_manifest),
    ):
        result = looks(*command)
        assert (result.code, drop_target(result.err)) == (1, expected), command
    assert simulator.stats()["requests"] == requests  # not one request

    # Even a damaged journal is left alone when the manifest is another recipe's.
    journal = b_manifest.with_name(b_manifest.name + ".journal")
    journal.write_text('{"address": "x", "rec\n{"address": "y", "record": null}\n')
    damaged = journal.read_bytes()
    assert looks("repair", a, "--manifest", b_manifest).err == expected
    assert journal.read_bytes() == damaged
    assert not journal.with_name(journal.name + ".damaged").exists()
    journal.unlink()
    assert sim_look_ids(simulator) == made  # nothing deleted, nothing created
    assert b_manifest.read_bytes() == before  # the recipe field is not rewritten

    # Re-homing is an act of its own, and says what it did.
    rehomed = looks("rehome", a, "--manifest", b_manifest)
    assert rehomed.code == 0, rehomed.err
    assert rehomed.out == "b.manifest.json: re-homed from recipe b.yaml to a.yaml.\n"
    assert manifest_json(b_manifest)["recipe"] == "a.yaml"
    assert manifest_json(b_manifest)["nodes"] == json.loads(before)["nodes"]
    assert looks("plan", a, "--manifest", b_manifest).code == 0


def test_moving_or_cloning_the_repository_keeps_the_pair(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    repo = tmp_path / "repo"
    recipe = prompt_recipe(repo / "recipes" / "a.yaml", "anna")
    state = repo / "state" / "a.manifest.json"
    state.parent.mkdir()
    assert looks("apply", recipe).code == 0
    assert looks("apply", recipe, "--manifest", state).code == 0
    assert manifest_json(manifest_path_for(recipe))["recipe"] == "a.yaml"
    assert manifest_json(state)["recipe"] == "../recipes/a.yaml"  # relative, not absolute
    made = sim_look_ids(simulator)

    clone = tmp_path / "elsewhere" / "clone"
    shutil.copytree(repo, clone)
    moved = tmp_path / "moved"
    repo.rename(moved)
    for root in (clone, moved):
        recipe = root / "recipes" / "a.yaml"
        for extra in ((), ("--manifest", root / "state" / "a.manifest.json")):
            result = looks("apply", recipe, *extra)
            assert result.code == 0, result.err
            assert "0 completed" in result.out
    assert sim_look_ids(simulator) == made


def test_a_manifest_written_before_keeps_working(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    """Manifests of earlier versions: a recipe relative to them, or an absolute path."""
    recipe = prompt_recipe(tmp_path / "recipes" / "a.yaml", "anna")
    state = tmp_path / "state" / "a.manifest.json"
    state.parent.mkdir()
    assert looks("apply", recipe, "--manifest", state).code == 0
    data = manifest_json(state)
    made = sim_look_ids(simulator)

    # What looks wrote for a manifest away from its recipe: the recipe's absolute path.
    data["recipe"] = str(recipe.resolve())
    state.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    result = looks("apply", recipe, "--manifest", state)
    assert result.code == 0 and "0 completed" in result.out, result.err
    assert manifest_json(state)["recipe"] == "../recipes/a.yaml"  # the same file, relative now

    # ... from a checkout that has moved since: the path is gone, the name is the same.
    data["recipe"] = "/no/longer/here/recipes/a.yaml"
    state.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    result = looks("plan", recipe, "--manifest", state)
    assert result.code == 0
    assert drop_target(result.err) == (
        f"looks: note: {state}: its recipe /no/longer/here/recipes/a.yaml no longer exists;"
        " taken to be ../recipes/a.yaml (same name), moved with its repository\n"
    )
    assert "3 unchanged" in result.out
    assert sim_look_ids(simulator) == made


def test_a_symlinked_recipe_is_its_real_file(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    real = tmp_path / "real"
    shutil.copytree(ROOT / "recipes", real)
    links = tmp_path / "links"
    links.mkdir()
    link = links / "sarah.yaml"
    link.symlink_to(Path("..") / "real" / "sarah.yaml")  # its media/ is beside the real file

    first = looks("apply", link)
    assert first.code == 0, first.err
    assert manifest_path_for(link) == real / "sarah.manifest.json"
    assert sorted(p.name for p in links.iterdir()) == ["sarah.yaml"]  # no manifest by the link
    made = sim_look_ids(simulator)
    assert made
    for path in (real / "sarah.yaml", link):
        again = looks("apply", path)
        assert again.code == 0 and "0 completed" in again.out, again.out
    assert sim_look_ids(simulator) == made
    assert manifest_json(real / "sarah.manifest.json")["recipe"] == "sarah.yaml"


def test_a_symlinked_manifest_is_rewritten_through_the_link(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = prompt_recipe(tmp_path / "a.yaml", "anna", looks=1)
    target = tmp_path / "store" / "a.manifest.json"
    target.parent.mkdir()
    link = tmp_path / "a.link.json"
    link.symlink_to(target)
    assert looks("apply", recipe, "--only", "anna", "--manifest", link).code == 0
    assert link.is_symlink() and manifest_json(target)["recipe"] == "../a.yaml"
    assert looks("apply", recipe, "--manifest", link).code == 0
    assert link.is_symlink()
    assert len(manifest_json(target)["nodes"]) == 2


def test_a_missing_manifest_directory_is_one_line(
    cwd: Path, api_env: dict[str, str], looks: Callable[..., Run]
) -> None:
    recipe = prompt_recipe(Path("a.yaml"), "anna")
    for command in ("apply", "refresh", "repair"):
        result = looks(command, recipe, "--manifest", "nodir/x.json")
        assert (result.code, result.out) == (1, "")
        assert drop_target(result.err) == (
            "looks: nodir/x.json: directory nodir does not exist: create it, or pass another"
            " --manifest\n"
        )
    assert not os.path.exists("nodir")
    # Reading is fine: there is nothing recorded there yet.
    assert looks("plan", recipe, "--manifest", "nodir/x.json").code == 0

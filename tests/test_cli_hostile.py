"""Arguments a hostile (or hurried) user gives: each one line and a usage error, never exit 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run, drop_target

from looks import sim
from looks.errors import UsageError

RECIPE = "version: 1\navatars:\n  zoe:\n    name: Zoe\n    base: {type: prompt, prompt: a cafe}\n"


@pytest.mark.parametrize("group", ["", " ", "group_1 x", "a/b", "g\x1b[2J"])
def test_a_blank_or_malformed_group_id_is_a_usage_error(
    group: str, tmp_path: Path, looks: Callable[..., Run], api_env: dict[str, str]
) -> None:
    run = looks("import", "--group", group, "--out", tmp_path / "imported.yaml")

    assert run.code == 2, run.err
    [line] = run.err.splitlines()
    assert line.startswith("looks: argument --group: expected an avatar group id"), line
    assert "\x1b" not in run.err
    assert not (tmp_path / "imported.yaml").exists()


@pytest.mark.parametrize("command", ["plan", "apply", "validate"])
def test_the_same_recipe_given_twice_is_a_usage_error_not_a_lock_on_itself(
    command: str, tmp_path: Path, looks: Callable[..., Run], api_env: dict[str, str]
) -> None:
    # `looks apply recipes/*.yaml recipes/zoe.yaml` used to plan zoe twice (twice the
    # credits) and then find the manifest "locked by pid <its own pid>".
    recipe = tmp_path / "zoe.yaml"
    recipe.write_text(RECIPE)
    (tmp_path / "sub").mkdir()
    again = f"{tmp_path}/sub/../zoe.yaml"  # pathlib keeps "..", so this is another spelling

    run = looks(command, recipe, again)

    assert run.code == 2, run.out + run.err
    assert drop_target(run.err) == f"looks: {again} is {recipe} again: give each recipe once\n"
    assert not (tmp_path / "zoe.manifest.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{loop}.yaml"),
        ("plan", "{recipe}", "--manifest", "{loop}.json"),
        ("rehome", "{recipe}", "--manifest", "{loop}.json"),
        ("catalog", "{recipe}", "--out", "{loop}"),
        ("validate", "{csv_recipe}"),
    ],
    ids=["recipe", "manifest", "rehome", "catalog-out", "foreach-csv"],
)
def test_a_symlink_loop_is_bad_input_not_an_internal_error(
    args: tuple[str, ...], tmp_path: Path, looks: Callable[..., Run]
) -> None:
    # Path.resolve() raises RuntimeError on a loop before Python 3.13: it was exit 3.
    for suffix in (".yaml", ".json", ".csv", ""):
        (tmp_path / f"loop{suffix}").symlink_to(tmp_path / f"back{suffix}")
        (tmp_path / f"back{suffix}").symlink_to(tmp_path / f"loop{suffix}")
    recipe = tmp_path / "zoe.yaml"
    recipe.write_text(RECIPE)
    csv_recipe = tmp_path / "people.yaml"
    csv_recipe.write_text(
        "version: 1\navatars:\n  p-{id}:\n    foreach: {csv: loop.csv}\n"
        "    name: '{id}'\n    base: {type: prompt, prompt: x}\n"
    )
    paths = {"loop": tmp_path / "loop", "recipe": recipe, "csv_recipe": csv_recipe}

    run = looks(*(arg.format(**paths) for arg in args))

    assert run.code == 1, run.err
    [line] = run.err.splitlines()
    assert "internal error" not in line
    assert "symbolic links" in line or "CSV file a symlink that leads nowhere: loop.csv" in line


def test_an_endless_recipe_is_refused_not_read_forever(looks: Callable[..., Run]) -> None:
    # /dev/zero (or a mistyped path to a huge file) used to be read into memory without end.
    run = looks("validate", "/dev/zero")

    assert run.code == 1
    [line] = run.err.splitlines()
    assert line.startswith("/dev/zero:1: ") and "not a regular file" in line, line


@pytest.mark.parametrize("value", ["1-inf", "inf", "nan", "inf-inf"])
def test_an_infinite_generation_time_is_named_in_the_flags_terms(
    value: str, looks: Callable[..., Run]
) -> None:
    run = looks("sim", f"--generation-seconds={value}")

    assert run.code == 2
    assert run.err == (
        f"looks: sim: --generation-seconds takes S or LO-HI (seconds), not {value!r}\n"
    )


def test_a_sim_state_file_that_cannot_be_written_is_refused_at_start(tmp_path: Path) -> None:
    # It used to serve for hours, then lose the whole state at shutdown ("No such file").
    path = tmp_path / "missing-directory" / "sim.json"

    with pytest.raises(UsageError) as refused:
        sim.Simulator(sim.SimConfig(state_file=path))

    assert str(refused.value).startswith(f"sim: cannot write state file {path}: ")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/full"])
def test_a_sim_state_file_that_is_a_device_is_refused_not_read_forever(device: str) -> None:
    with pytest.raises(UsageError) as refused:
        sim.Simulator(sim.SimConfig(state_file=Path(device)))

    assert str(refused.value) == f"sim: cannot load state file {device}: not a regular file"

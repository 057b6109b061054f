"""Output is a courtesy, never a condition of the run: stdout to /dev/full, stdout or
stderr closed before start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from engine import sim
from engine.manifest import journal_path_for, manifest_path_for


def _assert_all_recorded(recipe: Path, simulator: sim.RunningSimulator) -> None:
    manifest = manifest_path_for(recipe)
    assert not journal_path_for(manifest).exists()  # folded to the end
    nodes = json.loads(manifest.read_text())["nodes"].values()
    assert {r["status"] for r in nodes} == {"completed"}
    made = {look["id"] for look in simulator.state()["looks"]}
    assert made == {r["look_id"] for r in nodes if r.get("look_id")}


def _apply_in_shell(recipe: Path, env: dict[str, str], redirect: str, *flags: str) -> int:
    """`looks apply RECIPE REDIRECT` as a shell runs it (`>&-` closes the descriptor)."""
    command = " ".join([sys.executable, "-m", "engine.cli", "apply", *flags, str(recipe)])
    proc = subprocess.run(
        ["sh", "-c", f"exec {command} {redirect}"], env=env, cwd=ROOT, timeout=120
    )
    return proc.returncode


@pytest.mark.parametrize(
    ("redirect", "flags"),
    [
        (">/dev/full", ()),  # every write fails with ENOSPC
        (">/dev/full", ("--log-json",)),
        (">&-", ()),  # stdout closed before start: Python sets sys.stdout to None
        (">&- 2>&-", ("--log-json",)),
        ("2>&-", ()),
    ],
)
def test_apply_runs_to_the_end_whatever_its_output_is(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    redirect: str,
    flags: tuple[str, ...],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert _apply_in_shell(recipe, api_env, redirect, *flags) == 0
    _assert_all_recorded(recipe, simulator)


def test_a_name_the_output_cannot_encode_is_escaped_not_the_end_of_the_output(
    recipes: Path, simulator: sim.RunningSimulator, api_env: dict[str, str]
) -> None:
    media = recipes / "media"
    (media / "sarah.png").rename(media / "sárah.png")
    recipe = recipes / "sarah.yaml"
    recipe.write_text(recipe.read_text().replace("media/sarah.png", "media/sárah.png"))
    env = {**api_env, "PYTHONIOENCODING": "ascii"}  # a log that takes ASCII only
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "apply", str(recipe)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    out = proc.stdout.decode("ascii")
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert "s\\xe1rah.png" in out  # the upload's line, escaped
    assert "completed, 0 failed, 0 blocked, 0 not started." in out  # and all after it
    _assert_all_recorded(recipe, simulator)

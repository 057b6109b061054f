"""Output is a courtesy, never a condition of the run: stdout to /dev/full, stderr closed
before the start, a name the output cannot encode. (A closed stdout is refused before
anything runs: tests/test_output_boundary.py.)"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
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


def test_with_stderr_closed_errors_never_land_in_stdout(recipes: Path) -> None:
    # `looks plan --json r.yaml > plan.json 2>&-`: a problem line must not corrupt plan.json.
    broken = recipes / "broken.yaml"
    broken.write_text("version: 1\navatars:\n  Bad Key: {}\n")
    command = f"exec {sys.executable} -m engine.cli plan --json {broken} 2>&-"
    proc = subprocess.run(
        ["sh", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == ""


def test_a_name_the_output_cannot_encode_is_replaced_not_the_end_of_the_output(
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
    assert "s?rah.png" in out  # the upload's line, the character replaced
    assert "completed, 0 failed, 0 blocked, 0 not started." in out  # and all after it
    _assert_all_recorded(recipe, simulator)


def test_a_terminal_closed_under_the_run_stops_it_as_ctrl_c_does(
    tmp_path: Path, simulator: sim.RunningSimulator, api_env: dict[str, str]
) -> None:
    # A real pseudo-terminal whose window closes: SIGHUP, then every write fails with EIO.
    simulator.configure(generation_seconds=60)
    recipe = tmp_path / "one.yaml"
    recipe.write_text(
        "version: 1\navatars:\n  a:\n    name: A\n    base: {type: prompt, prompt: P}\n"
    )
    pid, master = pty.fork()
    if pid == 0:  # the child: `looks apply` on the terminal
        os.chdir(ROOT)
        os.execve(
            sys.executable, [sys.executable, "-m", "engine.cli", "apply", str(recipe)], api_env
        )
    seen = b""
    deadline = time.monotonic() + 60
    while b"in flight" not in seen or b"1 in flight" not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(master, 4096)
    os.close(master)  # the window closes
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130
    manifest = manifest_path_for(recipe)
    assert not journal_path_for(manifest).exists()  # folded on the way out
    record = json.loads(manifest.read_text())["nodes"]["a"]
    assert record["status"] == "processing"  # recorded, picked up by the next apply
    assert record["look_id"] == simulator.state()["looks"][0]["id"]

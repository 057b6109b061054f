"""The README's tour runs as written: its shell blocks, in bash, against a real `looks sim`.

If the README drifts from what the tool does (a command renamed, a wait forgotten), this fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from looks.manifest import manifest_path_for


def tour_commands() -> str:
    """The ```sh blocks of README's "A five-minute tour" section, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.M | re.S)
    assert blocks, "the tour has no ```sh block"
    return "".join(blocks)


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    commands = tour_commands()
    assert "looks sim" in commands and "looks apply recipes/team.yaml" in commands
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEYGEN_", "LOOKS_"))}
    bin_dir = str(Path(sys.executable).parent)  # where the `looks` console script lives
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    assert shutil.which("looks", path=env["PATH"]), "the `looks` script is not installed"
    # Files, not pipes: the simulator left in background would hold a pipe open forever.
    out_file, err_file = tmp_path / "tour.out", tmp_path / "tour.err"
    with out_file.open("w") as stdout, err_file.open("w") as stderr:
        proc = subprocess.Popen(
            ["bash", "-e", "-c", commands],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # the tour leaves the simulator running: its group is ours
        )
        try:
            proc.wait(timeout=180)
        finally:
            with contextlib.suppress(ProcessLookupError):  # the simulator, in background
                os.killpg(proc.pid, signal.SIGTERM)
    out, err = out_file.read_text(), err_file.read_text()
    assert proc.returncode == 0, err
    url = (tmp_path / "sim.out").read_text().splitlines()[0].removeprefix("HEYGEN_BASE_URL=")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    # apply and status ran against the simulator, never against HeyGen production.
    assert f"looks: calling {url} with key of 7 characters (too short to show any)" in err
    assert "production" not in err
    nodes = json.loads(manifest_path_for(tmp_path / "recipes" / "team.yaml").read_text())["nodes"]
    assert nodes and all(n["status"] == "completed" for n in nodes.values())
    assert "ana/navy-office" in out and "guest-kim/podcast" in out

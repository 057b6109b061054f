"""`looks apply ... | head -1`: a reader that leaves early is not a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from engine import sim
from engine.manifest import journal_path_for, manifest_path_for


@pytest.mark.parametrize("log_json", [False, True])
def test_a_pipe_closed_after_one_line_stops_output_not_the_run(
    recipes: Path, simulator: sim.RunningSimulator, api_env: dict[str, str], log_json: bool
) -> None:
    both = [recipes / "sarah.yaml", recipes / "characters.yaml"]
    flags = ["--log-json"] if log_json else []
    # A real pipe whose reading end closes after the first line, as `| head -1` does.
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "apply", *flags, *map(str, both)],
        env=api_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert first.strip()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    made = {look["id"] for look in simulator.state()["looks"]}
    recorded: set[str] = set()
    for recipe in both:
        manifest = manifest_path_for(recipe)
        assert not journal_path_for(manifest).exists()  # folded: nothing left torn
        records = json.loads(manifest.read_text())["nodes"].values()
        assert {r["status"] for r in records} == {"completed"}
        recorded |= {r["look_id"] for r in records if r.get("look_id")}
    assert made == recorded  # every look created is recorded, each once

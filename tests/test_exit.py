"""The console script's exit: quick (no last collection of the whole heap), and nothing lost.

`looks` leaves through cli.entry, which freezes the heap before the interpreter's teardown
(docs/performance.md, start-up and exit). Whatever was written must still arrive in full:
stdout block-buffered to a pipe or a file, --log-json's lines, stderr, and the manifest.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from conftest import ROOT

from looks import cli, sim
from looks.manifest import journal_path_for, manifest_path_for

AVATARS = 4
LOOKS_EACH = 12


def _recipe(directory: Path) -> Path:
    lines = ["version: 1", "avatars:"]
    for a in range(AVATARS):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            f"    base: {{type: prompt, prompt: 'Person {a}, studio portrait'}}",
            "    looks:",
        ]
        lines += [f"      l{n}: {{prompt: 'Outfit {n} of {a}'}}" for n in range(LOOKS_EACH)]
    path = directory / "many.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


ADDRESSES = {f"a{a}" for a in range(AVATARS)} | {
    f"a{a}/l{n}" for a in range(AVATARS) for n in range(LOOKS_EACH)
}


def test_the_console_script_is_the_entry() -> None:
    (script,) = entry_points(group="console_scripts", name="looks")
    assert script.value == "looks.cli:entry"


def test_the_entry_freezes_the_heap_and_exits_with_mains_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(SystemExit) as stop:
            cli.entry(["validate", str(ROOT / "recipes" / "twin.yaml")])
        assert stop.value.code == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test process keeps its collector
    assert capsys.readouterr().out.endswith("twin.yaml: ok (1 avatar, 2 looks)\n")
    with pytest.raises(SystemExit) as stop:
        cli.entry(["validate", str(ROOT / "recipes" / "no-such.yaml")])
    gc.unfreeze()
    assert stop.value.code == 1


@pytest.mark.parametrize("log_json", [False, True], ids=["text", "log-json"])
@pytest.mark.parametrize("sink", ["pipe", "file"])
def test_everything_written_arrives_and_the_manifest_is_whole(
    tmp_path: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    sink: str,
    log_json: bool,
) -> None:
    recipe = _recipe(tmp_path)
    # Block-buffered stdout, as a user's shell gives it (the test runner may not).
    env = {k: v for k, v in api_env.items() if k != "PYTHONUNBUFFERED"}
    flags = ["--log-json"] if log_json else []
    command = [sys.executable, "-m", "looks.cli", "apply", *flags, str(recipe)]
    if sink == "pipe":
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=120)
        out, err = done.stdout.decode(), done.stderr.decode()
    else:
        with open(tmp_path / "out", "wb") as o, open(tmp_path / "err", "wb") as e:
            done = subprocess.run(command, env=env, cwd=ROOT, stdout=o, stderr=e, timeout=120)
        out = (tmp_path / "out").read_text(encoding="utf-8")
        err = (tmp_path / "err").read_text(encoding="utf-8")
    assert done.returncode == 0, err
    assert err.startswith("looks: calling ") and err.count("\n") == 1 and err.endswith("\n")
    assert out.endswith("\n")
    total = len(ADDRESSES)
    if log_json:
        events = [json.loads(line) for line in out.splitlines()]
        completed = {e["address"] for e in events if e["event"] == "completed"}
        assert events[-1]["event"] == "summary"
        assert events[-1]["counts"]["completed"] == total
    else:
        lines = out.splitlines()
        completed = {line.split(":")[0] for line in lines if ": completed (look_" in line}
        assert f"Apply: {total} completed, 0 failed, 0 blocked, 0 not started." in lines
    assert completed == ADDRESSES
    manifest = manifest_path_for(recipe)
    assert not journal_path_for(manifest).exists()  # folded on the way out
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    assert {a for a, n in nodes.items() if n["status"] == "completed" and n.get("look_id")} >= (
        ADDRESSES
    )
    made = {look["id"] for look in simulator.state()["looks"]}
    assert made == {n["look_id"] for n in nodes.values() if n.get("look_id")}
    assert os.path.getsize(manifest) > 0

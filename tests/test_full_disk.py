"""A full, read-only or vanishing disk under real `looks apply` runs, on a real tmpfs.

The tmpfs is mounted by the test (root only: the reason is printed when it is skipped),
filled so that only a little space is left, and `looks apply` runs as a real process
against the simulator. Whatever the point where the disk fills, the run stops with one
line naming the file and the cause, exits 1, and leaves state that a later run completes
with every look made exactly once.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import API_KEY, ROOT, drop_target

from engine import sim
from engine.errors import StateWriteError
from engine.manifest import (
    ManifestStore,
    NodeRecord,
    journal_path_for,
    lock_path_for,
    manifest_path_for,
    scan_journal,
)

AVATARS = 3
LOOKS = 4
NODES = AVATARS * (1 + LOOKS)
PAGE = 4096
FP = "c" * 64


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip(f"mounting a tmpfs needs root; running as uid {os.geteuid()}")
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """Fill the file system, then give back `leave` bytes (whole pages)."""
    filler = mount / "filler"
    with filler.open("wb", buffering=0) as f:
        chunk = b"\0" * 65536
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
        for size in (PAGE, 1):  # the last bytes, one page then one byte at a time
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def write_batch(directory: Path) -> Path:
    """AVATARS prompt avatars with LOOKS looks each: paid creates only, no files."""
    lines = ["version: 1", "avatars:"]
    for a in range(AVATARS):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            "    base: {type: prompt, prompt: A person in a studio}",
            "    looks:",
            '      "outfit-{n}":',
            "        prompt: Outfit number {n}",
            f"        matrix: {{n: {list(range(LOOKS))}}}",
        ]
    recipe = directory / "batch.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


def apply(recipe: Path, s: sim.RunningSimulator, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HEYGEN_BASE_URL": s.base_url,
        "HEYGEN_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "apply", str(recipe), "--max-jobs", "4", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def sim_looks(s: sim.RunningSimulator) -> Counter[str]:
    return Counter(look["name"] for look in s.state()["looks"])


def check_state_is_sound(recipe: Path) -> None:
    """What a failed run leaves: a manifest that parses and a journal with no damage."""
    manifest = manifest_path_for(recipe)
    if manifest.exists():
        json.loads(manifest.read_text(encoding="utf-8"))
    assert not scan_journal(journal_path_for(manifest)).damaged


def check_exactly_once(s: sim.RunningSimulator, recipe: Path) -> None:
    nodes = json.loads(manifest_path_for(recipe).read_text(encoding="utf-8"))["nodes"]
    assert len(nodes) == NODES
    assert {n["status"] for n in nodes.values()} == {"completed"}
    made = sim_looks(s)
    assert len(made) == NODES and set(made.values()) == {1}, made
    recorded = {n["look_id"] for n in nodes.values()}
    assert recorded == {look["id"] for look in s.state()["looks"]}


ONE_LINE = re.compile(
    r"looks: (?P<file>/\S+): cannot write \(No space left on device \[ENOSPC\]\); what was"
    r" recorded before is intact: free some space, then run the command again\n"
)


@pytest.mark.parametrize("leave", [0, 1, 2, 3, 5, 8], ids=lambda n: f"{n}-pages-free")
def test_a_full_disk_stops_the_run_and_a_later_run_makes_each_look_once(
    tmpfs: Path, simulator: sim.RunningSimulator, leave: int
) -> None:
    recipe = write_batch(tmpfs)
    filler = fill(tmpfs, leave * PAGE)

    failed = apply(recipe, simulator)
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "Traceback" not in failed.stderr
    line = ONE_LINE.fullmatch(drop_target(failed.stderr))
    assert line is not None, failed.stderr
    assert Path(line["file"]).parent == tmpfs  # the manifest, its journal, lock or temp file
    check_state_is_sound(recipe)
    assert not list(tmpfs.glob(".*.tmp"))
    made_before = sim_looks(simulator)
    assert set(made_before.values()) <= {1}

    filler.unlink()
    done = apply(recipe, simulator)
    assert done.returncode == 0, (done.stdout, done.stderr)
    check_exactly_once(simulator, recipe)


def test_a_fold_that_cannot_finish_leaves_the_manifest_and_the_journal(tmpfs: Path) -> None:
    path = tmpfs / "r.manifest.json"
    store = ManifestStore(path, "r.yaml")
    for i in range(5):
        store.record(NodeRecord(f"a{i}", "base", FP, "completed", look_id=f"look_{i}"))
    store.fold()
    before = path.read_bytes()
    store.record(NodeRecord("a0", "base", FP, "failed", look_id="look_0"))
    journal = store.journal_path.read_bytes()
    filler = fill(tmpfs, 0)

    with pytest.raises(StateWriteError, match=r"No space left on device \[ENOSPC\]"):
        store.fold()
    assert path.read_bytes() == before  # the last good manifest, whole
    assert store.journal_path.read_bytes() == journal  # and the change it lacks
    assert not list(tmpfs.glob(".*.tmp"))

    filler.unlink()
    store.close()  # space is back: the fold completes
    assert json.loads(path.read_text())["nodes"]["a0"]["status"] == "failed"
    assert not journal_path_for(path).exists()


def test_an_append_cut_short_leaves_no_torn_line(tmpfs: Path) -> None:
    path = tmpfs / "r.manifest.json"
    store = ManifestStore(path, "r.yaml")
    store.record(NodeRecord("a", "base", FP, "pending"))
    filler = fill(tmpfs, 0)
    size = store.journal_path.stat().st_size
    big = NodeRecord("b", "base", FP, "failed", name="x" * 3 * PAGE)  # longer than any gap
    with pytest.raises(StateWriteError, match=re.escape(f"{store.journal_path}: cannot write")):
        store.record(big)
    assert store.journal_path.stat().st_size == size  # cut back to the last whole line
    assert "b" not in store.nodes  # not recorded, so not acted on
    filler.unlink()
    store.record(NodeRecord("c", "base", FP, "pending"))  # appends go on, space permitting
    store.close()
    assert set(json.loads(path.read_text())["nodes"]) == {"a", "c"}


def test_the_manifest_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.manifest.json"
    with ManifestStore(path, "r.yaml") as store:
        store.record(NodeRecord("a", "base", FP, "pending"))
    for mode in (0o600, 0o664, 0o640):
        path.chmod(mode)
        with ManifestStore(path, "r.yaml") as store:
            store.record(NodeRecord("a", "base", FP, "completed", look_id=f"look_{mode}"))
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert json.loads(path.read_text())["nodes"]["a"]["look_id"] == f"look_{mode}"


def test_a_read_only_file_system_is_one_line_and_plan_still_reads(
    tmpfs: Path, simulator: sim.RunningSimulator
) -> None:
    recipe = write_batch(tmpfs)
    assert apply(recipe, simulator, "--only", "a0").returncode == 0
    manifest = manifest_path_for(recipe)
    before = manifest.read_bytes()
    made = sim_looks(simulator)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)

    failed = apply(recipe, simulator)
    assert failed.returncode == 1
    assert drop_target(failed.stderr) == (
        f"looks: {lock_path_for(manifest)}: cannot write (Read-only file system [EROFS]);"
        " what was recorded before is intact: make the file system writable, then run the"
        " command again\n"
    )
    assert manifest.read_bytes() == before and sim_looks(simulator) == made
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plan = subprocess.run(
        [sys.executable, "-m", "engine.cli", "plan", str(recipe)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert plan.returncode == 0 and plan.stderr == ""
    assert f"{NODES - 1} to create, 0 to replace, 0 to retry, 1 unchanged" in plan.stdout

    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert apply(recipe, simulator).returncode == 0
    check_exactly_once(simulator, recipe)


def test_kill_9_at_random_moments_on_a_nearly_full_disk(
    tmpfs: Path, simulator: sim.RunningSimulator
) -> None:
    """The hostile mix: little space, kills anywhere, then space back and a resume."""
    recipe = write_batch(tmpfs)
    filler = fill(tmpfs, 6 * PAGE)
    env = {
        **os.environ,
        "HEYGEN_BASE_URL": simulator.base_url,
        "HEYGEN_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT),
    }
    draw = random.Random(10)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "apply", str(recipe)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(draw.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err
        check_state_is_sound(recipe)
        assert set(sim_looks(simulator).values()) <= {1}
    filler.unlink()
    done = apply(recipe, simulator)
    assert done.returncode == 0, (done.stdout, done.stderr)
    check_exactly_once(simulator, recipe)


@pytest.mark.parametrize("leave", [0, 1, 2], ids=lambda n: f"{n}-pages-free")
def test_import_on_a_full_disk_is_one_line(
    tmpfs: Path, simulator: sim.RunningSimulator, leave: int
) -> None:
    body = {"type": "prompt", "name": "Sarah", "prompt": "A person in a studio"}
    created = httpx.post(
        f"{simulator.base_url}/v3/avatars",
        json=body,
        headers={"X-Api-Key": API_KEY},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    group = created.json()["data"]["avatar_item"]["group_id"]
    out = tmpfs / "imported.yaml"
    filler = fill(tmpfs, leave * PAGE)
    env = {
        **os.environ,
        "HEYGEN_BASE_URL": simulator.base_url,
        "HEYGEN_API_KEY": API_KEY,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "engine.cli", "import", "--group", group, "--out", str(out)]
    failed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert ONE_LINE.fullmatch(drop_target(failed.stderr)), failed.stderr
    assert not list(tmpfs.glob(".*.tmp"))
    filler.unlink()
    if out.exists():  # the recipe was written, its records were not: apply records them
        command = [sys.executable, "-m", "engine.cli", "apply", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    nodes = json.loads(manifest_path_for(out).read_text())["nodes"]
    assert [n["look_id"] for n in nodes.values()] == [created.json()["data"]["avatar_item"]["id"]]
    assert len(simulator.state()["looks"]) == 1  # adopted, never made again

"""State files that are not what they should be, met as a hostile user leaves them.

A journal or manifest that is a FIFO, a device or a link to one must be refused with one
line, never read forever (a FIFO blocks, /dev/zero fills memory, /dev/full never ends).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT

from engine.manifest import ManifestStore, NodeRecord, journal_path_for, manifest_path_for

RECIPE = """\
version: 1
avatars:
  a0:
    name: Hostile 0
    base: {type: prompt, prompt: A person}
"""


MEMORY = 2 << 30  # bytes: a read of /dev/zero fails here, not in the machine's OOM killer


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def looks_offline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`looks ARGS...` as a process with generous bounds: a hang is a failure, not a stall."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_bounded,
    )


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_full(path: Path) -> None:
    path.symlink_to("/dev/full")


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize("which", ["journal", "manifest"])
@pytest.mark.parametrize(
    "make",
    [_fifo, _dev_full, _dev_zero],
    ids=["fifo", "link-to-dev-full", "link-to-dev-zero"],
)
def test_a_state_file_that_is_no_regular_file_is_refused_in_one_line(
    tmp_path: Path, which: str, make: Callable[[Path], None]
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    manifest = manifest_path_for(recipe)
    target = journal_path_for(manifest) if which == "journal" else manifest
    make(target)

    for command in ("plan", "status", "repair"):
        done = looks_offline(command, recipe)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        named = (f"{p}: cannot read" for p in (target, os.path.realpath(target)))
        assert any(n in done.stderr for n in named), done.stderr
        assert "not a regular file" in done.stderr, done.stderr


FP = "d" * 64


def journal_of_a_run(manifest: Path, recipe: str, look_id: str) -> bytes:
    """The journal a run leaves behind when it dies before its fold: its bytes."""
    store = ManifestStore(manifest, recipe)
    store.record(NodeRecord("a0", "base", FP, "completed", look_id=look_id))
    journal = store.journal_path.read_bytes()
    store.close()
    return journal


def test_the_journal_of_another_manifest_is_refused_not_replayed(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(), theirs.mkdir()
    recipe = ours / "r.yaml"
    recipe.write_text(RECIPE)
    manifest = manifest_path_for(recipe)
    journal_of_a_run(manifest, "r.yaml", "look_ours")
    before = manifest.read_bytes()
    # Another manifest's journal (same addresses, its own looks), copied in by hand.
    foreign = journal_of_a_run(theirs / "r.manifest.json", "r.yaml", "look_theirs")
    journal_path_for(manifest).write_bytes(foreign)

    for command in ("plan", "status", "repair"):
        done = looks_offline(command, recipe)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert "journal was written for another manifest" in done.stderr, done.stderr
        assert "do not delete" in done.stderr
        assert manifest.read_bytes() == before  # still records our look, not theirs
        assert journal_path_for(manifest).read_bytes() == foreign


def test_a_journal_without_its_manifest_keeps_the_lineage_it_was_written_under(
    tmp_path: Path,
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    manifest = manifest_path_for(recipe)
    journal = journal_of_a_run(manifest, "r.yaml", "look_1")
    lineage = json.loads(manifest.read_text())["lineage"]
    manifest.unlink()  # deleted by hand; the journal of the last run is still there
    journal_path_for(manifest).write_bytes(journal)

    done = looks_offline("repair", recipe)  # any command that opens the manifest for writing
    assert done.returncode == 0, done.stderr
    folded = json.loads(manifest.read_text())
    # The idempotency keys journaled under that lineage are derived again on resume.
    assert folded["lineage"] == lineage
    assert folded["nodes"]["a0"]["look_id"] == "look_1"

"""A first run killed before its first fold, a torn journal, a damaged journal and its repair:
the lineage is on disk before the first request, and no advice given can pay twice."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import API_KEY, Run, drop_target, looks_process

from engine import sim
from engine.manifest import damaged_path_for, journal_path_for, manifest_path_for

AVATARS = 3
LOOKS = 2


def write_recipe(path: Path) -> Path:
    lines = ["version: 1", "avatars:"]
    for a in range(AVATARS):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            "    base: {type: prompt, prompt: A person in a studio}",
            "    looks:",
        ]
        lines += [f"      l{n}: {{prompt: Outfit {n}}}" for n in range(LOOKS)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def slow_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[sim.RunningSimulator]:
    """Bases take 3 s: a run killed in its first second has journaled, not folded."""
    with sim.running_simulator(sim.SimConfig(api_key=API_KEY, generation_seconds=3)) as s:
        monkeypatch.setenv("HEYGEN_BASE_URL", s.base_url)
        monkeypatch.setenv("HEYGEN_API_KEY", API_KEY)
        yield s


def journal_lines(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().split(b"\n")[:-1]  # complete lines only
    except FileNotFoundError:
        return []


def kill_after_lines(recipe: Path, count: int) -> None:
    """Start `looks apply` and kill -9 it once its journal holds `count` lines."""
    journal = journal_path_for(manifest_path_for(recipe))
    proc = looks_process("apply", recipe, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while len(journal_lines(journal)) < count:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run journaled nothing"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


def test_a_killed_first_run_keeps_its_lineage_and_repair_never_pays_twice(
    tmp_path: Path, slow_sim: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    recipe = write_recipe(tmp_path / "batch.yaml")
    manifest = manifest_path_for(recipe)
    journal = journal_path_for(manifest)
    kill_after_lines(recipe, 4)

    # The lineage went to disk before the first request, and every key journaled uses it.
    data = json.loads(manifest.read_text(encoding="utf-8"))
    assert data["nodes"] == {}
    changes = [json.loads(line) for line in journal_lines(journal)]
    keys = [c["record"]["idempotency_key"] for c in changes if c["record"]["status"] == "submitted"]
    assert keys and all(k.startswith(f"looks:{data['lineage'][:8]}:") for k in keys)

    # Damage the first line, the key of a request already sent.
    first = journal_lines(journal)[0]
    assert json.loads(first)["record"]["status"] == "submitted"
    damaged = first[: len(first) // 2]
    text = journal.read_bytes().replace(first, damaged, 1)
    journal.write_bytes(text)
    requests = slow_sim.stats()["requests"]
    refused = looks("apply", recipe)
    assert refused.code == 1
    assert drop_target(refused.err) == (
        f"looks: {journal}:1: journal is damaged; it was left untouched. Run `looks repair"
        " RECIPE` (with --manifest if not the default) to keep every complete change and set"
        " the damaged lines aside; do not delete the journal: the looks it records would be"
        " paid for again\n"
    )
    assert journal.read_bytes() == text and slow_sim.stats()["requests"] == requests

    repaired = looks("repair", recipe)
    assert repaired.code == 0, repaired.err
    kept = len(changes) - 1
    assert repaired.out == (
        f"{journal}: kept {kept} complete changes; damaged line(s) 1 set aside in"
        f" {damaged_path_for(journal)}; folded into {manifest}.\n"
    )
    assert damaged_path_for(journal).read_bytes() == damaged + b"\n"
    assert json.loads(manifest.read_text())["lineage"] == data["lineage"]
    assert slow_sim.stats()["requests"] == requests  # repair is offline

    slow_sim.configure(generation_seconds=0.1)
    done = looks("apply", recipe)
    assert done.code == 0, done.err
    made = Counter(look["name"] for look in slow_sim.state()["looks"])
    assert len(made) == AVATARS * (1 + LOOKS) and set(made.values()) == {1}, made
    nodes = json.loads(manifest.read_text())["nodes"]
    assert {n["look_id"] for n in nodes.values()} == {x["id"] for x in slow_sim.state()["looks"]}

    again = looks("repair", recipe)
    assert again.out == f"{manifest}: the journal has no damaged line; nothing to repair.\n"


def test_a_torn_last_line_is_ignored_with_a_note(
    tmp_path: Path, slow_sim: sim.RunningSimulator, looks: Callable[..., Run]
) -> None:
    recipe = write_recipe(tmp_path / "batch.yaml")
    kill_after_lines(recipe, 2)
    journal = journal_path_for(manifest_path_for(recipe))
    lines = journal_lines(journal)
    with journal.open("ab") as f:
        f.write(b'{"address":"a2","record":{"kind":')  # a write cut off by the crash
    for command in ("status", "apply"):
        result = looks(command, recipe)
        assert result.code == 0, result.err
        assert drop_target(result.err) == (
            f"looks: note: {journal}:{len(lines) + 1}: ignored an unfinished last line"
            " (a write cut off by a crash)\n"
        )
    made = Counter(look["name"] for look in slow_sim.state()["looks"])
    assert len(made) == AVATARS * (1 + LOOKS) and set(made.values()) == {1}, made

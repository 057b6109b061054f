"""`looks merge-driver` with real git, real manifests applied against `looks sim`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Run

from engine import sim
from engine.manifest import Manifest, ManifestStore, journal_path_for, lock_path_for

RECIPE = """\
version: 1
avatars:
  sarah:
    name: Sarah
    base: {type: prompt, prompt: A woman in a studio}
    looks:
      middle:
        name: Sarah in the middle
        prompt: Standing in the middle of a room
"""
FIRST = "    looks:\n"  # a look added right after this line...
# ...and one appended at the end: git merges the two recipe edits without a conflict.


@pytest.fixture
def repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A git repository at tmp_path/repo (the current directory); returns a git runner."""
    top = tmp_path / "repo"
    (top / "recipes").mkdir(parents=True)
    env = {
        **api_env,
        # git runs `looks merge-driver`: the looks of this checkout must be on its PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str, check: bool = True, cwd: Path = top) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    git("init", "-q", "-b", "main")
    monkeypatch.chdir(top)
    return git


def recipe_path() -> Path:
    return Path.cwd() / "recipes" / "team.yaml"


def manifest_path() -> Path:
    return Path.cwd() / "recipes" / "team.manifest.json"


def add_look(key: str, name: str, prompt: str, *, at_top: bool) -> None:
    path = recipe_path()
    text = path.read_text()
    line = f"      {key}: {{name: {name}, prompt: {prompt}}}\n"
    path.write_text(text.replace(FIRST, FIRST + line) if at_top else text + line)


def nodes() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_path().read_text())["nodes"]
    return data


def creates(s: sim.RunningSimulator) -> int:
    return int(s.stats()["by_route"].get("POST /v3/avatars", 0))


def setup_main(
    git: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    *,
    apply: bool = True,
) -> None:
    recipe_path().write_text(RECIPE)
    if apply:
        assert looks("apply", recipe_path()).code == 0
    installed = looks("merge-driver", "install")
    assert installed.code == 0, installed.err
    git("add", "-A")
    git("commit", "-qm", "main")


def branch(
    git: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    name: str,
    look: tuple[str, str, str],
    *,
    at_top: bool,
) -> None:
    git("checkout", "-q", "-b", name, "main")
    add_look(*look, at_top=at_top)
    result = looks("apply", recipe_path())
    assert result.code == 0, result.out + result.err
    git("add", "-A")
    git("commit", "-qm", name)


def test_install_is_idempotent_and_configures_git(
    repo: Callable[..., subprocess.CompletedProcess[str]], looks: Callable[..., Run]
) -> None:
    Path(".gitattributes").write_text("*.png binary")  # no final newline
    for _ in range(2):
        assert looks("merge-driver", "install").code == 0
    assert Path(".gitattributes").read_text() == (
        "*.png binary\n*.manifest.json merge=looks-manifest\n"
    )
    driver = repo("config", "--local", "merge.looks-manifest.driver").stdout.strip()
    # This looks, by its absolute path: git need not find it on its PATH.
    assert driver == f"{Path(sys.executable).parent / 'looks'} merge-driver %O %A %B %P"
    check = repo("check-attr", "merge", "--", "recipes/x.manifest.json").stdout
    assert check.strip().endswith("merge: looks-manifest")


def test_install_outside_a_repository_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, looks: Callable[..., Run]
) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    monkeypatch.chdir(alone)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    result = looks("merge-driver", "install")
    assert result.code == 1
    assert result.err.startswith("looks: git rev-parse:") and result.err.count("\n") == 1
    assert not (alone / ".gitattributes").exists()


def test_two_branches_with_new_looks_side_by_side_merge_cleanly(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    setup_main(repo, looks)
    branch(repo, looks, "one", ("office-a", "Office A", "In an office"), at_top=True)
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    theirs, theirs_serial = nodes(), json.loads(manifest_path().read_text())["serial"]
    repo("checkout", "-q", "one")
    ours, ours_serial = nodes(), json.loads(manifest_path().read_text())["serial"]
    # git runs the driver from the top of the work tree, wherever `git merge` is run from.
    merged = repo("merge", "-q", "--no-edit", "two", cwd=Path.cwd() / "recipes")
    assert merged.returncode == 0
    after = nodes()
    assert after["sarah/office-a"] == ours["sarah/office-a"]
    assert after["sarah/office-b"] == theirs["sarah/office-b"]
    serial = json.loads(manifest_path().read_text())["serial"]
    assert serial > max(ours_serial, theirs_serial)
    plan = looks("plan", "--detailed-exitcode", recipe_path())
    assert plan.code == 0, plan.out
    before = creates(simulator)
    assert looks("apply", recipe_path()).code == 0
    assert creates(simulator) == before
    per_name = Counter(look["name"] for look in simulator.state()["looks"])
    assert per_name == Counter(["Sarah", "Sarah in the middle", "Office A", "Office B"]), per_name
    # The merged text is the writer's own: a later fold leaves no diff.
    assert repo("status", "--porcelain").stdout == ""


def test_the_driver_runs_when_looks_is_not_on_gits_path(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
    tmp_path: Path,
) -> None:
    """A teammate's looks lives in a venv that is not active when git runs the driver."""
    setup_main(repo, looks)
    branch(repo, looks, "one", ("office-a", "Office A", "In an office"), at_top=True)
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    repo("checkout", "-q", "one")
    git = shutil.which("git")
    assert git is not None
    bare = tmp_path / "bin"  # git alone: no looks on this PATH
    bare.mkdir()
    (bare / "git").symlink_to(git)
    merged = subprocess.run(
        [str(bare / "git"), "merge", "--no-edit", "two"],
        env={
            **os.environ,
            "PATH": f"{bare}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert shutil.which("looks", path=f"{bare}{os.pathsep}/usr/bin{os.pathsep}/bin") is None
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert {"sarah/office-a", "sarah/office-b"} <= nodes().keys()


def test_the_same_address_changed_on_both_sides_records_the_other_look_as_superseded(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    setup_main(repo, looks)
    branch(repo, looks, "one", ("office", "Office one", "In an office"), at_top=True)
    first = nodes()["sarah/office"]["look_id"]
    branch(repo, looks, "two", ("office", "Office two", "In a bigger office"), at_top=True)
    second = nodes()["sarah/office"]["look_id"]
    assert first != second
    repo("checkout", "-q", "one")
    merged = repo("merge", "--no-edit", "two", check=False)
    # The recipe's edits collide (git's own text merge); the manifest does not.
    conflicted = repo("diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["recipes/team.yaml"], merged.stdout + merged.stderr
    assert "changed on both sides (sarah/office)" in merged.stderr
    record = nodes()["sarah/office"]
    assert record["look_id"] == second  # applied later: the more recent
    assert record["superseded"] == [first]
    repo("checkout", "--theirs", "recipes/team.yaml")
    repo("commit", "-qam", "merged")
    assert looks("plan", "--detailed-exitcode", recipe_path()).code == 0
    pruned = looks("prune", "--yes", recipe_path())
    assert pruned.code == 0, pruned.out + pruned.err
    assert f"deleted {first}" in pruned.out
    ids = {look["id"] for look in simulator.state()["looks"]}
    assert second in ids and first not in ids


def test_manifests_of_different_lineages_conflict(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
) -> None:
    setup_main(repo, looks, apply=False)  # the recipe only: each branch starts its manifest
    branch(repo, looks, "one", ("office-a", "Office A", "In an office"), at_top=True)
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    repo("checkout", "-q", "one")
    ours = manifest_path().read_text()
    merged = repo("merge", "--no-edit", "two", check=False)
    assert merged.returncode != 0
    conflicted = repo("diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["recipes/team.manifest.json"]
    assert "are different manifests (lineage" in merged.stderr
    # Keeping one side would not adopt the other's looks (another group): not promised.
    assert "adopts" not in merged.stderr and "would pay again" in merged.stderr
    assert manifest_path().read_text() == ours  # left as ours, parseable, nothing lost


def test_a_journal_of_an_unfinished_run_is_merged_or_refused(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """A journal left by a dead run replays on the merged manifest later: it may only hold
    addresses the other side did not change, else the merge is refused."""
    setup_main(repo, looks)
    branch(repo, looks, "one", ("office-a", "Office A", "In an office"), at_top=True)
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    repo("checkout", "-q", "one")
    journal = journal_path_for(manifest_path())
    clash = {**nodes()["sarah"], "name": "Sarah (journal)"}
    clash_line = json.dumps({"address": "sarah/office-b", "record": clash}) + "\n"
    journal.write_text(clash_line)
    refused = repo("merge", "--no-edit", "two", check=False)
    assert refused.returncode != 0
    assert "journal holds unfolded changes to sarah/office-b" in refused.stderr
    repo("merge", "--abort")
    assert journal.read_text() == clash_line  # untouched
    mine = {**nodes()["sarah/office-a"], "status": "processing"}
    journal.write_text(json.dumps({"address": "sarah/office-a", "record": mine}) + "\n")
    repo("merge", "-q", "--no-edit", "two")
    assert nodes()["sarah/office-a"]["status"] == "processing"  # the journal's, folded in
    assert "sarah/office-b" in nodes()
    before = creates(simulator)
    assert looks("apply", recipe_path()).code == 0  # replays the journal, finishes the look
    assert creates(simulator) == before
    assert nodes()["sarah/office-a"]["status"] == "completed"
    assert not journal.exists()


def test_a_journal_meeting_upstreams_change_in_a_rebase_is_refused(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """In a rebase, ours is the upstream and theirs the work tree's own commit: the journal
    (the work tree's) must not override what the upstream changed."""
    setup_main(repo, looks)
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    upstream = nodes()["sarah/office-b"]
    branch(repo, looks, "one", ("office-a", "Office A", "In an office"), at_top=True)
    journal = journal_path_for(manifest_path())
    clash = {**nodes()["sarah"], "name": "Sarah (journal)"}
    clash_line = json.dumps({"address": "sarah/office-b", "record": clash}) + "\n"
    journal.write_text(clash_line)
    rebased = repo("rebase", "two", check=False)
    if rebased.returncode == 0:
        assert nodes()["sarah/office-b"] == upstream, "the upstream's record was overwritten"
    assert "journal holds unfolded changes to sarah/office-b" in rebased.stderr
    assert "`git rebase --abort`" in rebased.stderr
    repo("rebase", "--abort")
    assert journal.read_text() == clash_line  # untouched


def test_a_merge_under_a_running_apply_is_refused(
    tmp_path: Path, looks: Callable[..., Run]
) -> None:
    """The run would fold its own copy over the merge: refused, ours left as it was."""
    path = tmp_path / "team.manifest.json"
    manifest = Manifest.new("team.yaml")
    ours, theirs, base = (tmp_path / n for n in (".ours", ".theirs", ".base"))
    for file, serial in ((ours, 2), (theirs, 3), (base, 1)):
        manifest.serial = serial
        file.write_text(manifest.dumps())
    before = ours.read_text()
    with ManifestStore(path, "team.yaml"):
        result = looks("merge-driver", base, ours, theirs, path)
    assert result.code == 1
    assert "a looks run holds it (pid" in result.err and result.err.count("\n") == 1
    assert ours.read_text() == before
    lock_path_for(path).write_text("pid 1 on a host that died\n")  # stale: nobody holds it
    assert looks("merge-driver", base, ours, theirs, path).code == 0
    assert json.loads(ours.read_text())["serial"] == 4


def test_merge_driver_with_wrong_arguments_is_a_usage_error(looks: Callable[..., Run]) -> None:
    result = looks("merge-driver", "a", "b")
    assert result.code == 2
    assert "merge-driver takes BASE OURS THEIRS [PATH]" in result.err


def test_without_the_driver_keeping_one_side_adopts_the_other_sides_looks(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    """A clone that never ran install: git's markers get one clear line, and keeping one
    side costs nothing, as apply adopts the other side's look."""
    setup_main(repo, looks)
    repo("config", "--local", "--remove-section", "merge.looks-manifest")  # never installed
    branch(repo, looks, "one", ("office-a", "Office A", "In an office"), at_top=True)
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    made = nodes()["sarah/office-b"]["look_id"]
    repo("checkout", "-q", "one")
    merged = repo("merge", "--no-edit", "two", check=False)
    assert merged.returncode != 0, merged.stdout
    plan = looks("plan", recipe_path())
    assert plan.code == 1
    assert "manifest holds git conflict markers" in plan.err
    assert "git checkout --ours -- team.manifest.json" in plan.err
    assert plan.err.count("\n") == 1
    repo("checkout", "--ours", "--", "recipes/team.manifest.json")
    repo("commit", "-qam", "kept ours")
    assert "sarah/office-b" not in nodes()
    before = creates(simulator)
    result = looks("apply", recipe_path())
    assert result.code == 0, result.out + result.err
    assert creates(simulator) == before
    assert nodes()["sarah/office-b"]["look_id"] == made
    assert max(Counter(look["name"] for look in simulator.state()["looks"]).values()) == 1


def test_a_look_pruned_on_one_side_stays_gone_after_the_merge(
    repo: Callable[..., subprocess.CompletedProcess[str]],
    looks: Callable[..., Run],
    simulator: sim.RunningSimulator,
) -> None:
    recipe_path().write_text(RECIPE.replace(FIRST, FIRST + "      old: {prompt: Old look}\n"))
    assert looks("apply", recipe_path()).code == 0
    assert looks("merge-driver", "install").code == 0
    repo("add", "-A")
    repo("commit", "-qm", "main")
    old = nodes()["sarah/old"]["look_id"]
    repo("checkout", "-q", "-b", "one")
    recipe_path().write_text(RECIPE)  # `old` removed from the recipe, then pruned
    assert looks("prune", "--yes", recipe_path()).code == 0
    repo("commit", "-qam", "pruned")
    branch(repo, looks, "two", ("office-b", "Office B", "In another office"), at_top=False)
    repo("checkout", "-q", "one")
    repo("merge", "-q", "--no-edit", "two")
    assert set(nodes()) == {"sarah", "sarah/middle", "sarah/office-b"}
    assert looks("plan", "--detailed-exitcode", recipe_path()).code == 0
    before = creates(simulator)
    assert looks("apply", recipe_path()).code == 0
    assert creates(simulator) == before
    assert old not in {look["id"] for look in simulator.state()["looks"]}

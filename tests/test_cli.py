"""The command line's edges: parsing, exit codes, and the one error boundary."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, Run, drop_target, looks_process

from engine import cli, sim
from engine.cli import build_parser
from engine.errors import ManifestLockedError
from engine.executor import ApplyResult, Executor
from engine.manifest import ManifestStore, journal_path_for, lock_path_for, manifest_path_for

COMMANDS = (
    "validate",
    "plan",
    "graph",
    "apply",
    "status",
    "catalog",
    "import",
    "refresh",
    "prune",
    "consent",
    "sim",
    "merge-driver",
)


def one_line(result: Run) -> str:
    """The run's only stderr line, checked to be a `looks:` message and no traceback."""
    assert "Traceback" not in result.out + result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("looks: "), lines[0]
    return lines[0]


# -- no command, unknown command, every command with missing or garbage arguments -----------


def test_no_command(looks: Callable[..., Run]) -> None:
    result = looks()
    assert result.code == 2
    assert one_line(result) == "looks: no command given (see 'looks --help')"


def test_unknown_command(looks: Callable[..., Run]) -> None:
    result = looks("plna", "recipes/sarah.yaml")
    assert result.code == 2
    line = one_line(result)
    assert "invalid choice: 'plna'" in line
    assert line.endswith("; did you mean 'plan'? (see 'looks --help')")
    result = looks("frobnicate")
    assert result.code == 2
    assert "did you mean" not in one_line(result)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "sim"])
def test_every_command_without_its_arguments(command: str, looks: Callable[..., Run]) -> None:
    result = looks(command)
    assert result.code == 2
    line = one_line(result)
    assert "arguments are required" in line
    assert line.endswith(f"(see 'looks {command} --help')")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_with_an_unknown_flag(command: str, looks: Callable[..., Run]) -> None:
    required = {"catalog": ["--out", "d"], "import": ["--group", "g"]}.get(command, [])
    result = looks(command, "--frobnicate", "x.yaml", *required)
    assert result.code == 2
    assert "--frobnicate" in one_line(result)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, looks: Callable[..., Run]) -> None:
    result = looks(command, "--help")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith(f"usage: looks {command}")


def test_a_mistyped_flag_suggests_the_right_one(recipes: Path, looks: Callable[..., Run]) -> None:
    result = looks("plan", recipes / "sarah.yaml", "--jsn")
    assert result.code == 2
    assert one_line(result) == (
        "looks: unrecognized arguments: --jsn; did you mean '--json'? (see 'looks plan --help')"
    )
    result = looks("apply", recipes / "sarah.yaml", "--maxjobs=3")
    assert "did you mean '--max-jobs'?" in one_line(result)
    assert "did you mean" not in one_line(looks("status", recipes / "sarah.yaml", "--zzzzzz"))


def test_main_help_describes_the_tool(looks: Callable[..., Run]) -> None:
    result = looks("--help")
    assert (result.code, result.err) == (0, "")
    assert "parses arguments" not in result.out
    assert "HeyGen" in result.out and "recipe" in result.out
    for word in ("HEYGEN_API_KEY", "HEYGEN_BASE_URL", "LOOKS_DEBUG", "--detailed-exitcode"):
        assert word in result.out


def test_every_sim_flag_has_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(subparsers.choices, dict)
    for command, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, (command, action.option_strings or action.dest)


def test_a_nonexistent_recipe_is_one_line_per_file(looks: Callable[..., Run]) -> None:
    result = looks("plan", "nope.yaml")
    assert (result.code, result.err) == (1, "nope.yaml:1: no such file\n")


# -- --timeout, --max-jobs and the simulator's numbers ----------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "abc", "", "1e400", "2000"])
def test_timeout_must_be_a_positive_finite_number(value: str, looks: Callable[..., Run]) -> None:
    result = looks("apply", "r.yaml", f"--timeout={value}")
    assert result.code == 2
    assert "argument --timeout: expected minutes greater than 0" in one_line(result)


@pytest.mark.parametrize("value", ["0", "-3", "x", "1.5", "nan"])
def test_max_jobs_must_be_a_positive_integer(value: str, looks: Callable[..., Run]) -> None:
    result = looks("apply", "r.yaml", f"--max-jobs={value}")
    assert result.code == 2
    assert "argument --max-jobs: expected an integer at least 1" in one_line(result)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--port", "99999"),
        ("--port", "-1"),
        ("--fail-rate", "2"),
        ("--drop-rate", "nan"),
        ("--auto-consent", "-1"),
        ("--upload-url-ttl", "0"),
        ("--max-jobs", "0"),
        ("--credits", "-5"),
        ("--latency-ms", "inf"),
    ],
)
def test_sim_numbers_are_checked(flag: str, value: str, looks: Callable[..., Run]) -> None:
    result = looks("sim", f"{flag}={value}")
    assert result.code == 2
    assert f"argument {flag}: expected" in one_line(result)


def test_valid_numbers_are_accepted() -> None:
    args = build_parser().parse_args(["apply", "r.yaml", "--timeout", "0.5", "--max-jobs", "3"])
    assert (args.timeout, args.max_jobs) == (0.5, 3)


# -- --only does not swallow the recipes -------------------------------------------------------


def test_only_before_the_recipe(recipes: Path, looks: Callable[..., Run]) -> None:
    recipe = recipes / "sarah.yaml"
    result = looks("plan", "--only", "sarah/*", recipe, "--json")
    assert result.code == 0, result.err
    addresses = {a["address"] for a in json.loads(result.out)["actions"]}
    assert "marco" not in addresses
    assert {"sarah", "sarah/navy-office", "sarah/office-dusk", "sarah/podcast"} <= addresses


def test_only_repeated_or_with_commas(recipes: Path, looks: Callable[..., Run]) -> None:
    recipe = recipes / "sarah.yaml"
    outs = []
    for argv in (
        ["--only", "marco/chef", "--only", "sarah/podcast", recipe],
        [recipe, "--only", "marco/chef,sarah/podcast"],
        ["--only", "marco/chef, sarah/podcast", recipe],
    ):
        result = looks("plan", *argv, "--json")
        assert result.code == 0, result.err
        outs.append(result.out)
    assert outs[0] == outs[1] == outs[2]
    addresses = [a["address"] for a in json.loads(outs[0])["actions"]]
    assert {"marco/chef", "sarah/podcast", "sarah", "marco"} <= set(addresses)
    assert "sarah/navy-office" not in addresses


def test_only_with_two_words_explains(recipes: Path, looks: Callable[..., Run]) -> None:
    recipe = recipes / "sarah.yaml"
    hint = "--only takes one address or glob: repeat it (--only a --only b)"
    result = looks("plan", "--only", "marco/chef", "sarah/podcast", recipe)
    assert result.code == 2
    assert hint in one_line(result)
    assert "'sarah/podcast' is not a recipe file" in result.err
    result = looks("plan", recipe, "--only", "marco/chef", "sarah/podcast")
    assert result.code == 2
    assert hint in one_line(result)
    assert "unrecognized arguments: sarah/podcast" in result.err


def test_only_empty_pattern(recipes: Path, looks: Callable[..., Run]) -> None:
    result = looks("plan", recipes / "sarah.yaml", "--only", "sarah,")
    assert result.code == 2
    assert "empty address or glob in 'sarah,'" in one_line(result)


# -- --detailed-exitcode: 2 is "changes pending", every error is 1 ----------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "{r}", "--bogus"],  # argparse: unknown flag
        ["plan"],  # argparse: missing recipe
        ["plan", "{r}", "--only"],  # argparse: missing value
        ["plan", "--only", "a", "b", "{r}"],  # --only with two words
        ["plan", "{r}", "{r}", "--manifest", "m.json"],  # UsageError
        ["plan", "missing.yaml"],  # RecipeError
        ["plan", "{bad}"],  # RecipeError
        ["plan", "{r}", "--only", "nobody"],  # PlanError
        ["plan", "{corrupt}"],  # ManifestError
        ["plna", "{r}"],  # unknown command
    ],
)
@pytest.mark.parametrize("flag", ["--detailed-exitcode", "--detailed", "--detailed-exit"])
def test_detailed_exitcode_errors_are_1(
    argv: list[str], flag: str, recipes: Path, looks: Callable[..., Run]
) -> None:
    bad = recipes / "bad.yaml"
    bad.write_text("version: 1\navatars: 3\n")
    corrupt = recipes / "corrupt.yaml"
    corrupt.write_bytes((recipes / "sarah.yaml").read_bytes())
    manifest_path_for(corrupt).write_text("{not json")
    words = [w.format(r=recipes / "sarah.yaml", bad=bad, corrupt=corrupt) for w in argv]
    result = looks(*words, flag)
    assert result.code == 1, result.err
    assert result.err and "Traceback" not in result.err
    assert result.out == ""
    without = looks(*words)
    assert without.code in (1, 2)


def test_detailed_exitcode_with_refresh_and_no_key(
    recipes: Path, monkeypatch: pytest.MonkeyPatch, looks: Callable[..., Run]
) -> None:
    monkeypatch.delenv("HEYGEN_API_KEY", raising=False)
    argv = ["plan", recipes / "sarah.yaml", "--refresh"]
    without = looks(*argv)
    assert without.code == 2
    assert "HEYGEN_API_KEY is not set" in one_line(without)
    result = looks(*argv, "--detailed-exitcode")
    assert result.code == 1
    assert one_line(result) == one_line(without)


def test_detailed_exitcode_changes_and_no_changes(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("plan", recipe, "--detailed-exitcode").code == 2
    assert looks("apply", recipe).code == 0
    result = looks("plan", recipe, "--detailed-exitcode")
    assert (result.code, result.err) == (0, "")


def test_detailed_exitcode_after_double_dash_is_a_recipe(looks: Callable[..., Run]) -> None:
    # After `--` the word is a recipe name, not the flag: the usual codes apply.
    result = looks("plan", "--only", "a", "b", "--", "--detailed-exitcode")
    assert result.code == 2


def test_usage_errors_stay_2_without_detailed_exitcode(
    recipes: Path, looks: Callable[..., Run]
) -> None:
    result = looks("plan", recipes / "sarah.yaml", recipes / "twin.yaml", "--manifest", "m")
    assert result.code == 2
    assert one_line(result) == "looks: --manifest goes with a single recipe"


def test_detailed_exitcode_in_a_real_process(recipes: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    recipe = str(recipes / "sarah.yaml")
    for argv, code in (
        (["plan", recipe, "--detailed-exitcode"], 2),
        (["plan", recipe, "--detailed-exitcode", "--jsn"], 1),
        (["plan", recipe, "--jsn"], 2),
    ):
        process = looks_process(*argv, env=env)
        _, err = process.communicate(timeout=60)
        assert process.returncode == code, (argv, err)
        assert "Traceback" not in err


# -- the one error boundary ---------------------------------------------------------------------


def test_unexpected_exception_is_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, looks: Callable[..., Run]
) -> None:
    def broken(args: object) -> int:
        raise KeyError("frob")

    monkeypatch.setitem(cli._COMMANDS, "validate", broken)
    monkeypatch.delenv("LOOKS_DEBUG", raising=False)
    result = looks("validate", "x.yaml")
    assert result.code == 3
    assert one_line(result) == (
        "looks: internal error: KeyError: 'frob'; set LOOKS_DEBUG=1 for the traceback"
    )
    # --detailed-exitcode keeps 3 for an internal error: it is never 2.
    monkeypatch.setitem(cli._COMMANDS, "plan", broken)
    assert looks("plan", "x.yaml", "--detailed-exitcode").code == 3


_BROKEN = textwrap.dedent(
    """
    import sys
    from engine import cli
    def broken(args):
        raise RuntimeError("the flux capacitor")
    cli._COMMANDS["status"] = broken
    sys.exit(cli.main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize("debug", [False, True])
def test_internal_error_in_a_real_process(debug: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOOKS_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    if debug:
        env["LOOKS_DEBUG"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _BROKEN, "status", "x.yaml"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    last = done.stderr.splitlines()[-1]
    if debug:
        assert "Traceback (most recent call last)" in done.stderr
        assert "in broken\nRuntimeError: the flux capacitor\n" in done.stderr
        assert last == "looks: internal error: RuntimeError: the flux capacitor"
    else:
        assert done.stderr == (
            "looks: internal error: RuntimeError: the flux capacitor;"
            " set LOOKS_DEBUG=1 for the traceback\n"
        )


def test_internal_error_mid_apply_keeps_what_was_recorded(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    looks: Callable[..., Run],
) -> None:
    """An exception while the manifest is open still folds every record and frees the lock."""
    real_run = Executor.run

    async def run_then_fail(self: Executor) -> ApplyResult:
        await real_run(self)
        raise AttributeError("'NoneType' object has no attribute 'id'")

    monkeypatch.setattr(Executor, "run", run_then_fail)
    recipe = recipes / "sarah.yaml"
    result = looks("apply", recipe)
    assert result.code == 3
    assert result.err.endswith(
        "looks: internal error: AttributeError: 'NoneType' object has no attribute 'id';"
        " set LOOKS_DEBUG=1 for the traceback\n"
    )
    assert "Traceback" not in result.err
    manifest = manifest_path_for(recipe)
    nodes = json.loads(manifest.read_text())["nodes"]
    assert len(nodes) == 9
    assert {n["status"] for n in nodes.values()} == {"completed"}
    assert not journal_path_for(manifest).exists()
    assert not lock_path_for(manifest).exists()
    # Nothing is made twice: the next plan has nothing to do.
    assert looks("plan", recipe, "--detailed-exitcode").code == 0


def test_os_error_names_the_file(recipes: Path, api_env: dict[str, str]) -> None:
    """A manifest path through a regular file: the system's refusal, with its file, exit 1."""
    recipe = recipes / "sarah.yaml"
    inside = recipes / "media" / "sarah.png" / "m.manifest.json"
    process = looks_process("apply", recipe, "--manifest", inside, env=api_env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "Traceback" not in err
    (line,) = [x for x in drop_target(err).splitlines() if x.startswith("looks: ")]
    assert str(recipes / "media" / "sarah.png") in line


def test_os_error_boundary_names_the_file(
    monkeypatch: pytest.MonkeyPatch, looks: Callable[..., Run]
) -> None:
    def denied(args: object) -> int:
        raise PermissionError(13, "Permission denied", "/srv/team/recipes/sarah.yaml")

    monkeypatch.setitem(cli._COMMANDS, "status", denied)
    result = looks("status", "x.yaml")
    assert result.code == 1
    assert one_line(result) == "looks: /srv/team/recipes/sarah.yaml: Permission denied"


# -- the lock names its holder --------------------------------------------------------------------

_HOLD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held, but no "pid N on HOST" line written
    os.write(fd, sys.argv[2].encode())
    print("locked", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("content", ["", "held by a backup script"])
def test_lock_message_names_pid_and_host_even_without_a_holder_line(
    content: str,
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
) -> None:
    recipe = recipes / "sarah.yaml"
    lock = lock_path_for(manifest_path_for(recipe))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock), content], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        assert lock.read_text() == content
        process = looks_process("apply", recipe, env=api_env)
        _, err = process.communicate(timeout=60)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert process.returncode == 1
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if "locked" in x]
    assert lines == [
        f"looks: {manifest_path_for(recipe)} is locked by pid {holder.pid}"
        f" on {socket.gethostname()}"
    ]
    assert simulator.stats()["by_route"].get("POST /v3/avatars", 0) == 0


def test_lock_holder_line_written_late_is_waited_for(tmp_path: Path) -> None:
    """The holder writes its line just after taking the lock: a reader in between waits."""
    path = tmp_path / "r.manifest.json"
    lock = lock_path_for(path)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    timer = threading.Timer(
        0.3, os.write, (fd, b"pid 4242 on far-away since 2026-01-01T00:00:00Z\n")
    )
    timer.start()
    try:
        with pytest.raises(ManifestLockedError) as info:
            ManifestStore(path, "r.yaml")
    finally:
        timer.join()
        os.close(fd)
    assert str(info.value) == (
        f"{path} is locked by pid 4242 on far-away since 2026-01-01T00:00:00Z"
    )

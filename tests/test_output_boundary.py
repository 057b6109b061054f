"""Output a hostile recipe or terminal cannot turn against the reader, and streams that
cannot take it: control characters in a plan, an ASCII-only terminal, a closed stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT, drop_target

from engine.plan import FieldChange, PlanAction
from engine.report import change_lines, plan_lines

RECIPE = (
    "version: 1\n"
    "avatars:\n"
    "  zoe:\n"
    "    name: Zoë\n"
    "    base:\n"
    "      type: prompt\n"
    '      prompt: "Zoë — a café owner in São Paulo, smiling 😀"\n'
)


def test_a_prompt_cannot_move_the_cursor_or_hide_a_line_of_the_plan() -> None:
    # A recipe from a pull request is reviewed through `looks plan`: a carriage return or
    # an escape sequence in a prompt could overwrite the lines a reviewer trusts.
    sneaky = "a calm\r  keep     x\x1b[2K\u202eportrait\nnow"
    change = FieldChange("prompt", "a calm portrait", sneaky)
    lines = change_lines(change)
    assert all(ch not in line for line in lines for ch in "\r\n\x1b\u202e"), lines
    assert lines[1] == "+ prompt: a calm keep x\\x1b[2K\\u202eportrait now"


def test_a_multi_line_value_stays_on_its_line_when_the_other_side_is_absent() -> None:
    [old, new] = change_lines(FieldChange("prompt", None, "line one\nline two"))
    assert old == "- prompt: (none)"
    assert new == "+ prompt: line one line two"


def test_control_characters_in_a_reason_are_shown_escaped() -> None:
    action = PlanAction("a", "update", "renamed 'x' -> 'y\x1b[8m'", "base")
    assert plan_lines([action]) == ["  update   a  (renamed 'x' -> 'y\\x1b[8m')"]


def _looks(
    tmp_path: Path,
    *args: str,
    env: dict[str, str],
    stdout: int | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        text=True,
        stdout=stdout,
        stderr=subprocess.PIPE,
        preexec_fn=preexec_fn,
        timeout=120,
        check=False,
    )


def test_an_ascii_terminal_gets_the_plan_with_replacement_characters(tmp_path: Path) -> None:
    (tmp_path / "zoe.yaml").write_text(RECIPE, encoding="utf-8")
    for fmt in ("text", "markdown"):
        run = _looks(
            tmp_path,
            "plan",
            "--format",
            fmt,
            "zoe.yaml",
            stdout=subprocess.PIPE,
            env={"PYTHONIOENCODING": "ascii"},
        )
        assert run.returncode == 0, run.stderr
        assert "internal error" not in run.stderr
        assert "zoe" in run.stdout and "Plan: 1 to create" in run.stdout


def test_a_closed_stdout_is_one_line_and_exit_1_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "zoe.yaml").write_text(RECIPE, encoding="utf-8")
    env = {"HEYGEN_API_KEY": "sk-test", "HEYGEN_BASE_URL": "http://127.0.0.1:9"}
    for args in (("plan", "zoe.yaml"), ("apply", "zoe.yaml")):
        run = _looks(tmp_path, *args, env=env, preexec_fn=lambda: os.close(1))
        assert run.returncode == 1, run.stderr
        assert run.stderr == "looks: standard output is closed; nothing was done\n"
    assert not (tmp_path / "zoe.manifest.json").exists()


TWO_LOOKS = RECIPE + "    looks:\n      garden:\n        prompt: Zoë im Garten\n"


def test_a_full_stdout_does_not_stop_a_paid_run_half_way(
    tmp_path: Path, api_env: dict[str, str]
) -> None:
    # `looks apply > /dev/full` (a full disk under a CI log) used to stop after the first
    # line: the base submitted (billed), its look recorded as "blocked: upstream did not
    # complete". Output that cannot be written is dropped, as for a closed pipe; said once.
    (tmp_path / "zoe.yaml").write_text(TWO_LOOKS, encoding="utf-8")
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "engine.cli", "apply", "zoe.yaml"],
            cwd=tmp_path,
            env=api_env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )

    assert run.returncode == 0, run.stderr
    assert drop_target(run.stderr) == (
        "looks: standard output: No space left on device; the rest of the output is dropped\n"
    )
    manifest = json.loads((tmp_path / "zoe.manifest.json").read_text())
    assert {a: r["status"] for a, r in manifest["nodes"].items()} == {
        "zoe": "completed",
        "zoe/garden": "completed",
    }

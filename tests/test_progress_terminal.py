"""The progress bar as a person sees it: `looks apply` on a real pseudo-terminal, and the
progress lines a CI log gets without one."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from engine import sim

BAR = re.compile(
    r"\[[#.]+\] (\d+)/(\d+) done  (\d+) failed  \d+ in flight  \d+ queued  [\d.]+/min  ETA \S+"
)


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `looks ARGS` with stdout on a pty; everything it drew, and its exit code."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert "Traceback" not in err, err
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def test_the_bar_never_lags_behind_the_events_printed_above_it(
    recipes: Path, simulator: sim.RunningSimulator, api_env: dict[str, str]
) -> None:
    simulator.configure(failed_look_rate=0.0)
    code, screen = run_on_a_terminal(["apply", str(recipes / "characters.yaml")], api_env)
    assert code == 0, screen
    settled = 0  # events that end a node, printed so far
    bars = 0
    for piece in screen.split("\r\x1b[2K"):
        for line in piece.split("\n"):
            bar = BAR.match(line)
            if bar:
                bars += 1
                assert int(bar.group(1)) >= settled, (line, settled)
            elif re.search(r": (completed|failed|blocked)( |$)", line):
                settled += 1
    assert bars > 0, screen
    total = 8  # one base and seven looks
    assert settled == total
    final_bar, summary = screen.rstrip("\n").rsplit("\r\x1b[2K", 1)[-1].split("\n")
    assert BAR.match(final_bar) and len(final_bar) < 80  # fits the pty's 80 columns
    assert final_bar.startswith("[###") and f"] {total}/{total} done  0 failed" in final_bar
    assert summary == "Apply: 8 completed, 0 failed, 0 blocked, 0 not started."
    assert "submitted" not in screen  # routine events stay off a terminal


def test_without_a_terminal_a_progress_line_comes_while_nothing_else_happens(
    recipes: Path, simulator: sim.RunningSimulator, api_env: dict[str, str]
) -> None:
    simulator.configure(generation_seconds=3)  # three quiet seconds per generation
    recipe = recipes / "characters.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "apply", "--progress-every", "0.5", str(recipe)],
        env=api_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("progress: ")]
    assert len(progress) >= 3, proc.stdout
    # While the base generates, only progress lines appear, each with the counts.
    first_done = next(
        i for i, line in enumerate(lines) if line.endswith(")") and ": completed" in line
    )
    assert any(
        line.startswith("progress: 0/8 done  0 failed  1 in flight") for line in lines[:first_done]
    )
    assert re.match(
        r"progress: \d+/8 done  \d+ failed  \d+ in flight  \d+ queued  [\d.]+/min  ETA \S+$",
        progress[-1],
    )


def test_the_progress_interval_must_be_positive(recipes: Path, api_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "apply",
            "--progress-every",
            "0",
            str(recipes / "sarah.yaml"),
        ],
        env=api_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(
        "looks: argument --progress-every: expected seconds greater than 0, not '0'"
    )

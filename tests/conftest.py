"""Fixtures shared by the end-to-end tests: a simulator, a copy of the recipes, the CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import sim
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-test-SECRET-4f1c2b"


TARGET_LINE = re.compile(r"looks: calling \S+( \(HeyGen production\))? with key [^\n]*\n")


def drop_target(err: str) -> str:
    """stderr without the line naming the API that commands calling it print first."""
    return TARGET_LINE.sub("", err, count=1) if TARGET_LINE.match(err) else err


@dataclass
class Run:
    """The outcome of one `looks` invocation."""

    code: int
    out: str
    err: str


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    """A private copy of recipes/ (manifests are written beside recipes)."""
    target = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", target)
    return target


@pytest.fixture
def simulator() -> Iterator[sim.RunningSimulator]:
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.2, auto_consent=0.2)
    with sim.running_simulator(config) as s:
        yield s


@pytest.fixture
def api_env(simulator: sim.RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("HEYGEN_BASE_URL", simulator.base_url)
    monkeypatch.setenv("HEYGEN_API_KEY", API_KEY)
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def looks(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the CLI in-process, as `looks ARGS...`."""

    def run(*args: str | Path) -> Run:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def looks_process(
    *args: str | Path, env: dict[str, str], **kwargs: object
) -> subprocess.Popen[str]:
    """Start `looks ARGS...` as a separate process (for kill -9 and Ctrl-C)."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )

"""Shared helpers of the benchmarks: the simulator subprocess, recipes, measured runs, tables.

Every benchmark talks to `looks sim` over loopback and runs `looks` as a real subprocess, so
the numbers are what a user sees (interpreter start-up included) and the simulator's CPU is
never counted as the engine's.
"""

from __future__ import annotations

import compileall
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-bench-0123456789"
LOOPBACK = "127.0.0.1"


# -- the simulator ---------------------------------------------------------------------------


@dataclass
class Sim:
    """A `looks sim` subprocess on loopback."""

    proc: subprocess.Popen[bytes]
    base_url: str
    state_file: Path | None

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.base_url}/_sim/stats", timeout=30).json()
        return data

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.base_url}/_sim/state", timeout=60).json()
        return data

    def env(self) -> dict[str, str]:
        """The environment for a `looks` subprocess aimed at this simulator."""
        return {
            **os.environ,
            "HEYGEN_BASE_URL": self.base_url,
            "HEYGEN_API_KEY": API_KEY,
            "PYTHONPATH": str(ROOT),
        }

    def stop(self) -> None:
        """SIGTERM (the simulator saves its --state file and exits 0), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def running_sim(*flags: str, state_file: Path | None = None) -> Iterator[Sim]:
    """Start `looks sim` on a free loopback port with `flags`; stop it on the way out."""
    with tempfile.TemporaryDirectory(prefix="looks-bench-sim-") as tmp:
        out_path = Path(tmp) / "sim.out"
        cmd = [*looks_cmd(), "sim", "--host", LOOPBACK, "--port", "0", "--api-key", API_KEY]
        cmd += list(flags)
        if state_file is not None:
            cmd += ["--state", str(state_file)]
        with out_path.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        sim = Sim(proc, "", state_file)
        try:
            deadline = time.monotonic() + 30
            while not sim.base_url:
                first = out_path.read_text(errors="replace").split("\n", 1)
                if len(first) == 2 and first[0].startswith("HEYGEN_BASE_URL="):
                    sim.base_url = first[0].removeprefix("HEYGEN_BASE_URL=").strip()
                elif proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"looks sim did not start: {out_path.read_text()!r}")
                else:
                    time.sleep(0.02)
            yield sim
        finally:
            sim.stop()


@functools.cache
def _bytecode() -> None:
    """Compile the package, as pip does on install: a checkout run with
    PYTHONDONTWRITEBYTECODE (set on some machines) would compile every module from source
    on every start, ~0.15 s that no installed `looks` pays."""
    compileall.compile_dir(ROOT / "engine", quiet=1)


def looks_cmd() -> list[str]:
    """The `looks` console script of this interpreter's environment (or `-m looks.cli`),
    its package compiled."""
    _bytecode()
    script = Path(sys.executable).parent / "looks"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "looks.cli"]


# -- measured subprocesses ---------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One finished child process and what it cost (from wait4: this child only)."""

    code: int
    wall: float
    user: float
    sys: float
    maxrss_mb: float

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
) -> Measured:
    """Run cmd to completion; wall time, CPU and peak RSS of that very process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=stdout, stderr=subprocess.DEVNULL)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4; tell Popen so it does not wait again
    return Measured(code, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024)


# -- recipes --------------------------------------------------------------------------------------


def spread(looks: int, avatars: int) -> list[int]:
    """looks split over avatars as evenly as possible (the first ones take the remainder)."""
    each, extra = divmod(looks, avatars)
    return [each + (1 if a < extra else 0) for a in range(avatars)]


def write_matrix_recipe(directory: Path, looks: int, avatars: int, name: str = "batch") -> Path:
    """Prompt avatars whose looks come from a matrix: a short file for a large plan."""
    lines = ["version: 1", "avatars:"]
    for a, count in enumerate(spread(looks, avatars)):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            f"    base: {{type: prompt, prompt: 'Person number {a}, studio portrait'}}",
        ]
        if count:
            lines += [
                "    looks:",
                '      "look-{n}":',
                "        prompt: Outfit number {n}, plain background",
                f"        matrix: {{n: [{', '.join(str(i) for i in range(count))}]}}",
            ]
    path = directory / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_explicit_recipe(directory: Path, looks: int, avatars: int, name: str = "batch") -> Path:
    """The same kind of batch with every look written out: the file grows with the plan."""
    lines = ["version: 1", "avatars:"]
    for a, count in enumerate(spread(looks, avatars)):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            "    base:",
            "      type: prompt",
            f"      prompt: Person number {a}, studio portrait, soft light",
        ]
        if count:
            lines.append("    looks:")
        for i in range(count):
            lines += [
                f"      look-{i}:",
                f"        prompt: Outfit number {i} for avatar {a}, plain background",
            ]
    path = directory / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- output ---------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes straight into docs/), numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        any(_is_number(row[i]) for row in rows)
        and all(_is_number(row[i]) or row[i] == "" for row in rows)
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if n else "-" * (w + 2)
            for w, n in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def machine() -> str:
    """One line describing where the numbers come from."""
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {load[0]:.2f} at start"
    )

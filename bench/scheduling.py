"""Scheduling under generation-time spread: makespan against the physical bound, GET and CPU.

Two shapes of batch are applied by the real CLI (`looks apply --max-jobs C`) against
`looks sim --max-jobs C --generation-seconds T`, T constant or a log-uniform range LO-HI:

- flat: 20 prompt avatars x 10 looks, every look built on its avatar's base;
- chains: one avatar whose 120 looks fan out from its base, beside 3 avatars whose 20 looks
  each form a `from` chain (base -> s0 -> s1 ...): the critical path (21 generations) is
  longer than the total work divided by C, so the chains must never wait.

The bound is computed from the simulator's own job times (per look `started_at` and
`finished_at` in /_sim/state, i.e. the durations it actually drew): max(critical path,
sum of durations / C), where the critical path is the heaviest chain of `avatar_id` links.
No client can finish sooner. The makespan is the wall time of the `looks apply` process,
interpreter start-up included. Each cell is the median of --runs runs (seeds 1..runs), with
the range beside it.

    .venv/bin/python bench/scheduling.py [--runs 3] [--max-jobs 10]
        [--timings 1.0 0.6-1.7] [--shapes flat chains]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import looks_cmd, machine, run_measured, running_sim, table, verdict

TARGET_RATIO = 1.05
TARGET_GETS = 8.0


def flat_recipe(directory: Path) -> Path:
    """20 avatars x 10 looks, each look on its avatar's base."""
    lines = ["version: 1", "avatars:"]
    for a in range(20):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            f"    base: {{type: prompt, prompt: 'Person number {a}, studio portrait'}}",
            "    looks:",
        ]
        lines += [f"      l{n}: {{prompt: 'Outfit {n} for {a}'}}" for n in range(10)]
    path = directory / "flat.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def chains_recipe(directory: Path) -> Path:
    """A 120-look fan-out beside three 20-look `from` chains."""
    lines = [
        "version: 1",
        "avatars:",
        "  fan:",
        "    name: Fan",
        "    base: {type: prompt, prompt: 'A person, studio portrait'}",
        "    looks:",
    ]
    lines += [f"      f{n}: {{prompt: 'Outfit {n}'}}" for n in range(120)]
    for c in range(3):
        lines += [
            f"  chain{c}:",
            f"    name: Chain {c}",
            f"    base: {{type: prompt, prompt: 'Person {c} of a chain'}}",
            "    looks:",
        ]
        for n in range(20):
            after = f", from: s{n - 1}" if n else ""
            lines.append(f"      s{n}: {{prompt: 'Step {n} of chain {c}'{after}}}")
    path = directory / "chains.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SHAPES: dict[str, Callable[[Path], Path]] = {"flat": flat_recipe, "chains": chains_recipe}


@dataclass(frozen=True)
class Bound:
    """The physical limit of one run, from the simulator's job times."""

    generations: int
    work: float  # sum of job durations, s
    critical_path: float  # heaviest chain of avatar_id links, s
    jobs: int

    @property
    def seconds(self) -> float:
        return max(self.critical_path, self.work / self.jobs)


def bound_of(state: dict[str, Any], jobs: int) -> Bound:
    """max(critical path, sum / C) over the looks the simulator ran."""
    looks = {look["id"]: look for look in state["looks"]}
    duration: dict[str, float] = {}
    for look_id, look in looks.items():
        start, end = look.get("started_at"), look.get("finished_at")
        if start is None or end is None:
            raise RuntimeError(f"look {look_id} has no started_at/finished_at in /_sim/state")
        duration[look_id] = float(end) - float(start)
    path: dict[str, float] = {}

    def chain(look_id: str) -> float:
        # Iterative: a chain may be longer than Python's recursion limit.
        walk = [look_id]
        while (up := looks[walk[-1]]["request"].get("avatar_id")) in looks and up not in path:
            walk.append(up)
        for lid in reversed(walk):
            up = looks[lid]["request"].get("avatar_id")
            path[lid] = duration[lid] + path.get(up, 0.0)
        return path[look_id]

    critical = max((chain(lid) for lid in looks), default=0.0)
    return Bound(len(looks), sum(duration.values()), critical, jobs)


@dataclass(frozen=True)
class Run:
    ratio: float
    gets_per_look: float
    cpu_ms_per_look: float
    wall: float
    bound: float
    requests_429: int


def one_run(shape: str, timing: str, jobs: int, seed: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="looks-bench-sched-") as tmp:
        directory = Path(tmp)
        recipe = SHAPES[shape](directory)
        flags = ["--max-jobs", str(jobs), "--generation-seconds", timing, "--seed", str(seed)]
        with running_sim(*flags) as sim:
            run = run_measured(
                [*looks_cmd(), "apply", "--max-jobs", str(jobs), str(recipe)],
                env=sim.env(),
                timeout=600,
            )
            stats = sim.stats()
            state = sim.state()  # after stats: its own request is not counted
    if run.code != 0:
        raise RuntimeError(f"{shape}/{timing}: apply exited {run.code}")
    bound = bound_of(state, jobs)
    gets = sum(n for route, n in stats["by_route"].items() if route.startswith("GET "))
    looks = bound.generations
    return Run(
        run.wall / bound.seconds,
        gets / looks,
        1000 * run.cpu / looks,
        run.wall,
        bound.seconds,
        int(stats["by_status"].get("429", 0)),
    )


def cell(values: Sequence[float], digits: int = 2) -> str:
    """The median, and the range when there are several runs."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (seeds 1..runs)")
    parser.add_argument("--max-jobs", type=int, default=10, help="C")
    parser.add_argument("--timings", nargs="+", default=["1.0", "0.6-1.7"])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    args = parser.parse_args()
    print(f"scheduling: {args.runs} runs per cell; {machine()}\n")
    rows: list[list[object]] = []
    ok = True
    for shape in args.shapes:
        for timing in args.timings:
            runs = [one_run(shape, timing, args.max_jobs, seed) for seed in range(1, args.runs + 1)]
            ratios = [r.ratio for r in runs]
            gets = [r.gets_per_look for r in runs]
            met = (
                statistics.median(ratios) <= TARGET_RATIO and statistics.median(gets) <= TARGET_GETS
            )
            ok = ok and met
            rows.append(
                [
                    shape,
                    timing,
                    cell([r.bound for r in runs], 1),
                    cell([r.wall for r in runs], 1),
                    cell(ratios),
                    cell(gets, 1),
                    cell([r.cpu_ms_per_look for r in runs], 1),
                    sum(r.requests_429 for r in runs),
                    verdict(met),
                ]
            )
            print(f"  {shape} {timing}: " + ", ".join(f"{r.ratio:.3f}" for r in runs), flush=True)
    print()
    headers = [
        "batch",
        "generation s",
        "bound s",
        "makespan s",
        f"makespan / bound (<= {TARGET_RATIO})",
        f"GET / look (<= {TARGET_GETS:g})",
        "CPU ms / look",
        "429s",
        "targets",
    ]
    print(table(headers, rows))
    print("\nall targets met" if ok else "\nsome target MISSED (see the table)")
    return 0  # a miss is a result, not a broken benchmark


if __name__ == "__main__":
    sys.exit(main())

"""`looks plan` time and memory at 1k/10k/50k looks, against a C-accelerated YAML load.

Each recipe writes every look out (no matrix), so the file grows with the plan. `looks plan`
runs as a subprocess (wall time and peak RSS from wait4). The reference is the same file read
by `yaml.load(..., Loader=yaml.CSafeLoader)` (libyaml), both in a fresh interpreter (like for
like: start-up included on both sides) and in-process (the bare parse). Target (issue 4): the
plan of a 10,000-look recipe takes at most 3x the YAML load, with memory growing linearly.

    .venv/bin/python bench/plan_scale.py [--sizes 1000 10000 50000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import (
    Measured,
    looks_cmd,
    machine,
    run_measured,
    table,
    verdict,
    write_explicit_recipe,
)

TARGET = 3.0
TARGET_SIZE = 10_000
LOADER: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
LIBYAML = LOADER is not yaml.SafeLoader


def best(runs: list[Measured]) -> Measured:
    """The fastest run (least disturbed by other work on the machine); its own peak RSS."""
    return min(runs, key=lambda m: m.wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--looks-per-avatar", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="runs per size (best is kept)")
    args = parser.parse_args()
    print(f"plan scale: {machine()}")
    if LIBYAML:
        print("reference: yaml.load with yaml.CSafeLoader (libyaml)\n")
    else:
        print("NOTE: libyaml is not available: the reference is the pure-Python SafeLoader\n")
    rows: list[list[object]] = []
    broken: list[str] = []
    yaml_cmd = [
        sys.executable,
        "-c",
        "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)"
        if LIBYAML
        else "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.SafeLoader)",
    ]
    fixed_kb: list[float] = []
    with tempfile.TemporaryDirectory(prefix="looks-bench-plan-") as tmp:
        directory = Path(tmp)
        for size in args.sizes:
            avatars = max(1, size // args.looks_per_avatar)
            recipe = write_explicit_recipe(directory, size, avatars, name=f"plan{size}")
            megabytes = recipe.stat().st_size / 1e6
            plans = [
                run_measured([*looks_cmd(), "plan", str(recipe)], timeout=300)
                for _ in range(args.repeats)
            ]
            loads = [run_measured([*yaml_cmd, str(recipe)]) for _ in range(args.repeats)]
            inproc = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                with recipe.open("rb") as f:
                    yaml.load(f, Loader=LOADER)  # a safe loader, chosen above
                inproc.append(time.perf_counter() - start)
            plan, load = best(plans), best(loads)
            if any(m.code != 0 for m in plans + loads):
                broken.append(f"{size}: plan or YAML load exited non-zero")
            ratio = plan.wall / load.wall
            bare = plan.wall / min(inproc)
            fixed_kb.append(plan.maxrss_mb * 1024 / size)
            target = f"<= {TARGET:g}: {verdict(ratio <= TARGET)}" if size == TARGET_SIZE else ""
            rows.append(
                [
                    size,
                    megabytes,
                    plan.wall,
                    load.wall,
                    min(inproc),
                    ratio,
                    bare,
                    target,
                    plan.maxrss_mb,
                    load.maxrss_mb,
                ]
            )
    print(
        table(
            [
                "looks",
                "file MB",
                "plan s",
                "YAML load s (process)",
                "YAML load s (in-process)",
                "plan / load (process)",
                "plan / load (in-process)",
                "target",
                "plan RSS MB",
                "YAML RSS MB",
            ],
            rows,
        )
    )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        assert isinstance(first[8], float) and isinstance(last[8], float)
        assert isinstance(first[0], int) and isinstance(last[0], int)
        slope = (last[8] - first[8]) * 1024 / (last[0] - first[0])
        print(
            f"\nplan memory grows by {slope:.1f} KB per look from {first[0]} to {last[0]} looks"
            f" (RSS includes the interpreter's ~{first[8] - slope * first[0] / 1024:.0f} MB)"
        )
    for problem in broken:
        print(f"BROKEN: {problem}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

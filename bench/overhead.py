"""The engine's own cost: CPU per look, peak memory, and a no-op re-apply.

`looks apply` runs as a subprocess against `looks sim --generation-seconds 0` (a separate
process, so the simulator's CPU is not counted); CPU time and peak RSS come from wait4 on the
apply process alone. A one-look apply measures the fixed cost (interpreter, imports, client).
Then the completed largest manifest is applied again: it must send no request at all and take
under twice the time of `looks plan` on the same recipe.

    .venv/bin/python bench/overhead.py [--sizes 1000 10000] [--looks-per-avatar 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    Measured,
    looks_cmd,
    machine,
    run_measured,
    running_sim,
    table,
    verdict,
    write_matrix_recipe,
)

CPU_TARGET_MS = 2.0
MEMORY_TARGET_MB = 300.0
NOOP_TARGET = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="looks")
    parser.add_argument("--looks-per-avatar", type=int, default=20)
    parser.add_argument("--max-jobs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="no-op apply and plan runs")
    args = parser.parse_args()
    jobs = str(args.max_jobs)
    sim_flags = ["--generation-seconds", "0", "--max-jobs", jobs, "--seed", "1"]
    print(f"overhead: {machine()}")
    print(f"simulator: {' '.join(sim_flags)}; `looks apply --max-jobs {jobs}`\n")
    broken: list[str] = []
    rows: list[list[object]] = []
    noop_rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="looks-bench-oh-") as tmp:
        directory = Path(tmp)
        fixed_recipe = write_matrix_recipe(directory, 0, 1, name="fixed")
        with running_sim(*sim_flags) as sim:
            fixed = run_measured([*looks_cmd(), "apply", str(fixed_recipe)], env=sim.env())
        if fixed.code != 0:
            broken.append(f"the one-look apply exited {fixed.code}")
        rows.append(["1 (fixed cost)", 1, fixed.wall, fixed.cpu, fixed.cpu * 1000, "", ""])
        rows[-1] += [fixed.maxrss_mb, ""]

        per_look_kb: list[float] = []
        for size in args.sizes:
            avatars = max(1, size // args.looks_per_avatar)
            looks = size - avatars  # `size` generations in all, bases included
            recipe = write_matrix_recipe(directory, looks, avatars, name=f"batch{size}")
            with running_sim(*sim_flags) as sim:
                run = run_measured(
                    [*looks_cmd(), "apply", "--max-jobs", jobs, str(recipe)],
                    env=sim.env(),
                    timeout=400,
                )
                stats = sim.stats()
                posts = int(stats["by_route"].get("POST /v3/avatars", 0))
                if run.code != 0 or posts < size:
                    broken.append(f"{size}: apply exited {run.code} after {posts} creates")
                if size == max(args.sizes):
                    noop_rows = noop(sim.env(), recipe, args.repeats, broken, sim.stats)
            per_look_ms = run.cpu / size * 1000
            marginal_ms = (run.cpu - fixed.cpu) / (size - 1) * 1000
            kb = (run.maxrss_mb - fixed.maxrss_mb) * 1024 / size
            per_look_kb.append(kb)
            rows.append(
                [
                    f"{size} ({avatars} avatars)",
                    size,
                    run.wall,
                    run.cpu,
                    per_look_ms,
                    marginal_ms,
                    f"<= {CPU_TARGET_MS} ms: {verdict(per_look_ms <= CPU_TARGET_MS)}",
                    run.maxrss_mb,
                    f"{kb:.1f} KB/look above fixed",
                ]
            )
    print(
        table(
            [
                "looks",
                "generations",
                "wall s",
                "CPU s",
                "CPU ms/look",
                "marginal ms/look",
                "CPU target",
                "peak RSS MB",
                "memory",
            ],
            rows,
        )
    )
    biggest = rows[-1]
    assert isinstance(biggest[7], float)
    linear = len(per_look_kb) < 2 or per_look_kb[-1] <= 1.25 * max(per_look_kb[0], 1.0)
    print(
        f"\nmemory at {args.sizes[-1]}: {biggest[7]:.0f} MB (< {MEMORY_TARGET_MB:.0f} MB: "
        f"{verdict(biggest[7] < MEMORY_TARGET_MB)}); per-look growth "
        + " -> ".join(f"{kb:.1f}" for kb in per_look_kb)
        + f" KB (linear or better: {verdict(linear)})\n"
    )
    print(table(["no-op re-apply", "value", "target"], noop_rows))
    for problem in broken:
        print(f"BROKEN: {problem}")
    return 1 if broken else 0


def noop(
    env: dict[str, str],
    recipe: Path,
    repeats: int,
    broken: list[str],
    stats: Callable[[], dict[str, Any]],
) -> list[list[object]]:
    """Apply a completed manifest again (and plan it), `repeats` times each, alternating."""
    manifest = recipe.with_name(f"{recipe.stem}.manifest.json")
    before_bytes = manifest.read_bytes()
    before = int(stats()["requests"])
    applies: list[Measured] = []
    plans: list[Measured] = []
    for _ in range(repeats):
        applies.append(run_measured([*looks_cmd(), "apply", str(recipe)], env=env))
        plans.append(run_measured([*looks_cmd(), "plan", str(recipe)], env=env))
    calls = int(stats()["requests"]) - before
    if any(m.code != 0 for m in applies + plans):
        broken.append("a no-op apply or plan exited non-zero")
    apply_s = statistics.median(m.wall for m in applies)
    plan_s = statistics.median(m.wall for m in plans)
    ratio = apply_s / plan_s
    unchanged = manifest.read_bytes() == before_bytes
    return [
        ["API calls during the re-applies", calls, f"0: {verdict(calls == 0)}"],
        [f"`looks apply` wall s (median of {repeats})", apply_s, ""],
        [f"`looks plan` wall s (median of {repeats})", plan_s, ""],
        ["apply / plan", ratio, f"< {NOOP_TARGET}: {verdict(ratio < NOOP_TARGET)}"],
        [
            "`looks apply` CPU s / peak RSS MB",
            f"{applies[0].cpu:.2f} / {applies[0].maxrss_mb:.0f}",
            "",
        ],
        ["manifest bytes unchanged", "yes" if unchanged else "NO", ""],
    ]


if __name__ == "__main__":
    sys.exit(main())

"""Run every benchmark (what `make bench` does), print each table, then the total time.

Each benchmark runs as its own process with its default sizes, one after the other (they
share a 2-core machine, so running them side by side would distort each other's numbers).

    .venv/bin/python bench/run_all.py [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, machine, table

BENCH = Path(__file__).resolve().parent
BUDGET_SECONDS = 600.0

# (name, script, arguments): the order puts the quick ones first.
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("sim_load", "sim_load.py", ["--clients", "50", "--seconds", "3"]),
    ("plan_scale", "plan_scale.py", []),
    ("overhead", "overhead.py", []),
    ("throughput", "throughput.py", []),
    ("scheduling", "scheduling.py", ["--runs", "1"]),  # docs quote --runs 3 (~6 min)
    ("chaos", "chaos.py", []),
    ("upload_memory", "upload_memory.py", []),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=[name for name, _, _ in BENCHMARKS]
    )
    args = parser.parse_args()
    print(f"make bench: {machine()}\n", flush=True)
    rows: list[list[object]] = []
    failed = False
    began = time.perf_counter()
    for name, script, arguments in BENCHMARKS:
        path = BENCH / script
        if name in args.skip:
            rows.append([name, "skipped (--skip)", ""])
            continue
        if not path.exists():
            print(f"== {name}: SKIPPED, bench/{script} does not exist yet\n", flush=True)
            rows.append([name, "skipped: script missing", ""])
            continue
        command = [sys.executable, str(path), *arguments]
        print(f"== {name}: {' '.join(['python', f'bench/{script}', *arguments])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=ROOT)
        seconds = time.perf_counter() - start
        print(flush=True)
        failed |= code != 0
        rows.append([name, "ok" if code == 0 else f"BROKEN (exit {code})", seconds])
    total = time.perf_counter() - began
    rows.append(["total", f"budget {BUDGET_SECONDS:.0f} s", total])
    print(table(["benchmark", "result", "seconds"], rows))
    if total > BUDGET_SECONDS:
        print(f"\nover the {BUDGET_SECONDS:.0f} s budget of `make bench`")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

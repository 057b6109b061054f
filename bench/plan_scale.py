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
    parser.add_argument(
        "--batch-rows", type=int, default=2000, help="CSV rows of the batch recipe (0: skip)"
    )
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
    if args.batch_rows:
        with tempfile.TemporaryDirectory(prefix="looks-bench-batch-") as tmp:
            broken += batch_scale(Path(tmp), args.batch_rows, args.repeats, yaml_cmd)
    for problem in broken:
        print(f"BROKEN: {problem}")
    return 1 if broken else 0


BATCH_SET = (
    ("navy-office", "Navy blazer, modern office with plants, {accent} accents"),
    ("keynote", "On a conference stage, {accent} lighting"),
    ("podcast", "Seated at a podcast desk, {accent} microphone"),
    ("street", "Casual jacket on a city street, {accent} storefronts"),
    ("studio", "Plain grey studio backdrop, {accent} rim light"),
)


def write_batch_recipes(directory: Path, rows: int) -> tuple[Path, Path]:
    """A CSV team with a 5-look set (issue 13), and the same recipe written out by hand."""
    accents = ["warm", "cool", "amber", "teal", "violet"]
    people = [(f"p{i:05d}", f"Person {i}", accents[i % len(accents)]) for i in range(rows)]
    (directory / "people.csv").write_text(
        "id,full_name,accent\n" + "".join(f"{p},{n},{a}\n" for p, n, a in people),
        encoding="utf-8",
    )
    batch = ["version: 1", "look_sets:", "  team:"]
    batch += [f'    {key}: {{prompt: "{prompt}"}}' for key, prompt in BATCH_SET]
    batch += [
        "avatars:",
        '  "{id}":',
        "    foreach: {csv: people.csv}",
        '    name: "{full_name}"',
        '    base: {type: prompt, prompt: "{full_name}, studio portrait, soft light"}',
        "    include: [team]",
    ]
    explicit = ["version: 1", "avatars:"]
    for key, name, accent in people:
        explicit += [
            f"  {key}:",
            f"    name: {name}",
            f"    base: {{type: prompt, prompt: '{name}, studio portrait, soft light'}}",
            "    looks:",
        ]
        explicit += [
            f"      {look}: {{prompt: '{prompt.replace('{accent}', accent)}'}}"
            for look, prompt in BATCH_SET
        ]
    csv_recipe, written_out = directory / "team.yaml", directory / "written-out.yaml"
    csv_recipe.write_text("\n".join(batch) + "\n", encoding="utf-8")
    written_out.write_text("\n".join(explicit) + "\n", encoding="utf-8")
    return csv_recipe, written_out


def batch_scale(directory: Path, rows: int, repeats: int, yaml_cmd: list[str]) -> list[str]:
    """`looks validate` and `looks plan` of the CSV recipe against a YAML load of the same
    recipe written out (issue 13's bound: at most 3x)."""
    csv_recipe, written_out = write_batch_recipes(directory, rows)
    generations = rows * (1 + len(BATCH_SET))
    print(
        f"\nbatch: {rows} CSV rows x a {len(BATCH_SET)}-look set = {generations} generations;"
        f" the written-out recipe is {written_out.stat().st_size / 1e6:.2f} MB"
    )
    load = best([run_measured([*yaml_cmd, str(written_out)]) for _ in range(repeats)])
    broken = [f"batch: YAML load exited {load.code}"] if load.code else []
    out: list[list[object]] = []
    for command in ("validate", "plan"):
        runs = [
            run_measured([*looks_cmd(), command, str(csv_recipe)], timeout=300)
            for _ in range(repeats)
        ]
        if any(m.code != 0 for m in runs):
            broken.append(f"batch: looks {command} exited non-zero")
        measured = best(runs)
        ratio = measured.wall / load.wall
        verdict_text = f"<= {TARGET:g}: {verdict(ratio <= TARGET)}"
        out.append([f"looks {command}", measured.wall, load.wall, ratio, verdict_text])
    print(table(["command", "s", "YAML load s (written out)", "ratio", "target"], out))
    return broken


if __name__ == "__main__":
    sys.exit(main())

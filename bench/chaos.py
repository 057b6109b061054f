"""Chaos campaigns: kill -9 at random moments during `looks apply`, under lost answers and 5xx.

Each campaign starts a fresh `looks sim --drop-rate D --fail-rate F`, starts `looks apply` on
a new batch and SIGKILLs it at a random moment, again and again, then resumes (plain
`looks apply`, repeated while it exits non-zero) until the run succeeds. Then it compares the
simulator with the manifest: a duplicate is a simulator look beyond the first one made for an
address (looks are matched to addresses by the manifest's look ids and look names), a lost
look is a simulator look that no manifest record holds. Both must be 0: the script exits 1
otherwise. `--seed` makes the kill moments and the simulator's faults reproducible (up to
timing).

    .venv/bin/python bench/chaos.py [--campaigns 8] [--kills 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    Sim,
    looks_cmd,
    machine,
    read_json,
    running_sim,
    table,
    write_matrix_recipe,
)


@dataclass
class Campaign:
    seed: int
    kills: int = 0
    finished_before_kill: int = 0
    resumes: int = 0
    failed_runs: int = 0
    sim_looks: int = 0
    duplicates: int = 0
    lost: int = 0
    unfinished: int = 0
    errors_500: int = 0
    dropped: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and self.unfinished == 0


def audit(sim: Sim, manifest_path: Path, campaign: Campaign) -> None:
    """Duplicates, lost looks and unfinished addresses: the simulator against the manifest."""
    nodes: dict[str, Any] = read_json(manifest_path)["nodes"] if manifest_path.exists() else {}
    looks = sim.state()["looks"]
    campaign.sim_looks = len(looks)
    by_id = {look["id"]: look for look in looks}
    known: set[str] = set()
    by_name: dict[str, str] = {}
    for address, node in nodes.items():
        if node.get("kind") not in ("base", "look"):
            continue
        known.update(node.get("superseded", []))
        if node.get("name"):
            by_name[node["name"]] = address
        look_id = node.get("look_id")
        if node.get("status") != "completed" or look_id not in by_id:
            campaign.unfinished += 1
            campaign.notes.append(f"{address}: {node.get('status')} {look_id}")
        if look_id:
            known.add(look_id)
    per_address: Counter[str] = Counter()
    for look in looks:
        address = by_name.get(look["name"])
        if address is not None:
            per_address[address] += 1
        if look["id"] not in known:
            campaign.lost += 1
            campaign.notes.append(f"lost: {look['id']} {look['name']!r}")
    for address, count in per_address.items():
        if count > 1:
            campaign.duplicates += count - 1
            campaign.notes.append(f"duplicate: {address} made {count} times")


def run_campaign(
    args: argparse.Namespace, index: int, rng: random.Random, directory: Path
) -> Campaign:
    campaign = Campaign(seed=args.seed + index)
    generations = args.avatars * (1 + args.looks_per_avatar)
    recipe = write_matrix_recipe(directory, generations - args.avatars, args.avatars)
    manifest = recipe.with_name(f"{recipe.stem}.manifest.json")
    # roughly how long an uninterrupted apply takes; kills land anywhere in [0.05 s, that]
    full = 2 * args.generation_seconds + generations * args.generation_seconds / args.max_jobs
    flags = [
        *("--max-jobs", str(args.max_jobs), "--generation-seconds", str(args.generation_seconds)),
        *("--drop-rate", str(args.drop_rate), "--fail-rate", str(args.fail_rate)),
        *("--latency-ms", str(args.latency_ms), "--seed", str(campaign.seed)),
    ]
    apply_cmd = [*looks_cmd(), "apply", "--max-jobs", str(args.max_jobs), str(recipe)]
    start = time.perf_counter()
    with running_sim(*flags) as sim:
        env = sim.env()
        for _ in range(args.kills):
            proc = subprocess.Popen(
                apply_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                proc.wait(rng.uniform(0.05, full + 0.5))
                campaign.finished_before_kill += 1
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                campaign.kills += proc.returncode == -signal.SIGKILL
        for _ in range(args.max_resumes):
            campaign.resumes += 1
            done = subprocess.run(
                apply_cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=args.run_timeout,
            )
            if done.returncode == 0:
                break
            campaign.failed_runs += 1
            if "Traceback" in done.stderr:
                campaign.notes.append(f"traceback: {done.stderr.strip().splitlines()[-1]}")
        else:
            campaign.notes.append(f"no successful apply after {args.max_resumes} resumes")
        audit(sim, manifest, campaign)
        stats = sim.stats()
        campaign.errors_500 = int(stats["by_status"].get("500", 0))
        campaign.dropped = int(stats["dropped"])
    campaign.seconds = time.perf_counter() - start
    return campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=8)
    parser.add_argument("--kills", type=int, default=5, help="kill -9 attempts per campaign")
    parser.add_argument("--avatars", type=int, default=4)
    parser.add_argument("--looks-per-avatar", type=int, default=6)
    parser.add_argument("--max-jobs", type=int, default=6)
    parser.add_argument("--generation-seconds", type=float, default=0.3)
    parser.add_argument("--drop-rate", type=float, default=0.1)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-resumes", type=int, default=10)
    parser.add_argument("--run-timeout", type=float, default=120.0, help="seconds per apply")
    parser.add_argument(
        "--time-limit", type=float, default=240.0, help="start no campaign after this many s"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    generations = args.avatars * (1 + args.looks_per_avatar)
    print(f"chaos: {machine()}")
    print(
        f"{args.campaigns} campaigns of {generations} looks; sim --drop-rate {args.drop_rate:g}"
        f" --fail-rate {args.fail_rate:g} --latency-ms {args.latency_ms:g} --max-jobs"
        f" {args.max_jobs} --generation-seconds {args.generation_seconds:g}; seed {args.seed}\n"
    )
    campaigns: list[Campaign] = []
    began = time.perf_counter()
    for index in range(args.campaigns):
        if time.perf_counter() - began > args.time_limit:
            print(f"time limit reached: {index} of {args.campaigns} campaigns run")
            break
        with tempfile.TemporaryDirectory(prefix="looks-bench-chaos-") as tmp:
            campaigns.append(run_campaign(args, index, rng, Path(tmp)))
    rows: list[list[object]] = [
        [
            i + 1,
            c.seed,
            c.kills,
            c.finished_before_kill,
            c.resumes,
            c.failed_runs,
            c.errors_500,
            c.dropped,
            c.sim_looks,
            c.duplicates,
            c.lost,
            c.unfinished,
            c.seconds,
        ]
        for i, c in enumerate(campaigns)
    ]
    rows.append(
        [
            "total",
            "",
            sum(c.kills for c in campaigns),
            sum(c.finished_before_kill for c in campaigns),
            sum(c.resumes for c in campaigns),
            sum(c.failed_runs for c in campaigns),
            sum(c.errors_500 for c in campaigns),
            sum(c.dropped for c in campaigns),
            sum(c.sim_looks for c in campaigns),
            sum(c.duplicates for c in campaigns),
            sum(c.lost for c in campaigns),
            sum(c.unfinished for c in campaigns),
            sum(c.seconds for c in campaigns),
        ]
    )
    headers = [
        "campaign",
        "seed",
        "kills survived",
        "ended before kill",
        "resumes",
        "runs exiting 1",
        "500s",
        "dropped answers",
        "sim looks",
        "duplicates",
        "lost",
        "unfinished",
        "s",
    ]
    print(table(headers, rows))
    bad = [c for c in campaigns if not c.ok]
    for c in campaigns:
        for note in c.notes[:10]:
            print(f"campaign seed {c.seed}: {note}")
    if bad or not campaigns:
        print(f"\nFAILED: {len(bad)} campaign(s) with duplicates, lost or unfinished looks")
        return 1
    print(f"\nno duplicates, no lost looks, every address completed ({generations} per campaign)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

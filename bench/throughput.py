"""Throughput of `looks apply` against the physical limit, and against a sequential client.

N looks over K avatars (a prompt base each, looks built on it) are applied by the real CLI
against `looks sim --max-jobs C --generation-seconds G`. No client can beat
max(critical path, generations x G / C): the critical path is 2 x G (base, then a look on it)
and the server runs at most C generations at once. The same batch's first avatars then go
through a sequential client written the way create-avatar.md's curl walk goes (create, poll
until completed, next), and its time is extrapolated to the whole batch.

    .venv/bin/python bench/throughput.py [--looks 500] [--avatars 25] [--max-jobs 10]
        [--generation-seconds 1.0] [--sequential-avatars 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    API_KEY,
    looks_cmd,
    machine,
    read_json,
    run_measured,
    running_sim,
    spread,
    table,
    verdict,
    write_matrix_recipe,
)

TARGET_RATIO = 1.05


def mean_in_flight(state: dict[str, Any], start: float, end: float) -> float:
    """Time-averaged looks in `processing` over [start, end], from the simulator's timestamps."""
    busy = 0.0
    for look in state["looks"]:
        ready = look.get("ready_at")
        if ready is None:
            continue
        lo, hi = max(start, float(look["created_at"])), min(end, float(ready))
        busy += max(0.0, hi - lo)
    return busy / (end - start)


def sequential(base_url: str, avatars: list[int], generation_seconds: float) -> tuple[int, float]:
    """create-avatar.md's walk: create, poll until completed, next. Returns (looks, seconds)."""
    interval = max(0.02, 0.1 * generation_seconds)
    made = 0
    start = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"X-Api-Key": API_KEY}, timeout=30) as c:

        def create_and_wait(body: dict[str, Any]) -> str:
            nonlocal made
            while True:
                r = c.post("/v3/avatars", json=body)
                if r.status_code != 429:
                    break
                time.sleep(float(r.headers.get("Retry-After", "1")))
            r.raise_for_status()
            look_id: str = r.json()["data"]["avatar_item"]["id"]
            deadline = time.monotonic() + 60 + 10 * generation_seconds
            while True:
                time.sleep(interval)
                look = c.get(f"/v3/avatars/looks/{look_id}").json()["data"]
                if look["status"] == "completed":
                    break
                if look["status"] == "failed" or time.monotonic() > deadline:
                    raise RuntimeError(f"sequential client: look {look_id} is {look['status']}")
            made += 1
            return look_id

        for a, count in enumerate(avatars):
            base = create_and_wait(
                {
                    "type": "prompt",
                    "name": f"Avatar {a}",
                    "prompt": f"Person number {a}, studio portrait",
                }
            )
            for n in range(count):
                create_and_wait(
                    {
                        "type": "prompt",
                        "name": f"Avatar {a} — look-{n}",
                        "prompt": f"Outfit number {n}, plain background",
                        "avatar_id": base,
                    }
                )
    return made, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--looks", type=int, default=500, help="looks (besides the bases)")
    parser.add_argument("--avatars", type=int, default=25)
    parser.add_argument("--max-jobs", type=int, default=10, help="the simulator's job limit C")
    parser.add_argument("--generation-seconds", type=float, default=1.0, help="G")
    parser.add_argument(
        "--sequential-avatars",
        type=int,
        default=2,
        help="avatars run through the sequential client (0 skips it); the rest is extrapolated",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    g, c = args.generation_seconds, args.max_jobs
    generations = args.looks + args.avatars
    bound = max(2 * g, generations * g / c)
    print(f"throughput: {args.looks} looks over {args.avatars} avatars; {machine()}")
    print(f"simulator: --max-jobs {c} --generation-seconds {g:g}; `looks apply --max-jobs {c}`\n")

    with tempfile.TemporaryDirectory(prefix="looks-bench-tp-") as tmp:
        directory = Path(tmp)
        recipe = write_matrix_recipe(directory, args.looks, args.avatars)
        state_file = directory / "sim-state.json"
        flags = ["--max-jobs", str(c), "--generation-seconds", str(g), "--seed", str(args.seed)]
        with running_sim(*flags, state_file=state_file) as sim:
            t0 = time.time()
            run = run_measured(
                [*looks_cmd(), "apply", "--max-jobs", str(c), str(recipe)],
                env=sim.env(),
                timeout=max(120.0, 5 * bound),
            )
            t1 = time.time()
            stats = sim.stats()
        # Stopped: the state file now holds every look's created_at and ready_at.
        state = read_json(state_file)
        made = len(state["looks"])
        mean = mean_in_flight(state, t0, t1)
        requests = int(stats["requests"])
        throttled = int(stats["by_status"].get("429", 0))
        ratio = run.wall / bound
        if run.code != 0 or made != generations:
            print(f"BROKEN: apply exited {run.code}; simulator holds {made}/{generations} looks")
            return 1

        rows: list[list[object]] = [
            ["generations (looks + bases)", generations, ""],
            ["lower bound max(2G, gens x G / C) s", bound, ""],
            ["makespan of `looks apply` s (process wall)", run.wall, ""],
            ["ratio to bound", ratio, f"<= {TARGET_RATIO}: {verdict(ratio <= TARGET_RATIO)}"],
            ["peak generations in flight", int(stats["max_jobs_in_flight"]), f"limit {c}"],
            ["mean generations in flight", mean, f"limit {c}"],
            ["429s received", throttled, ""],
            ["/v3 requests", requests, str(stats["by_route"])],
            ["requests per look", requests / generations, ""],
            ["engine CPU s (user+sys)", run.cpu, ""],
        ]

        if args.sequential_avatars > 0:
            subset = spread(args.looks, args.avatars)[: args.sequential_avatars]
            with running_sim(*flags) as sim:
                seq_made, seq_seconds = sequential(sim.base_url, subset, g)
            per_look = seq_seconds / seq_made
            extrapolated = per_look * generations
            rows += [
                [f"sequential client: {seq_made} looks measured s", seq_seconds, ""],
                ["sequential client: s per look", per_look, ""],
                [f"sequential client: all {generations} (EXTRAPOLATED) s", extrapolated, ""],
                ["speed-up of `looks apply` (extrapolated)", extrapolated / run.wall, ""],
            ]
    print(table(["measure", "value", "note"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Request rate of the HeyGen simulator under 50 concurrent keep-alive clients.

Starts `python -m looks.cli sim` as a subprocess (its own process, as in real use), then runs
each scenario for a fixed time and prints a table. It stops by itself.

    .venv/bin/python bench/sim_load.py [--clients 50] [--seconds 3]

The load comes from a minimal raw HTTP/1.1 keep-alive client, so the figure measures the
simulator rather than the client. One row repeats the poll with httpx.AsyncClient: httpx spends
far more CPU per request than the simulator (at 50 connections it saturates its own process while
the simulator idles), so that row measures httpx, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

KEY = "bench-key"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    def row(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        rate = self.requests / self.seconds
        return (
            f"| {self.name:<34} | {self.requests:>8} | {self.errors:>6} | {rate:>8.0f} "
            f"| {p50:>7.2f} | {p99:>7.2f} |"
        )


# A request is (method, target, body or None, extra headers).
Req = tuple[str, str, bytes | None, dict[str, str]]


def _encode(host: str, req: Req) -> bytes:
    method, target, body, extra = req
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"X-Api-Key: {KEY}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _raw_client(
    host: str, port: int, make: Callable[[], Req], deadline: float, out: list[float]
) -> int:
    """One keep-alive connection sending requests back to back; returns its error count."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    netloc = f"{host}:{port}"
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(_encode(netloc, make()))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append(time.perf_counter() - start)
            if status >= 400:
                errors += 1
    finally:
        writer.close()
    return errors


async def _run_raw(
    name: str, base: str, clients: int, seconds: float, make: Callable[[], Req]
) -> Result:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    errors = await asyncio.gather(
        *(_raw_client(host, port, make, deadline, latencies) for _ in range(clients))
    )
    return Result(name, len(latencies), sum(errors), time.perf_counter() - start, latencies)


async def _run_httpx(name: str, base: str, clients: int, seconds: float, target: str) -> Result:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": KEY}, limits=limits) as c:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await c.get(target)
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code >= 400

        await asyncio.gather(*(worker() for _ in range(clients)))
    return Result(name, len(latencies), errors, time.perf_counter() - start, latencies)


def _seed(base: str) -> tuple[str, str]:
    """Create a few groups of looks to read; returns (a group id, a look id)."""
    with httpx.Client(base_url=base, headers={"X-Api-Key": KEY}) as c:
        group_id = look_id = ""
        for i in range(40):
            body = {"type": "prompt", "name": f"bench {i}", "prompt": "a person, studio light"}
            if group_id and i % 4:
                body["avatar_group_id"] = group_id
            r = c.post("/v3/avatars", json=body)
            r.raise_for_status()
            data = r.json()["data"]
            if i % 4 == 0:
                group_id, look_id = data["avatar_group"]["id"], data["avatar_item"]["id"]
        return group_id, look_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0, help="per scenario")
    args = parser.parse_args()

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "looks.cli",
            "sim",
            "--port",
            "0",
            "--max-jobs",
            "1000000",
            "--generation-seconds",
            "0.5",
            "--seed",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().removeprefix("HEYGEN_BASE_URL=")
        group_id, look_id = _seed(base)
        counter = itertools.count()
        create = json.dumps({"type": "prompt", "name": "load", "prompt": "a person"}).encode()

        def poll() -> Req:
            return ("GET", f"/v3/avatars/looks?group_id={group_id}", None, {})

        def get_look() -> Req:
            return ("GET", f"/v3/avatars/looks/{look_id}", None, {})

        def post_create() -> Req:
            return ("POST", "/v3/avatars", create, {"Idempotency-Key": f"k{next(counter)}"})

        def mixed() -> Req:
            return post_create() if next(counter) % 10 == 0 else poll()

        scenarios: list[tuple[str, Callable[[], Req]]] = [
            ("GET looks?group_id (engine poll)", poll),
            ("GET looks/{look_id}", get_look),
            ("POST avatars (create, idem key)", post_create),
            ("mixed: 90% poll, 10% create", mixed),
        ]
        print(
            f"simulator at {base}; {args.clients} concurrent keep-alive clients, "
            f"{args.seconds:g} s per scenario\n"
        )
        print(f"| {'scenario':<34} | requests | errors |    req/s | p50 ms  | p99 ms  |")
        print(f"|{'-' * 36}|----------|--------|----------|---------|---------|")
        rates = []
        for name, make in scenarios:
            result = asyncio.run(_run_raw(name, base, args.clients, args.seconds, make))
            rates.append(result.requests / result.seconds)
            print(result.row(), flush=True)
        target = f"/v3/avatars/looks?group_id={group_id}"
        result = asyncio.run(
            _run_httpx(
                "same poll via httpx (client-bound)", base, args.clients, args.seconds, target
            )
        )
        print(result.row())
        stats = httpx.get(f"{base}/_sim/stats").json()
        print(
            f"\nsimulator counted {stats['requests']} /v3 requests; by status {stats['by_status']}"
        )
        print(
            f"lowest raw-client rate: {min(rates):.0f} req/s (target >= 1000); "
            f"median {statistics.median(rates):.0f}"
        )
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

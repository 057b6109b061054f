"""The simulator's state machine without sockets, on a fake clock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from looks.sim import Request, Response, SimConfig, Simulator


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def call(sim: Simulator, method: str, path: str, body: Any = None, **headers: str) -> Response:
    raw = b"" if body is None else json.dumps(body).encode()
    path, _, query = path.partition("?")
    hdrs = {"x-api-key": "k", **{k.lower().replace("_", "-"): v for k, v in headers.items()}}
    return asyncio.run(sim.handle(Request(method, path, query, hdrs, raw)))


PHOTO = {"type": "photo", "name": "p", "file": {"type": "url", "url": "https://e.com/a.png"}}
TWIN = {"type": "digital_twin", "name": "t", "file": {"type": "url", "url": "https://e.com/a.mp4"}}


def test_retry_after_is_whole_seconds_until_the_earliest_job_ends() -> None:
    clock = Clock()
    sim = Simulator(SimConfig(generation_seconds=10, max_jobs=2), clock=clock)
    call(sim, "POST", "/v3/avatars", PHOTO)
    clock.now += 2.5
    call(sim, "POST", "/v3/avatars", PHOTO)
    clock.now += 0.2
    r = call(sim, "POST", "/v3/avatars", PHOTO)
    assert r.status == 429
    assert dict(r.headers)["Retry-After"] == "8"  # ceil(10 - 2.7)
    clock.now += 7.29
    assert dict(call(sim, "POST", "/v3/avatars", PHOTO).headers)["Retry-After"] == "1"
    clock.now += 0.01
    assert call(sim, "POST", "/v3/avatars", PHOTO).status == 200


def test_status_follows_the_clock_and_auto_consent() -> None:
    clock = Clock()
    sim = Simulator(SimConfig(generation_seconds=5, auto_consent=3), clock=clock)
    data = call(sim, "POST", "/v3/avatars", TWIN).json()["data"]
    look_id, group_id = data["avatar_item"]["id"], data["avatar_group"]["id"]

    def status() -> str:
        out: str = call(sim, "GET", f"/v3/avatars/looks/{look_id}").json()["data"]["status"]
        return out

    clock.now += 100
    assert status() == "pending_consent"
    call(sim, "POST", f"/v3/avatars/{group_id}/consent", {})
    clock.now += 2.9
    assert status() == "pending_consent"
    clock.now += 0.2
    assert status() == "processing"
    # Approved at t+3, so generation ends at t+8 whenever it was noticed.
    clock.now += 4.85
    assert status() == "processing"
    clock.now += 0.1
    assert status() == "completed"


def test_peak_jobs_counts_twins_approved_later() -> None:
    clock = Clock()
    sim = Simulator(SimConfig(generation_seconds=5, auto_consent=1), clock=clock)
    group_id = call(sim, "POST", "/v3/avatars", TWIN).json()["data"]["avatar_group"]["id"]
    call(sim, "POST", f"/v3/avatars/{group_id}/consent")
    call(sim, "POST", "/v3/avatars", PHOTO)
    clock.now += 30  # the auto-consent fell due at +1, while the photo was still running
    call(sim, "GET", "/v3/avatars")
    assert sim.stats()["max_jobs_in_flight"] == 2


def test_many_looks_in_one_group_list_quickly() -> None:
    clock = Clock()
    sim = Simulator(SimConfig(generation_seconds=1, max_jobs=100_000), clock=clock)
    group_id = call(sim, "POST", "/v3/avatars", PHOTO).json()["data"]["avatar_group"]["id"]
    body = {"type": "prompt", "name": "n", "prompt": "p", "avatar_group_id": group_id}
    for _ in range(1_000):
        call(sim, "POST", "/v3/avatars", {**PHOTO, "name": "other"})
    for _ in range(30):
        call(sim, "POST", "/v3/avatars", body)
    clock.now += 2
    page = call(sim, "GET", f"/v3/avatars/looks?group_id={group_id}&limit=50").json()
    assert len(page["data"]) == 31 and page["has_more"] is False
    assert {look["status"] for look in page["data"]} == {"completed"}

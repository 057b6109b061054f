"""Shared helpers for the simulator tests (plain functions; fixtures live in the test files)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from looks import sim

KEY = "test-key"
FAST = 0.1  # generation seconds used by most tests

PHOTO_URL = "https://example.com/headshot.png"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@contextmanager
def sim_client(
    config: sim.SimConfig | None = None, key: str = KEY
) -> Iterator[tuple[sim.RunningSimulator, httpx.Client]]:
    """A running simulator and an httpx client authenticated against it."""
    config = config or sim.SimConfig(generation_seconds=FAST)
    with (
        sim.running_simulator(config) as s,
        httpx.Client(base_url=s.base_url, headers={"X-Api-Key": key}, timeout=10) as c,
    ):
        yield s, c


def photo(name: str = "My Photo Avatar", **extra: Any) -> dict[str, Any]:
    return {"type": "photo", "name": name, "file": {"type": "url", "url": PHOTO_URL}, **extra}


def prompt(name: str = "Space Commander", **extra: Any) -> dict[str, Any]:
    return {"type": "prompt", "name": name, "prompt": "a person in a studio", **extra}


def twin(name: str = "My Digital Twin", **extra: Any) -> dict[str, Any]:
    url = "https://example.com/training-footage.mp4"
    return {"type": "digital_twin", "name": name, "file": {"type": "url", "url": url}, **extra}


def create(c: httpx.Client, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = c.post("/v3/avatars", json=body, headers=headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def wait_status(c: httpx.Client, look_id: str, status: str, timeout: float = 5) -> dict[str, Any]:
    """Poll a look until it reaches `status` (the simulator's clock is real time)."""
    deadline = time.monotonic() + timeout
    while True:
        look: dict[str, Any] = c.get(f"/v3/avatars/looks/{look_id}").json()["data"]
        if look["status"] == status or time.monotonic() > deadline:
            return look
        time.sleep(0.02)


def err(r: httpx.Response) -> dict[str, Any]:
    """The error object of a response, checking the envelope's shape on the way."""
    body = r.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error

"""Idempotency, the job limit, credits and the injected faults, over real HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from _simhelpers import KEY, create, err, photo, prompt, sim_client, twin, wait_status

from looks import sim


def test_idempotent_replay_same_look() -> None:
    with sim_client() as (s, c):
        first = c.post("/v3/avatars", json=photo("A"), headers={"Idempotency-Key": "abc:1"})
        # Even with a different body, the original answer comes back.
        again = c.post("/v3/avatars", json=photo("B"), headers={"Idempotency-Key": "abc:1"})
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["x-request-id"] != first.headers["x-request-id"]
        looks = s.state()["looks"]
        assert len(looks) == 1
        assert looks[0]["idempotency_key"] == "abc:1"
        assert looks[0]["request"]["name"] == "A"
        # Another key is another create; keys are scoped per API key.
        c.post("/v3/avatars", json=photo("C"), headers={"Idempotency-Key": "abc:2"})
        httpx.post(
            f"{s.base_url}/v3/avatars",
            json=photo("D"),
            headers={"Idempotency-Key": "abc:1", "X-Api-Key": "other"},
        )
        assert len(s.state()["looks"]) == 3


def test_idempotency_replays_errors_but_not_transient_ones() -> None:
    with sim_client(sim.SimConfig(generation_seconds=5, max_jobs=1)) as (s, c):
        bad = c.post("/v3/avatars", json=prompt(prompt=""), headers={"Idempotency-Key": "k1"})
        assert bad.status_code == 400
        # A 400 is final: replayed even though the new body is fine.
        replay = c.post("/v3/avatars", json=prompt(), headers={"Idempotency-Key": "k1"})
        assert replay.status_code == 400
        assert replay.json() == bad.json()
        create(c, photo())
        limited = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "k2"})
        assert limited.status_code == 429
        s.configure(max_jobs=2)
        # A 429 is transient: the retry is carried out.
        assert c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "k2"}).is_success


def test_idempotency_ttl_expiry() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.05, idempotency_ttl=0.2)) as (_, c):
        a = create(c, photo(), **{"Idempotency-Key": "ttl"})
        time.sleep(0.3)
        b = create(c, photo(), **{"Idempotency-Key": "ttl"})
        assert a["avatar_item"]["id"] != b["avatar_item"]["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "a/b", "k;1"])
def test_bad_idempotency_key(key: str) -> None:
    with sim_client() as (s, c):
        r = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": key})
        assert (r.status_code, err(r)["code"]) == (400, "invalid_parameter")
        assert s.state()["looks"] == []


def test_409_while_the_first_request_is_in_progress() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.1, latency_ms=400)) as (s, c):
        results: list[httpx.Response] = []

        def first() -> None:
            with httpx.Client(base_url=s.base_url, headers={"X-Api-Key": KEY}) as own:
                results.append(
                    own.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "slow"})
                )

        t = threading.Thread(target=first)
        t.start()
        time.sleep(0.15)
        second = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "slow"})
        t.join()
        assert second.status_code == 409
        assert err(second)["code"] == "request_in_progress"
        assert results[0].status_code == 200
        # Once the first is answered, the key replays it.
        third = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "slow"})
        assert third.json() == results[0].json()
        assert len(s.state()["looks"]) == 1


def test_429_with_retry_after_and_peak_jobs() -> None:
    with sim_client(sim.SimConfig(generation_seconds=2.5, max_jobs=2)) as (s, c):
        create(c, photo())
        create(c, prompt())
        r = c.post("/v3/avatars", json=photo())
        assert r.status_code == 429
        assert err(r)["code"] == "rate_limit_exceeded"
        assert 1 <= int(r.headers["retry-after"]) <= 3
        assert len(s.state()["looks"]) == 2
        # The limit is per key.
        other = httpx.Client(base_url=s.base_url, headers={"X-Api-Key": "other"})
        assert other.post("/v3/avatars", json=photo()).status_code == 200
        stats = s.stats()
        assert stats["max_jobs_in_flight"] == 2
        assert stats["by_status"]["429"] == 1


def test_slots_free_up_when_jobs_end() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.2, max_jobs=1)) as (_, c):
        look_id = create(c, photo())["avatar_item"]["id"]
        assert c.post("/v3/avatars", json=photo()).status_code == 429
        wait_status(c, look_id, "completed")
        assert c.post("/v3/avatars", json=photo()).status_code == 200


def test_402_when_credits_run_out() -> None:
    with sim_client(sim.SimConfig(credits=2)) as (s, c):
        create(c, photo())
        create(c, prompt())
        r = c.post("/v3/avatars", json=photo())
        assert (r.status_code, err(r)["code"]) == (402, "insufficient_credit")
        assert len(s.state()["looks"]) == 2
        assert s.stats()["credits_remaining"] == 0
        s.configure(credits=1)
        create(c, photo())
        s.reset()
        assert s.stats()["credits_remaining"] == 1


def test_fail_rate_answers_500_and_changes_nothing() -> None:
    with sim_client(sim.SimConfig(fail_rate=1.0, seed=1)) as (s, c):
        for method, path, body in [
            ("POST", "/v3/avatars", photo()),
            ("GET", "/v3/avatars", None),
            ("GET", "/v3/avatars/looks", None),
        ]:
            r = c.request(method, path, json=body, headers={"Idempotency-Key": "f"})
            assert (r.status_code, err(r)["code"]) == (500, "internal_error")
        assert s.state() == {"groups": [], "looks": []}
        s.configure(fail_rate=0.0)
        # The failed request left no idempotency answer behind.
        r = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "f"})
        assert r.status_code == 200


def test_fail_rate_is_reproducible_with_a_seed() -> None:
    def run() -> list[int]:
        with sim_client(sim.SimConfig(fail_rate=0.5, seed=42)) as (_, c):
            return [c.get("/v3/avatars").status_code for _ in range(30)]

    first = run()
    assert first == run()
    assert {200, 500} == set(first)


def test_drop_rate_loses_the_answer_but_the_create_happens() -> None:
    with sim_client(sim.SimConfig(drop_rate=1.0, seed=7)) as (s, c):
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "lost"})
        looks = s.state()["looks"]
        assert len(looks) == 1
        # The retry with the same key replays the stored answer instead of creating again.
        r = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "lost"})
        assert r.status_code == 200
        assert r.json()["data"]["avatar_item"]["id"] == looks[0]["id"]
        assert len(s.state()["looks"]) == 1
        # Reads are never dropped.
        assert c.get("/v3/avatars").status_code == 200
        assert s.stats()["dropped"] == 1


def test_latency_delays_api_answers_only() -> None:
    with sim_client(sim.SimConfig(latency_ms=300)) as (s, c):
        t0 = time.perf_counter()
        c.get("/v3/avatars")
        slow = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.stats()
        fast = time.perf_counter() - t0
        assert slow >= 0.3 > fast


def test_latency_does_not_block_other_requests() -> None:
    with sim_client(sim.SimConfig(latency_ms=300)) as (s, _):
        done: list[float] = []

        def call() -> None:
            with httpx.Client(base_url=s.base_url, headers={"X-Api-Key": KEY}) as own:
                t0 = time.perf_counter()
                own.get("/v3/avatars")
                done.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=call) for _ in range(5)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Five concurrent delayed answers overlap rather than queue (5 x 0.3 s would be 1.5 s).
        assert time.perf_counter() - t0 < 1.2
        assert len(done) == 5


def test_configure_rejects_unknown_or_bad_settings() -> None:
    with sim_client() as (s, _):
        for bad in ({"seed": 3}, {"fail_rate": 2}, {"max_jobs": 0}, {"latency_ms": "x"}):
            r = httpx.post(f"{s.base_url}/_sim/config", json=bad)
            assert r.status_code == 400, bad
        cfg: dict[str, Any] = s.configure(latency_ms=5, auto_consent=1.5)
        assert (cfg["latency_ms"], cfg["auto_consent"]) == (5, 1.5)
        assert s.config()["latency_ms"] == 5


def test_twin_creation_is_not_a_running_job() -> None:
    with sim_client(sim.SimConfig(generation_seconds=5, max_jobs=1)) as (s, c):
        create(c, twin())
        create(c, photo())
        assert c.post("/v3/avatars", json=photo()).status_code == 429
        assert s.stats()["max_jobs_in_flight"] == 1

"""The simulator's direct-upload flow and real generation times, over real HTTP."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from _simhelpers import FAST, create, err, prompt, sim_client, twin

from engine import sim
from engine.cli import main
from engine.errors import UsageError
from engine.sim._uploads import DIRECT_MAX_BYTES

VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(4000)
SHA = hashlib.sha256(VIDEO).hexdigest()


@pytest.fixture
def api() -> Iterator[tuple[sim.RunningSimulator, httpx.Client]]:
    with sim_client() as pair:
        yield pair


def init(c: httpx.Client, data: bytes = VIDEO, **extra: Any) -> dict[str, Any]:
    body = {
        "filename": "clip.mp4",
        "content_type": "video/mp4",
        "size_bytes": len(data),
        "checksum_sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }
    r = c.post("/v3/assets/direct-uploads", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()["data"]
    return answer


def put(ticket: dict[str, Any], data: bytes = VIDEO, **headers: str) -> httpx.Response:
    """PUT like a storage client: the ticket's headers verbatim, no API key."""
    sent = {**ticket["upload_headers"], **headers}
    return httpx.put(ticket["upload_url"], content=data, headers=sent, timeout=10)


def complete(c: httpx.Client, asset_id: str, **body: Any) -> httpx.Response:
    return c.post(f"/v3/assets/{asset_id}/complete", json=body)


def test_init_answers_an_upload_url_on_the_simulator(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, c = api
    ticket = init(c)
    assert set(ticket) == {
        "asset_id",
        "upload_url",
        "upload_headers",
        "expires_in_seconds",
        "max_bytes",
        "status",
    }
    assert ticket["upload_url"].startswith(f"{s.base_url}/_sim/uploads/")
    assert ticket["status"] == "pending_upload"
    assert ticket["max_bytes"] == DIRECT_MAX_BYTES
    assert ticket["expires_in_seconds"] == 3600
    assert ticket["upload_headers"]["Content-Type"] == "video/mp4"
    assert s.assets() == [
        {
            "asset_id": ticket["asset_id"],
            "status": "pending_upload",
            "mime_type": "video/mp4",
            "size_bytes": len(VIDEO),
            "created_at": pytest.approx(time.time(), abs=30),
        }
    ]


@pytest.mark.parametrize(
    ("change", "status", "code", "param"),
    [
        ({"filename": None}, 400, "invalid_parameter", "filename"),
        ({"size_bytes": 0}, 400, "invalid_parameter", "size_bytes"),
        ({"size_bytes": "12"}, 400, "invalid_parameter", "size_bytes"),
        ({"size_bytes": DIRECT_MAX_BYTES + 1}, 413, "payload_too_large", None),
        ({"checksum_sha256": "abc"}, 400, "invalid_parameter", "checksum_sha256"),
        ({"content_type": "text/plain"}, 400, "invalid_parameter", "content_type"),
        ({"extra": 1}, 400, "invalid_parameter", "extra"),
    ],
)
def test_init_refuses_bad_requests(
    api: tuple[sim.RunningSimulator, httpx.Client],
    change: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
) -> None:
    s, c = api
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 10, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = c.post("/v3/assets/direct-uploads", json=body)
    assert r.status_code == status, r.text
    assert err(r)["code"] == code
    assert err(r).get("param") == param
    assert s.assets() == []


def test_put_then_complete_makes_a_usable_asset_and_complete_is_idempotent(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, c = api
    ticket = init(c)
    r = put(ticket)
    assert r.status_code == 200, r.text
    assert "data" not in r.text  # the storage's answer, not the API's envelope
    first = complete(c, ticket["asset_id"], checksum_sha256=SHA)
    again = complete(c, ticket["asset_id"])
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["data"] == {
        "asset_id": ticket["asset_id"],
        "url": f"{s.base_url}/_sim/assets/{ticket['asset_id']}",
        "mime_type": "video/mp4",
        "size_bytes": len(VIDEO),
        "status": "completed",
    }
    body = twin(file={"type": "asset_id", "asset_id": ticket["asset_id"]})
    assert create(c, body)["avatar_item"]["avatar_type"] == "digital_twin"


def test_an_uncompleted_asset_cannot_be_used(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, c = api
    ticket = init(c)
    assert put(ticket).status_code == 200  # uploaded, but never completed
    body = twin(file={"type": "asset_id", "asset_id": ticket["asset_id"]})
    r = c.post("/v3/avatars", json=body)
    assert r.status_code == 400
    assert err(r)["code"] == "asset_not_available"
    assert err(r)["param"] == "file.asset_id"
    assert s.state()["looks"] == []


def test_complete_before_the_bytes_arrive_is_refused(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    ticket = init(c)
    r = complete(c, ticket["asset_id"])
    assert (r.status_code, err(r)["code"]) == (409, "upload_incomplete")
    assert complete(c, "asset_nope").status_code == 404


def test_complete_checks_the_checksum(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    ticket = init(c)
    assert put(ticket).status_code == 200
    r = complete(c, ticket["asset_id"], checksum_sha256="0" * 64)
    assert (r.status_code, err(r)["code"]) == (400, "checksum_mismatch")


@pytest.mark.parametrize(
    ("data", "status", "storage_code"),
    [
        (VIDEO[:-1], 400, "IncompleteBody"),  # one byte short of the signed size
        (VIDEO[:-1] + b"!", 400, "BadDigest"),  # the right size, other bytes
    ],
)
def test_put_checks_the_exact_size_and_the_checksum(
    api: tuple[sim.RunningSimulator, httpx.Client], data: bytes, status: int, storage_code: str
) -> None:
    _, c = api
    ticket = init(c)
    r = put(ticket, data)
    assert r.status_code == status
    assert f"<Code>{storage_code}</Code>" in r.text
    assert (complete(c, ticket["asset_id"]).status_code, put(ticket).status_code) == (409, 200)


def test_put_needs_every_upload_header_verbatim(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    first, second = init(c), init(c)
    token = next(k for k in first["upload_headers"] if k != "Content-Type")
    assert first["upload_headers"][token] != second["upload_headers"][token]  # per init
    stale = put(second, **{token: first["upload_headers"][token]})  # another init's headers
    assert stale.status_code == 403 and token in stale.text
    assert put(second, **{"Content-Type": "video/webm"}).status_code == 403
    assert put(second).status_code == 200


def test_put_refuses_a_tampered_url(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    ticket = init(c)
    parts = urlsplit(ticket["upload_url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["size"] = str(len(VIDEO) - 1)
    forged = {**ticket, "upload_url": parts._replace(query=urlencode(query)).geturl()}
    r = put(forged, VIDEO[:-1])
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text


def test_an_expired_url_refuses_the_put_and_the_asset_shows_expired() -> None:
    config = sim.SimConfig(generation_seconds=FAST, upload_url_ttl=0.2)
    with sim_client(config) as (s, c):
        ticket = init(c)
        assert ticket["expires_in_seconds"] == 1  # whole seconds, rounded up
        time.sleep(0.3)
        r = put(ticket)
        assert r.status_code == 403 and "expired" in r.text
        assert [a["status"] for a in s.assets()] == ["expired"]


def test_init_replays_with_its_idempotency_key(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, c = api
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": len(VIDEO)}
    headers = {"Idempotency-Key": "init-1"}
    first = c.post("/v3/assets/direct-uploads", json=body, headers=headers)
    again = c.post("/v3/assets/direct-uploads", json=body, headers=headers)
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(s.assets()) == 1


def test_the_one_step_upload_keeps_its_32_mb_cap(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    files = {"file": ("big.mp4", VIDEO + bytes(32 * 2**20), "video/mp4")}
    r = c.post("/v3/assets", files=files)
    assert (r.status_code, err(r)["code"]) == (413, "payload_too_large")


# ----- generation times -----


def durations(seed: int) -> list[float]:
    config = sim.SimConfig(
        generation_seconds=0.05, generation_seconds_max=0.8, seed=seed, max_jobs=20
    )
    with sim_client(config) as (s, c):
        for i in range(12):
            create(c, prompt(f"p{i}"))
        fresh = s.state()["looks"]
        assert all(isinstance(look["started_at"], float) for look in fresh)
        deadline = time.monotonic() + 30
        while any(look["finished_at"] is None for look in s.state()["looks"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        looks = s.state()["looks"]
    return [look["finished_at"] - look["started_at"] for look in looks]


def test_a_generation_range_draws_log_uniform_durations_reproducibly() -> None:
    first, second, other = durations(7), durations(7), durations(8)
    assert all(0.05 <= d <= 0.8 for d in first)
    assert len({round(d, 6) for d in first}) == len(first)  # not a constant
    assert first == pytest.approx(second)  # the same seed, the same durations
    assert first != pytest.approx(other)
    # Log-uniform: the geometric middle (0.2 s) splits them roughly in half.
    logs = [math.log(d) for d in durations(9) + first + other]
    below = sum(1 for x in logs if x < math.log(0.2))
    assert 6 <= below <= 30


def test_finished_at_is_null_until_the_look_has_finished() -> None:
    config = sim.SimConfig(generation_seconds=30, auto_consent=None)
    with sim_client(config) as (s, c):
        create(c, prompt())
        create(c, twin())  # waits for consent: not started either
        by_type = {look["avatar_type"]: look for look in s.state()["looks"]}
        assert by_type["studio_avatar"]["started_at"] == pytest.approx(time.time(), abs=30)
        assert by_type["studio_avatar"]["finished_at"] is None
        assert by_type["digital_twin"]["started_at"] is None
        assert by_type["digital_twin"]["finished_at"] is None


def test_a_fixed_generation_time_keeps_its_meaning() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.1)) as (s, c):
        create(c, prompt())
        time.sleep(0.2)
        [look] = s.state()["looks"]
        assert look["finished_at"] - look["started_at"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        ("5-1", "needs 0 < LO <= HI (log-uniform), not '5-1'"),
        ("fast", "takes S or LO-HI"),
        ("0-3", "needs 0 < LO <= HI"),
        ("1-", "takes S or LO-HI"),
    ],
)
def test_the_cli_refuses_a_bad_generation_range(
    value: str, wanted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "--generation-seconds", value]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert wanted in line


def test_a_bad_range_at_runtime_is_refused(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, _ = api
    with pytest.raises(UsageError, match="generation_seconds_max must be at least"):
        s.configure(generation_seconds=5, generation_seconds_max=1)


def test_the_range_can_be_changed_at_runtime(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, _ = api
    config = s.configure(generation_seconds=1, generation_seconds_max=3, upload_url_ttl=5)
    assert (config["generation_seconds_max"], config["upload_url_ttl"]) == (3, 5)

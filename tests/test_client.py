"""Behaviour of engine.client.HeyGenClient against respx-mocked HTTP (never the network)."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from tenacity import stop_after_attempt, wait_none

import engine
from engine.client import (
    ApiErrorInfo,
    AssetInfo,
    GroupInfo,
    HeyGenClient,
    LookInfo,
    RetryPolicy,
    is_transient,
    parse_retry_after,
    wait_retry_after,
)
from engine.errors import ApiError, TransportError

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:9"
KEY = "hg-test-SECRET-key-0123456789"
IDEM = "run1:look.a-1"

LOOK = {
    "id": "look_1",
    "name": "Sarah",
    "avatar_type": "photo_avatar",
    "group_id": "group_1",
    "status": "completed",
    "preview_image_url": "https://cdn.example/look_1.png",
    "image_width": 768,
    "image_height": 1024,
    "supported_api_engines": ["avatar_iv", "avatar_v"],
    "tags": [],
}
GROUP = {
    "id": "group_1",
    "name": "Sarah",
    "looks_count": 1,
    "consent_status": None,
    "created_at": 1717000000,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """Collects the sleeps the retry policy asked for and the on_retry callbacks."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.retries: list[tuple[BaseException, float]] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_retry(self, exc: BaseException, seconds: float) -> None:
        self.retries.append((exc, seconds))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def client(router: respx.Router, rec: Recorder) -> AsyncIterator[HeyGenClient]:
    # The default stop/wait strategies, with the sleep recorded instead of slept.
    async with _client(router, rec, RetryPolicy(sleep=rec.sleep)) as c:
        yield c


def _client(router: respx.Router, rec: Recorder, policy: RetryPolicy) -> HeyGenClient:
    return HeyGenClient(
        BASE,
        KEY,
        retry=policy,
        transport=httpx.MockTransport(router.async_handler),
        on_retry=rec.on_retry,
    )


def ok(data: Any, **top: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": data, **top})


def err(
    status: int, code: str, message: str = "nope", *, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": message}},
        headers={"X-Request-Id": "req_42", **(headers or {})},
    )


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --------------------------------------------------------------------------- success shapes


async def test_create_avatar_sends_headers_and_body(
    client: HeyGenClient, router: respx.Router
) -> None:
    route = router.post(f"{BASE}/v3/avatars").mock(
        return_value=ok({"avatar_item": LOOK, "avatar_group": GROUP})
    )
    body = {"type": "prompt", "name": "Sarah", "prompt": "navy blazer", "avatar_id": "look_0"}

    look, group = await client.create_avatar(body, idempotency_key=IDEM)

    assert look == LookInfo(
        id="look_1",
        name="Sarah",
        avatar_type="photo_avatar",
        group_id="group_1",
        status="completed",
        preview_image_url="https://cdn.example/look_1.png",
        image_width=768,
        image_height=1024,
        supported_api_engines=("avatar_iv", "avatar_v"),
    )
    assert group == GroupInfo(id="group_1", name="Sarah", looks_count=1, created_at=1717000000)
    request = route.calls.last.request
    assert request.headers["X-Api-Key"] == KEY
    assert request.headers["Idempotency-Key"] == IDEM
    assert request.headers["User-Agent"] == f"heygen-looks/{engine.__version__}"
    assert request.headers["Content-Type"] == "application/json"
    assert body_of(request) == body


async def test_upload_asset_is_multipart_file(
    client: HeyGenClient, router: respx.Router, tmp_path: Path
) -> None:
    photo = tmp_path / "face.png"
    photo.write_bytes(b"\x89PNG fake image bytes")
    route = router.post(f"{BASE}/v3/assets").mock(
        return_value=ok(
            {
                "asset_id": "asset_1",
                "url": "https://cdn/a",
                "mime_type": "image/png",
                "size_bytes": 21,
            }
        )
    )

    asset = await client.upload_asset(photo, idempotency_key=IDEM)

    assert asset == AssetInfo("asset_1", "https://cdn/a", "image/png", 21)
    request = route.calls.last.request
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.headers["Idempotency-Key"] == IDEM
    assert request.headers["X-Api-Key"] == KEY
    content = request.content
    assert b'Content-Disposition: form-data; name="file"; filename="face.png"' in content
    assert b"Content-Type: image/png" in content
    assert b"\x89PNG fake image bytes" in content


async def test_upload_asset_explicit_media_type(
    client: HeyGenClient, router: respx.Router, tmp_path: Path
) -> None:
    clip = tmp_path / "twin.bin"
    clip.write_bytes(b"video")
    route = router.post(f"{BASE}/v3/assets").mock(return_value=ok({"asset_id": "asset_2"}))

    asset = await client.upload_asset(clip, idempotency_key=IDEM, media_type="video/mp4")

    assert asset.asset_id == "asset_2"
    assert asset.url is None
    assert b"Content-Type: video/mp4" in route.calls.last.request.content


async def test_start_consent(client: HeyGenClient, router: respx.Router) -> None:
    pending = {**GROUP, "consent_status": "pending"}
    route = router.post(f"{BASE}/v3/avatars/group_1/consent").mock(
        return_value=ok({"avatar_group": pending, "url": "https://heygen.com/consent/abc"})
    )

    group, url = await client.start_consent(
        "group_1", reroute_url="https://example.com/done", idempotency_key=IDEM
    )
    assert (group.consent_status, url) == ("pending", "https://heygen.com/consent/abc")
    assert body_of(route.calls.last.request) == {"reroute_url": "https://example.com/done"}
    assert route.calls.last.request.headers["Idempotency-Key"] == IDEM

    await client.start_consent("group_1", reroute_url=None, idempotency_key=IDEM)
    assert body_of(route.calls.last.request) == {}


async def test_get_rename_delete_look(client: HeyGenClient, router: respx.Router) -> None:
    get = router.get(f"{BASE}/v3/avatars/looks/look_1").mock(return_value=ok(LOOK))
    patch = router.patch(f"{BASE}/v3/avatars/looks/look_1").mock(
        return_value=ok({**LOOK, "name": "Renamed"})
    )
    delete = router.delete(f"{BASE}/v3/avatars/looks/look_1").mock(
        return_value=ok({"id": "look_1"})
    )

    assert (await client.get_look("look_1")).id == "look_1"
    assert (await client.rename_look("look_1", "Renamed")).name == "Renamed"
    await client.delete_look("look_1")

    assert body_of(patch.calls.last.request) == {"name": "Renamed"}
    for route in (get, patch, delete):
        assert route.call_count == 1
        assert route.calls.last.request.headers["X-Api-Key"] == KEY
        assert "Idempotency-Key" not in route.calls.last.request.headers


async def test_get_and_delete_group(client: HeyGenClient, router: respx.Router) -> None:
    router.get(f"{BASE}/v3/avatars/group_1").mock(
        return_value=ok({**GROUP, "status": "completed", "consent_status": "approved"})
    )
    delete = router.delete(f"{BASE}/v3/avatars/group_1").mock(return_value=httpx.Response(204))

    group = await client.get_group("group_1")
    assert (group.status, group.consent_status) == ("completed", "approved")
    await client.delete_group("group_1")
    assert delete.call_count == 1


async def test_ids_are_quoted_as_one_path_segment(
    client: HeyGenClient, router: respx.Router
) -> None:
    route = router.get(f"{BASE}/v3/avatars/looks/..%2Fevil").mock(
        return_value=ok({**LOOK, "id": "../evil"})
    )
    assert (await client.get_look("../evil")).id == "../evil"
    assert route.call_count == 1


async def test_list_looks_follows_next_token_over_three_pages(
    client: HeyGenClient, router: respx.Router
) -> None:
    pages = {
        None: ok([{**LOOK, "id": "a"}, {**LOOK, "id": "b"}], has_more=True, next_token="t2"),
        "t2": ok([{**LOOK, "id": "c"}], has_more=True, next_token="t3"),
        "t3": ok([{**LOOK, "id": "d"}], has_more=False, next_token=None),
    }

    def page(request: httpx.Request) -> httpx.Response:
        return pages[request.url.params.get("token")]

    route = router.get(f"{BASE}/v3/avatars/looks").mock(side_effect=page)

    looks = await client.list_looks(group_id="group_1", avatar_type="photo_avatar", page_size=2)

    assert [look.id for look in looks] == ["a", "b", "c", "d"]
    sent = [dict(call.request.url.params) for call in route.calls]
    base = {"group_id": "group_1", "avatar_type": "photo_avatar", "limit": "2"}
    assert sent == [base, {**base, "token": "t2"}, {**base, "token": "t3"}]


async def test_list_groups_paginates_without_filters(
    client: HeyGenClient, router: respx.Router
) -> None:
    route = router.get(f"{BASE}/v3/avatars").mock(
        side_effect=[
            ok([GROUP], has_more=True, next_token="n1"),
            ok([{**GROUP, "id": "group_2"}], has_more=False, next_token=None),
        ]
    )
    groups = await client.list_groups()
    assert [g.id for g in groups] == ["group_1", "group_2"]
    assert dict(route.calls[0].request.url.params) == {"limit": "50"}
    assert dict(route.calls[1].request.url.params) == {"limit": "50", "token": "n1"}


async def test_repeated_next_token_is_an_error_not_a_loop(
    client: HeyGenClient, router: respx.Router
) -> None:
    router.get(f"{BASE}/v3/avatars").mock(return_value=ok([GROUP], has_more=True, next_token="x"))
    with pytest.raises(ApiError, match="next_token repeated"):
        await client.list_groups()


async def test_page_size_out_of_range(client: HeyGenClient) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await client.list_looks(page_size=51)


async def test_malformed_success_answer_is_api_error(
    client: HeyGenClient, router: respx.Router
) -> None:
    router.get(f"{BASE}/v3/avatars/looks/look_1").mock(return_value=ok({"name": "no id"}))
    with pytest.raises(ApiError) as info:
        await client.get_look("look_1")
    assert info.value.code == "invalid_response"


# --------------------------------------------------------------------------- errors


async def test_error_envelope_upper_case_code_is_normalised(
    client: HeyGenClient, router: respx.Router
) -> None:
    route = router.post(f"{BASE}/v3/avatars").mock(
        return_value=err(404, "AVATAR_NOT_FOUND", "avatar_id look_x was not found")
    )
    with pytest.raises(ApiError) as info:
        await client.create_avatar({"type": "prompt"}, idempotency_key=IDEM)
    exc = info.value
    assert (exc.status, exc.code, exc.message) == (404, "avatar_not_found", exc.message)
    assert "look_x was not found" in exc.message
    assert exc.request_id == "req_42"
    assert exc.retry_after is None
    assert route.call_count == 1


async def test_error_param_is_kept_in_message(client: HeyGenClient, router: respx.Router) -> None:
    router.post(f"{BASE}/v3/avatars").mock(
        return_value=httpx.Response(
            400,
            json={"error": {"code": "INVALID_PARAMETER", "message": "too long", "param": "prompt"}},
        )
    )
    with pytest.raises(ApiError) as info:
        await client.create_avatar({"type": "prompt"}, idempotency_key=IDEM)
    assert info.value.code == "invalid_parameter"
    assert "prompt" in info.value.message


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_parameter"),
        (401, "unauthorized"),
        (402, "insufficient_credit"),
        (403, "forbidden"),
        (404, "not_found"),
        (409, "conflict"),
        (413, "payload_too_large"),
    ],
)
async def test_client_errors_are_not_retried(
    client: HeyGenClient, router: respx.Router, rec: Recorder, status: int, code: str
) -> None:
    route = router.post(f"{BASE}/v3/avatars").mock(return_value=err(status, code))
    with pytest.raises(ApiError) as info:
        await client.create_avatar({"type": "photo"}, idempotency_key=IDEM)
    assert (info.value.status, info.value.code) == (status, code)
    assert route.call_count == 1
    assert rec.retries == []


async def test_non_json_error_body(client: HeyGenClient, router: respx.Router) -> None:
    router.get(f"{BASE}/v3/avatars/group_1").mock(
        return_value=httpx.Response(400, text="<html>Bad gateway config</html>")
    )
    with pytest.raises(ApiError) as info:
        await client.get_group("group_1")
    assert info.value.code == "http_400"
    assert "Bad Request" in info.value.message
    assert "Bad gateway config" in info.value.message


async def test_api_key_never_in_errors_or_repr(client: HeyGenClient, router: respx.Router) -> None:
    router.get(f"{BASE}/v3/avatars/looks/look_1").mock(
        return_value=err(401, "unauthorized", f"API key {KEY} is not valid")
    )
    router.get(f"{BASE}/v3/avatars/looks/look_2").mock(side_effect=httpx.ConnectError(KEY))

    with pytest.raises(ApiError) as api:
        await client.get_look("look_1")
    with pytest.raises(TransportError) as transport:
        await client.get_look("look_2")

    for text in (str(api.value), api.value.message, repr(api.value), str(transport.value)):
        assert KEY not in text
    assert KEY not in repr(client)
    assert "***" in api.value.message


def test_bad_api_key_message_does_not_echo_it() -> None:
    with pytest.raises(ValueError) as info:
        HeyGenClient(BASE, "secret with space")
    assert "secret" not in str(info.value)


# --------------------------------------------------------------------------- retries


async def test_429_honours_retry_after_then_succeeds(
    client: HeyGenClient, router: respx.Router, rec: Recorder
) -> None:
    route = router.post(f"{BASE}/v3/avatars").mock(
        side_effect=[
            err(429, "rate_limit_exceeded", headers={"Retry-After": "7"}),
            ok({"avatar_item": LOOK, "avatar_group": GROUP}),
        ]
    )
    look, _ = await client.create_avatar({"type": "photo"}, idempotency_key=IDEM)

    assert look.id == "look_1"
    assert route.call_count == 2
    assert rec.sleeps == [7.0]
    [(exc, seconds)] = rec.retries
    assert isinstance(exc, ApiError) and exc.status == 429 and exc.retry_after == 7.0
    assert seconds == 7.0
    # The replay carries the same idempotency key, which is what makes it safe.
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {IDEM}


async def test_retry_after_past_the_deadline_gives_up_at_once(
    client: HeyGenClient, router: respx.Router, rec: Recorder
) -> None:
    route = router.get(f"{BASE}/v3/avatars/looks/look_1").mock(
        return_value=err(429, "rate_limit_exceeded", headers={"Retry-After": "900"})
    )
    with pytest.raises(ApiError) as info:
        await client.get_look("look_1")
    assert info.value.retry_after == 900.0
    assert route.call_count == 1
    assert rec.sleeps == []


async def test_5xx_retried_with_backoff_then_succeeds(
    client: HeyGenClient, router: respx.Router, rec: Recorder
) -> None:
    route = router.get(f"{BASE}/v3/avatars/looks/look_1").mock(
        side_effect=[
            err(500, "internal_error"),
            httpx.Response(503, text="upstream down"),
            ok(LOOK),
        ]
    )
    assert (await client.get_look("look_1")).id == "look_1"
    assert route.call_count == 3
    assert [type(e) for e, _ in rec.retries] == [ApiError, ApiError]
    assert [e.code for e, _ in rec.retries if isinstance(e, ApiError)] == [
        "internal_error",
        "http_503",
    ]
    # wait_exponential_jitter(initial=0.5, max=30): base 0.5 then 1.0, plus up to 1 s jitter.
    assert 0.5 <= rec.sleeps[0] <= 1.5
    assert 1.0 <= rec.sleeps[1] <= 2.0
    assert rec.sleeps == [s for _, s in rec.retries]


async def test_409_request_in_progress_retried_after_short_wait(
    client: HeyGenClient, router: respx.Router, rec: Recorder, tmp_path: Path
) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"jpeg")
    route = router.post(f"{BASE}/v3/assets").mock(
        side_effect=[
            err(409, "request_in_progress"),
            err(409, "REQUEST_IN_PROGRESS"),
            ok({"asset_id": "asset_1"}),
        ]
    )
    assert (await client.upload_asset(photo, idempotency_key=IDEM)).asset_id == "asset_1"
    assert route.call_count == 3
    assert all(0.2 <= s <= 1.0 for s in rec.sleeps) and len(rec.sleeps) == 2
    # Every attempt re-sends the whole file under the same key.
    assert all(b"jpeg" in c.request.content for c in route.calls)
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {IDEM}


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("Connection refused"),
        httpx.ReadTimeout("timed out"),
    ],
)
async def test_transport_error_retried_then_succeeds(
    client: HeyGenClient, router: respx.Router, rec: Recorder, failure: Exception
) -> None:
    route = router.post(f"{BASE}/v3/avatars").mock(
        side_effect=[failure, ok({"avatar_item": LOOK, "avatar_group": GROUP})]
    )
    look, group = await client.create_avatar({"type": "photo"}, idempotency_key=IDEM)
    assert (look.id, group.id) == ("look_1", "group_1")
    assert route.call_count == 2
    [(exc, _)] = rec.retries
    assert isinstance(exc, TransportError)


async def test_transport_error_exhausted_raises_transport_error(
    client: HeyGenClient, router: respx.Router, rec: Recorder
) -> None:
    route = router.get(f"{BASE}/v3/avatars/looks/look_1").mock(
        side_effect=httpx.RemoteProtocolError("Server disconnected without sending a response.")
    )
    with pytest.raises(TransportError) as info:
        await client.get_look("look_1")
    message = str(info.value)
    assert f"GET {BASE}/v3/avatars/looks/look_1" in message  # the full URL: which API
    assert "Server disconnected" in message
    assert route.call_count == 8  # the default stop_after_attempt(8)
    assert len(rec.retries) == 7


async def test_injected_policy_is_used(router: respx.Router, rec: Recorder) -> None:
    policy = RetryPolicy(stop=stop_after_attempt(2), wait=wait_none(), sleep=rec.sleep)
    route = router.delete(f"{BASE}/v3/avatars/group_1").mock(return_value=err(502, "bad_gateway"))
    async with _client(router, rec, policy) as c:
        with pytest.raises(ApiError) as info:
            await c.delete_group("group_1")
    assert info.value.status == 502
    assert route.call_count == 2
    assert rec.sleeps == [0.0]


async def test_post_without_idempotency_key_is_not_retried(
    client: HeyGenClient, router: respx.Router
) -> None:
    # No public method posts without a key; this guards the internal rule itself.
    route = router.post(f"{BASE}/v3/avatars").mock(return_value=err(503, "internal_error"))
    with pytest.raises(ApiError):
        await client._call("POST", "/v3/avatars", json={})
    assert route.call_count == 1


async def test_invalid_idempotency_key_rejected_before_sending(
    client: HeyGenClient, router: respx.Router
) -> None:
    route = router.post(f"{BASE}/v3/avatars").mock(return_value=ok({}))
    with pytest.raises(ValueError, match="idempotency key"):
        await client.create_avatar({"type": "photo"}, idempotency_key="has space")
    assert route.call_count == 0


# --------------------------------------------------------------------------- fetch_bytes


async def test_fetch_bytes_sends_no_api_key(client: HeyGenClient, router: respx.Router) -> None:
    route = router.get("https://cdn.example/look_1.png").mock(
        return_value=httpx.Response(200, content=b"\x89PNG")
    )
    assert await client.fetch_bytes("https://cdn.example/look_1.png") == b"\x89PNG"
    request = route.calls.last.request
    assert "X-Api-Key" not in request.headers
    assert request.headers["User-Agent"].startswith("heygen-looks/")


async def test_fetch_bytes_error_hides_signed_query(
    client: HeyGenClient, router: respx.Router
) -> None:
    router.get("https://cdn.example/x.png").mock(
        return_value=httpx.Response(403, text="<Error>AccessDenied</Error>")
    )
    with pytest.raises(ApiError) as info:
        await client.fetch_bytes("https://cdn.example/x.png?Signature=abc")
    assert info.value.code == "http_403"
    assert "Signature" not in str(info.value)


# --------------------------------------------------------------------------- helpers


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("0") == 0.0
    future = email.utils.formatdate(time.time() + 120, usegmt=True)
    seconds = parse_retry_after(future)
    assert seconds is not None and 100 <= seconds <= 121
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    for bad in (None, "", "soon", "-5", "nan", "inf"):
        assert parse_retry_after(bad) is None


@pytest.mark.parametrize(
    ("changes", "usable"),
    [
        ({}, True),
        ({"status": "processing"}, False),
        ({"status": "failed", "error": {"code": "X", "message": "y"}}, False),
        ({"preview_image_url": None}, False),
        ({"preview_image_url": ""}, False),
        ({"image_width": 0}, False),
        ({"image_height": None}, False),
    ],
)
def test_look_usable(changes: dict[str, Any], usable: bool) -> None:
    assert LookInfo.from_api({**LOOK, **changes}).usable is usable


def test_look_from_api_minimal_and_error() -> None:
    look = LookInfo.from_api(
        {
            "id": "l",
            "name": "n",
            "avatar_type": "studio_avatar",
            "status": "failed",
            "error": {"code": "MODERATION_REJECTED", "message": "no"},
        }
    )
    assert look.error == ApiErrorInfo("moderation_rejected", "no")
    assert (look.group_id, look.image_width, look.supported_api_engines) == (None, None, ())
    with pytest.raises(ValueError, match="'id'"):
        LookInfo.from_api({"name": "n"})


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ApiError(429, "rate_limit_exceeded", "m"), True),
        (ApiError(500, "internal_error", "m"), True),
        (ApiError(504, "http_504", "m"), True),
        (ApiError(409, "request_in_progress", "m"), True),
        (ApiError(409, "conflict", "m"), False),
        (ApiError(400, "invalid_parameter", "m"), False),
        (ApiError(402, "insufficient_credit", "m"), False),
        (TransportError("x"), True),
        (ValueError("x"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


async def test_wait_retry_after_falls_back_without_header(
    router: respx.Router, rec: Recorder
) -> None:
    policy = RetryPolicy(
        stop=stop_after_attempt(3), wait=wait_retry_after(_const(4.0)), sleep=rec.sleep
    )
    router.get(f"{BASE}/v3/avatars/group_1").mock(
        side_effect=[
            err(429, "rate_limit_exceeded"),
            err(503, "internal_error", headers={"Retry-After": "2"}),
            ok(GROUP),
        ]
    )
    async with _client(router, rec, policy) as c:
        assert (await c.get_group("group_1")).id == "group_1"
    assert rec.sleeps == [4.0, 2.0]


def _const(seconds: float) -> Callable[[Any], float]:
    return lambda _state: seconds

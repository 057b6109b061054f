"""Answers built to exhaust memory: a gzip bomb, a chunked body that never ends.

Real sockets on 127.0.0.1. The client must stop reading past MAX_ANSWER_BYTES of *decoded*
content (a few MB on the wire can inflate to gigabytes) and treat it as a failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
from _fakeservers import FakeServer, Request, groups_listing, respond
from conftest import ROOT
from tenacity import stop_after_attempt, wait_none

from looks.client import MAX_ANSWER_BYTES, HeyGenClient, RetryPolicy, parse_retry_after
from looks.errors import ApiError, LooksError, TransportError
from looks.settings import ApiSettings

KEY = "sk-hostile-answer-key-0123456789"


def _one_try() -> RetryPolicy:
    return RetryPolicy(stop=stop_after_attempt(1), wait=wait_none())


def _gzip_zeros_block() -> tuple[bytes, bytes]:
    """A gzip header and a deflate block of 1 MiB of zeros that may be repeated at will.

    After a full flush the compressor starts afresh, so the same input compresses to the
    same bytes: repeating the block inflates to as many MiB of zeros as one likes.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(b"\0" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(b"\0" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    header = first[: len(first) - len(block)]
    assert header + block == first
    return header, block


def gzip_bomb(server: FakeServer, mebibytes: int) -> object:
    header, block = _gzip_zeros_block()

    def handler(request: Request, conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        payload = header + block * mebibytes
        for start in range(0, len(payload), 1 << 16):
            piece = payload[start : start + (1 << 16)]
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            if server.stopping.is_set():
                return
        conn.sendall(b"0\r\n\r\n")

    return handler


def endless_chunks(server: FakeServer) -> object:
    def handler(request: Request, conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b" " * (1 << 20)
        while server.sleep(0.005):  # about 200 MB/s, for ever
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")

    return handler


def _get_look(base_url: str, request_timeout: float) -> None:
    async def run() -> None:
        async with HeyGenClient(
            base_url, KEY, retry=_one_try(), request_timeout=request_timeout
        ) as client:
            await client.get_look("look_1")

    asyncio.run(run())


def test_a_gzip_bomb_is_cut_off_not_inflated() -> None:
    # 4 * MAX_ANSWER_BYTES of zeros from well under a megabyte on the wire.
    server = FakeServer(lambda r, c: None)
    server.handler = gzip_bomb(server, 4 * MAX_ANSWER_BYTES >> 20)  # type: ignore[assignment]
    with server, pytest.raises(TransportError) as caught:
        _get_look(server.base_url, request_timeout=60)
    message = str(caught.value)
    assert "larger than" in message and "/v3/avatars/looks/look_1" in message
    assert KEY not in message


def test_a_chunked_body_that_never_ends_is_cut_off_before_the_deadline() -> None:
    server = FakeServer(lambda r, c: None)
    server.handler = endless_chunks(server)  # type: ignore[assignment]
    # The deadline (120 s) would let it pile up gigabytes; the size cap stops it first.
    with server, pytest.raises(TransportError) as caught:
        _get_look(server.base_url, request_timeout=120)
    assert "larger than" in str(caught.value)


# --------------------------------------------------------------------------- Retry-After


def _apply_against(tmp_path: Path, server: FakeServer) -> subprocess.CompletedProcess[str]:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(
        "version: 1\navatars:\n  ava:\n    name: Ava\n"
        "    base: {type: prompt, prompt: A person in a studio}\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEYGEN_BASE_URL": server.base_url,
        "HEYGEN_API_KEY": KEY,
    }
    try:
        return subprocess.run(
            [sys.executable, "-m", "looks.cli", "apply", str(recipe)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,  # generous: the bug was a sleep of 11 days
        )
    except subprocess.TimeoutExpired:
        pytest.fail("apply slept on a Retry-After far in the future")


@pytest.mark.parametrize("retry_after", ["999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_429_asking_for_an_absurd_wait_does_not_hang_apply(
    tmp_path: Path, retry_after: str
) -> None:
    def handler(request: Request, conn: socket.socket) -> None:
        if request.method == "POST":
            error = {"code": "rate_limit_exceeded", "message": "slow down"}
            respond(conn, 429, {"error": error}, headers={"Retry-After": retry_after})
        else:
            groups_listing(conn)

    with FakeServer(handler) as server:
        result = _apply_against(tmp_path, server)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "429" in result.stdout + result.stderr or "rate" in result.stdout + result.stderr
    assert len(server.posts()) >= 1


@pytest.mark.parametrize("garbage", ["-5", "soon", "1e400", "nan", "Fri, 31 Dec 9999 25:99:99"])
def test_a_garbage_retry_after_is_ignored(garbage: str) -> None:
    # Ignored means the usual backoff applies (a 429 storm then waits up to --timeout).
    assert parse_retry_after(garbage) is None


# --------------------------------------------------------------------------- poll storms


def _look(n: int, status: str) -> dict[str, object]:
    return {
        "id": f"look_{n}",
        "name": f"P{n}",
        "avatar_type": "prompt",
        "group_id": f"group_{n}",
        "status": status,
        "preview_image_url": "https://cdn.example/p.png",
        "image_width": 512,
        "image_height": 512,
    }


@pytest.mark.parametrize("answer", ["refused", "without-the-look"])
def test_listings_that_never_show_a_look_are_polled_with_back_off(
    tmp_path: Path, answer: str
) -> None:
    # p1 completes at once (the poller learns a duration of a few ms); p2's listings then
    # are refused (a 404: not retried) or leave it out. Either way nothing is learnt by
    # polling again at once, yet, paced by the idle p2 might be causing since it was last
    # seen, its group was listed at every poll_min (some 270 listings in 3 s).
    recipe = tmp_path / "two.yaml"
    recipe.write_text(
        "version: 1\navatars:\n"
        + "".join(
            f"  p{i}:\n    name: P{i}\n    base: {{type: prompt, prompt: P {i}}}\n" for i in (1, 2)
        )
    )
    created = iter(range(1, 10))

    def handler(request: Request, conn: socket.socket) -> None:
        if request.method == "POST":
            n = next(created)
            group = {"id": f"group_{n}", "name": f"P{n}"}
            respond(
                conn, 200, {"data": {"avatar_item": _look(n, "processing"), "avatar_group": group}}
            )
        elif request.path.startswith("/v3/avatars/looks?") and "group_1" in request.path:
            respond(conn, 200, {"data": [_look(1, "completed")], "has_more": False})
        elif request.path.startswith("/v3/avatars/looks?") and answer == "refused":
            respond(conn, 404, {"error": {"code": "not_found", "message": "no such group"}})
        elif request.path.startswith("/v3/avatars/looks?"):
            respond(conn, 200, {"data": [], "has_more": False})
        else:
            groups_listing(conn)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEYGEN_API_KEY": KEY}
    with FakeServer(handler) as server:
        env["HEYGEN_BASE_URL"] = server.base_url
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "looks.cli",
                "apply",
                "--max-jobs",
                "1",
                "--timeout",
                "0.05",
                str(recipe),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "p2" in result.stdout and "Traceback" not in result.stderr
    listings = [r for r in server.requests if "group_2" in r.path and "/looks?" in r.path]
    # Back-off from 10 ms to the 3 s timeout, by 30 % a step: some 20 listings.
    assert 3 <= len(listings) < 60, len(listings)


# --------------------------------------------------------------------------- redirects


def test_the_key_never_follows_a_redirect_to_another_host_or_port() -> None:
    thief = FakeServer(lambda r, c: respond(c, 200, {"data": []}))

    def redirect(request: Request, conn: socket.socket) -> None:
        where = f"{thief.base_url}/v3/avatars/looks/look_1?k={KEY}"
        respond(conn, 302, "", headers={"Location": where}, content_type="text/plain")

    async def run(base_url: str) -> str:
        async with HeyGenClient(base_url, KEY, retry=_one_try()) as client:
            with pytest.raises(ApiError) as caught:
                await client.get_look("look_1")
            return str(caught.value)

    with thief, FakeServer(redirect) as server:
        message = asyncio.run(run(server.base_url))
        assert "302" in message
        assert KEY not in message
        # A preview link (no key sent) may follow it; an API call never does.
        fetched = asyncio.run(_fetch(server.base_url))
    assert fetched
    assert all(KEY not in str(r.headers) for r in thief.requests)
    assert [r.path for r in thief.requests] == [f"/v3/avatars/looks/look_1?k={KEY}"]


async def _fetch(base_url: str) -> bytes:
    async with HeyGenClient(base_url, KEY, retry=_one_try()) as client:
        return await client.fetch_bytes(f"{base_url}/preview.png")


# --------------------------------------------------------------------------- revoked key


def test_a_key_revoked_mid_run_stops_submitting(tmp_path: Path) -> None:
    recipe = tmp_path / "team.yaml"
    recipe.write_text(
        "version: 1\navatars:\n"
        + "".join(
            f"  p{i}:\n    name: P{i}\n    base: {{type: prompt, prompt: Person {i}}}\n"
            for i in range(5)
        )
    )

    def handler(request: Request, conn: socket.socket) -> None:
        if request.method == "POST":  # the preflight passed; then the key was revoked
            error = {"code": "unauthorized", "message": "invalid api key"}
            respond(conn, 401, {"error": error})
        else:
            groups_listing(conn)

    with FakeServer(handler) as server:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HEYGEN_BASE_URL": server.base_url,
            "HEYGEN_API_KEY": KEY,
        }
        result = subprocess.run(
            [sys.executable, "-m", "looks.cli", "apply", "--max-jobs", "1", str(recipe)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1, result.stderr
    assert len(server.posts()) == 1  # not one refused request per look
    assert "HEYGEN_API_KEY" in result.stdout
    assert "4 not started" in result.stdout


# --------------------------------------------------------------------------- TLS, IPv6


def test_https_to_a_plain_http_server_says_what_failed() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_in_plain_http() -> None:
        with contextlib.suppress(OSError):
            for _ in range(20):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(4096)  # the TLS ClientHello
                    # and nothing more: a plain server that cannot parse it hangs up

    threading.Thread(target=answer_in_plain_http, daemon=True).start()

    async def run() -> str:
        async with HeyGenClient(f"https://127.0.0.1:{port}", KEY, retry=_one_try()) as client:
            with pytest.raises(LooksError) as caught:
                await client.preflight()
            return str(caught.value)

    try:
        message = asyncio.run(run())
    finally:
        listener.close()
    assert f"127.0.0.1:{port}" in message
    assert "no details" not in message
    assert "SSL" in message or "TLS" in message


def test_an_ipv6_base_url_is_named_with_brackets() -> None:
    settings = ApiSettings(base_url="http://[::1]:8080", api_key=KEY)
    assert settings.host_port == "[::1]:8080"


def test_an_unreachable_ipv6_api_is_named_with_brackets() -> None:
    with socket.socket(socket.AF_INET6) as probe:  # a free port on [::1], then closed
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        port = probe.getsockname()[1]

    async def run() -> str:
        async with HeyGenClient(f"http://[::1]:{port}", KEY, retry=_one_try()) as client:
            with pytest.raises(TransportError) as caught:
                await client.preflight()
            return str(caught.value)

    assert f"cannot reach the API at [::1]:{port}" in asyncio.run(run())


# --------------------------------------------------------------------------- stuck upload


def test_an_upload_the_server_never_reads_ends_at_its_deadline(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    held: list[socket.socket] = []

    def read_headers_only() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                conn, _ = listener.accept()
                conn.recv(1024)  # the start of the request, then never another byte
                held.append(conn)

    threading.Thread(target=read_headers_only, daemon=True).start()
    photo = tmp_path / "big.png"
    photo.write_bytes(os.urandom(8 << 20))  # far more than the socket buffers hold

    async def run() -> str:
        async with HeyGenClient(
            f"http://127.0.0.1:{port}", KEY, retry=_one_try(), request_timeout=1
        ) as client:
            with pytest.raises(TransportError) as caught:
                await client.upload_asset(photo, idempotency_key="upload-1")
            return str(caught.value)

    try:
        message = asyncio.run(asyncio.wait_for(run(), timeout=600))
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()
    # Whichever comes first: httpx's write timeout (no byte taken for 30 s) or the deadline.
    assert "/v3/assets" in message
    assert "WriteTimeout" in message or "no complete answer within" in message
    assert "cancel scope" not in message  # the plumbing of the timeout is no explanation

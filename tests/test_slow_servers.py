"""Servers that never finish answering, close mid-answer, or cannot be reached at all.

Real sockets on 127.0.0.1; the request deadline is shortened with LOOKS_REQUEST_TIMEOUT (or
the client's parameter) so each test runs in seconds, and the default is pinned separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _fakeservers import (
    FakeServer,
    Request,
    body_a_byte_at_a_time,
    closes_mid_body,
    groups_listing,
    headers_a_second,
    respond,
    silent,
)
from conftest import ROOT
from tenacity import stop_after_attempt, wait_none

from engine.client import (
    PREFLIGHT_BUDGET,
    UPLOAD_BYTES_PER_SECOND,
    HeyGenClient,
    RetryPolicy,
    SilenceWatch,
)
from engine.errors import ApiStalledError, TransportError
from engine.manifest import manifest_path_for
from engine.settings import DEFAULT_REQUEST_TIMEOUT, api_settings

KEY = "sk-slow-test-key-0123456789"
PROMPT_RECIPE = """version: 1
avatars:
  ava:
    name: Ava
    base: {type: prompt, prompt: A person in a studio}
"""


def _few_retries() -> RetryPolicy:
    return RetryPolicy(stop=stop_after_attempt(3), wait=wait_none())


def _looks(
    *args: str | Path, base_url: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEYGEN_BASE_URL": base_url,
        "HEYGEN_API_KEY": KEY,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *map(str, args)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line_error(err: str) -> str:
    """The error of a failed command: after the target line, exactly one line, no traceback."""
    lines = err.splitlines()
    assert lines[0].startswith("looks: calling "), err
    assert len(lines) == 2 and "Traceback" not in err, err
    return lines[1]


# -- the deadline itself --------------------------------------------------------------------


def test_default_request_deadline_is_60_seconds_and_uploads_get_more() -> None:
    assert DEFAULT_REQUEST_TIMEOUT == 60.0
    settings = api_settings({"HEYGEN_API_KEY": KEY})
    assert settings.request_timeout == 60.0
    client = HeyGenClient("http://127.0.0.1:9", KEY)
    assert client.request_timeout == 60.0
    assert client.deadline_for(0) == 60.0
    # 32 MB (the API's upload ceiling) gets 60 s + 32 MiB at 64 KiB/s.
    assert client.deadline_for(32 * 1024 * 1024) == 60.0 + 32 * 1024 * 1024 / (64 * 1024)
    assert UPLOAD_BYTES_PER_SECOND == 64 * 1024
    assert (
        api_settings({"HEYGEN_API_KEY": KEY, "LOOKS_REQUEST_TIMEOUT": "2.5"}).request_timeout == 2.5
    )
    asyncio.run(client.aclose())


def test_silence_counts_only_while_the_api_is_asked() -> None:
    now = [1000.0]
    watch = SilenceWatch(clock=lambda: now[0])
    assert watch.seconds() == 0.0  # never asked: not silent
    now[0] += 3600  # an hour idle (reading files, say) is not the API being silent
    watch.asking()
    now[0] += 5
    watch.asking()  # a second request meanwhile does not restart the count
    watch.done(answered=False)  # a failure: the silence goes on
    assert watch.seconds() == 5
    watch.done(answered=True)  # an answer ends it
    assert watch.seconds() == 0.0
    watch.asking()
    watch.asking()
    now[0] += 2
    watch.done(answered=True)
    now[0] += 3
    assert watch.seconds() == 3  # the other request waits, since the answer
    watch.done(answered=True)
    assert watch.seconds() == 0.0


@pytest.mark.parametrize(
    "make_handler",
    [headers_a_second, body_a_byte_at_a_time, silent],
    ids=["a-header-a-second", "a-body-byte-at-a-time", "silent"],
)
def test_a_trickling_answer_is_a_transport_failure_retried_with_the_same_key(
    make_handler: Callable[[FakeServer], Callable[[Request, socket.socket], None]],
) -> None:
    server = FakeServer(lambda r, c: None)
    server.handler = make_handler(server)

    async def go() -> None:
        async with HeyGenClient(
            server.base_url, KEY, retry=_few_retries(), request_timeout=0.5, stall_after=3600
        ) as client:
            await client.create_avatar({"type": "prompt"}, idempotency_key="looks:k:1")

    with server, pytest.raises(TransportError) as info:
        asyncio.run(asyncio.wait_for(go(), 60))  # bounded: without the deadline it hangs
    assert not isinstance(info.value, ApiStalledError)
    assert f"POST {server.base_url}/v3/avatars: no complete answer within 0.5 s" in str(info.value)
    keys = [r.headers.get("idempotency-key") for r in server.posts()]
    assert keys == ["looks:k:1"] * 3  # every attempt replays the same key


def test_a_connection_closed_mid_body_is_retried_then_reported() -> None:
    async def go() -> None:
        async with HeyGenClient(server.base_url, KEY, retry=_few_retries()) as client:
            await client.create_avatar({"type": "prompt"}, idempotency_key="looks:k:2")

    with FakeServer(closes_mid_body) as server, pytest.raises(TransportError) as info:
        asyncio.run(asyncio.wait_for(go(), 60))
    assert f"POST {server.base_url}/v3/avatars" in str(info.value)
    assert [r.headers.get("idempotency-key") for r in server.posts()] == ["looks:k:2"] * 3


# -- apply against a server that never answers ------------------------------------------------


@pytest.mark.parametrize("make_handler", [headers_a_second, body_a_byte_at_a_time])
def test_apply_gives_up_on_an_api_that_never_answers(
    tmp_path: Path,
    make_handler: Callable[[FakeServer], Callable[[Request, socket.socket], None]],
) -> None:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(PROMPT_RECIPE)
    server = FakeServer(lambda r, c: None)
    server.handler = make_handler(server)
    with server:
        # 3 deadlines of 0.5 s without an answer: the stall (default: 3 x 60 s = 3 minutes).
        result = _looks("apply", recipe, base_url=server.base_url, LOOKS_REQUEST_TIMEOUT="0.5")
    assert result.returncode == 1
    line = _one_line_error(result.stderr)
    assert line.startswith(f"looks: GET {server.base_url}/v3/avatars: no complete answer")
    assert "giving up" in line
    assert not server.posts()  # the preflight never got through: nothing was created
    assert KEY not in result.stdout + result.stderr


def test_an_api_that_stalls_mid_run_stops_the_run_and_keeps_the_key(tmp_path: Path) -> None:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(PROMPT_RECIPE)
    server = FakeServer(lambda r, c: None)
    slow = headers_a_second(server, 0.2)

    def handler(request: Request, conn: socket.socket) -> None:
        if request.method == "GET" and request.path.startswith("/v3/avatars?"):
            groups_listing(conn)  # the preflight passes
        else:
            slow(request, conn)

    server.handler = handler
    with server:
        result = _looks(
            "apply", "--log-json", recipe, base_url=server.base_url, LOOKS_REQUEST_TIMEOUT="0.5"
        )
    assert result.returncode == 1, result.stderr
    keys = {r.headers.get("idempotency-key") for r in server.posts()}
    assert len(server.posts()) >= 2 and len(keys) == 1  # retried, always with the same key
    record = json.loads(manifest_path_for(recipe).read_text())["nodes"]["ava"]
    assert record["status"] == "submitted"  # outcome unknown: the next run replays the key
    assert record["idempotency_key"] in keys
    events = [json.loads(line) for line in result.stdout.splitlines()]  # stdout: JSON only
    failed = next(e for e in events if e["event"] == "failed")
    assert f"POST {server.base_url}/v3/avatars" in failed["message"]
    assert "giving up" in failed["message"]
    assert "The API stopped answering" in events[-1]["message"]


def test_an_api_that_stalls_while_looks_generate_stops_the_run_and_keeps_them(
    tmp_path: Path,
) -> None:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(PROMPT_RECIPE)
    server = FakeServer(lambda r, c: None)
    slow = body_a_byte_at_a_time(server, 0.2)

    def handler(request: Request, conn: socket.socket) -> None:
        if request.method == "POST":
            look = {"id": "look_1", "name": "Ava", "group_id": "group_1", "status": "processing"}
            answer = {"avatar_item": look, "avatar_group": {"id": "group_1", "name": "Ava"}}
            respond(conn, 200, {"data": answer})
        elif request.path.startswith("/v3/avatars?"):
            groups_listing(conn)
        else:
            slow(request, conn)  # the listings that watch the generation never finish

    server.handler = handler
    with server:
        result = _looks("apply", recipe, base_url=server.base_url, LOOKS_REQUEST_TIMEOUT="0.5")
    assert result.returncode == 1, result.stderr
    record = json.loads(manifest_path_for(recipe).read_text())["nodes"]["ava"]
    assert (record["status"], record["look_id"]) == ("processing", "look_1")  # resumable
    assert "has answered nothing for" in result.stdout
    assert "The API stopped answering" in result.stdout


# -- an API that cannot be reached -------------------------------------------------------------


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def test_an_unreachable_api_fails_quickly_naming_host_and_port(tmp_path: Path) -> None:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(PROMPT_RECIPE)
    port = _closed_port()
    started = time.monotonic()
    result = _looks("apply", recipe, base_url=f"http://127.0.0.1:{port}")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    line = _one_line_error(result.stderr)
    assert line.startswith(f"looks: cannot reach the API at 127.0.0.1:{port}: GET http://")
    assert "ConnectError" in line and line.endswith("nothing was sent")
    # The promise to the user (was 65 s of silence): within PREFLIGHT_BUDGET, start-up included.
    assert elapsed < PREFLIGHT_BUDGET + 5
    assert not manifest_path_for(recipe).exists() or "submitted" not in (
        manifest_path_for(recipe).read_text()
    )


def test_a_host_that_never_accepts_fails_within_the_budget(tmp_path: Path) -> None:
    """A listener whose backlog is full drops new SYNs, like a firewall: connect hangs."""
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(PROMPT_RECIPE)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        started = time.monotonic()
        result = _looks("apply", recipe, base_url=f"http://127.0.0.1:{port}")
        elapsed = time.monotonic() - started
        for filler in fillers:
            filler.close()
    assert result.returncode == 1
    line = _one_line_error(result.stderr)
    assert line.startswith(f"looks: cannot reach the API at 127.0.0.1:{port}: GET http://")
    assert "ConnectTimeout" in line
    assert elapsed < PREFLIGHT_BUDGET + 5

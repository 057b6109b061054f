"""Shapes the API reference allows beyond the simulator's defaults, over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, ROOT, Run

from looks import sim
from looks.client import HeyGenClient, LookInfo
from looks.errors import ApiError
from looks.manifest import manifest_path_for

Answer = tuple[int, dict[str, Any]]


@pytest.fixture
def server() -> Iterator[tuple[str, list[Answer], list[str]]]:
    """A loopback HTTP server answering queued (status, JSON body) pairs; logs request paths."""
    answers: list[Answer] = []
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append(f"{self.command} {self.path}")
            status, body = answers.pop(0)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", answers, seen
    finally:
        httpd.shutdown()
        thread.join(10)


async def get_look(base_url: str) -> LookInfo:
    async with HeyGenClient(base_url, "k") as client:
        return await client.get_look("look_1")


@pytest.mark.anyio
async def test_validation_error_is_treated_like_invalid_parameter(
    server: tuple[str, list[Answer], list[str]],
) -> None:
    url, answers, seen = server
    error = {"code": "VALIDATION_ERROR", "message": "is too long", "param": "name"}
    answers.append((400, {"error": error}))
    with pytest.raises(ApiError) as caught:
        await get_look(url)
    assert (caught.value.status, caught.value.code) == (400, "invalid_parameter")
    assert caught.value.message == "is too long (param name)"
    assert len(seen) == 1  # a refusal, not retried


LOOK = {"id": "look_1", "name": "L", "avatar_type": "photo_avatar"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fields", "status", "usable"),
    [
        (
            {"preview_image_url": "https://cdn/p.png", "image_width": 512, "image_height": 768},
            "completed",
            True,
        ),
        (
            {"preview_image_url": "https://cdn/p.png", "image_width": 0, "image_height": 768},
            None,
            False,
        ),
        ({"image_width": 512, "image_height": 768}, None, False),
        ({}, None, False),
        ({"error": {"code": "bad_photo", "message": "no face found"}}, "failed", False),
        ({"status": "processing", "preview_image_url": "https://cdn/p.png"}, "processing", False),
    ],
)
async def test_a_look_without_status_is_judged_by_its_preview(
    server: tuple[str, list[Answer], list[str]],
    fields: dict[str, Any],
    status: str | None,
    usable: bool,
) -> None:
    url, answers, _ = server
    answers.append((200, {"data": {**LOOK, **fields}}))
    look = await get_look(url)
    assert (look.status, look.usable) == (status, usable)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("lost", "answer"),
    [("expired", "asset_not_available"), ("unknown", "invalid_parameter")],
)
def test_an_asset_the_api_no_longer_has_is_uploaded_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    looks: Callable[..., Run],
    lost: str,
    answer: str,
) -> None:
    """An asset the create cannot use (not available, or refused as `...asset_id`, as one
    the API no longer knows): the node fails, its upload runs again next time."""
    (tmp_path / "a.png").write_bytes((ROOT / "recipes/media/sarah.png").read_bytes())
    recipe = tmp_path / "r.yaml"
    base = "version: 1\navatars:\n  s:\n    name: S\n    base: {type: photo, file: {path: a.png}}\n"
    recipe.write_text(base)
    state = tmp_path / "sim-state.json"
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.1, state_file=state)
    monkeypatch.setenv("HEYGEN_API_KEY", API_KEY)
    with sim.running_simulator(config) as s:
        monkeypatch.setenv("HEYGEN_BASE_URL", s.base_url)
        assert looks("apply", recipe).code == 0
    saved = json.loads(state.read_text())
    [asset] = saved["assets"]
    if lost == "expired":
        asset["status"] = "expired"  # as if its storage had dropped it
    else:
        saved["assets"] = []  # as if it had been deleted
    state.write_text(json.dumps(saved))
    recipe.write_text(
        base + "    looks:\n      b: {prompt: red coat, reference_images: [{path: a.png}]}\n"
    )

    with sim.running_simulator(config) as s:
        monkeypatch.setenv("HEYGEN_BASE_URL", s.base_url)
        failed = looks("apply", recipe)
        assert failed.code == 1
        assert answer in failed.out
        nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
        upload = next(n for n in nodes.values() if n["kind"] == "upload")
        assert upload["status"] == "failed"
        assert upload["error"]["code"] == "asset_not_available"

        again = looks("apply", recipe)

        assert again.code == 0, again.out + again.err
        nodes = json.loads(manifest_path_for(recipe).read_text())["nodes"]
        assert all(n["status"] == "completed" for n in nodes.values())
        upload = next(n for n in nodes.values() if n["kind"] == "upload")
        assert upload["asset_id"] != asset["id"]
        [look] = [x for x in s.state()["looks"] if "reference_images" in x["request"]]
        ref = look["request"]["reference_images"][0]
        assert ref == {"type": "asset_id", "asset_id": upload["asset_id"]}

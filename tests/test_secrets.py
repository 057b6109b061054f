"""A lying server echoes the key everywhere it can: nothing shown or stored may carry it.

Real `looks apply` processes against a real socket server on 127.0.0.1 that puts the key in
X-Request-Id, in error messages, in HTML error pages (around the point where they are cut),
and in the 200 answers whose fields end up in the manifest (names, preview URLs, errors).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fakeservers import FakeServer, Request, groups_listing, respond
from conftest import ROOT

from looks.manifest import journal_path_for, manifest_path_for

KEY = "sk-LEAK-7f3a9c2e1d5b"
RECIPE = """version: 1
avatars:
  ava:
    name: Ava
    base: {type: prompt, prompt: A person in a studio}
"""


def _look(key: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {
        "id": "look_1",
        "name": f"Ava {key}",
        "avatar_type": "prompt",
        "group_id": "group_1",
        "status": status,
        "preview_image_url": f"https://cdn.example/{key}/p.png?sig={key}",
        "image_width": 512,
        "image_height": 512,
        **extra,
    }


def _liar(key: str, on_create: Callable[[socket.socket], None], look: dict[str, Any]) -> Any:
    """Passes the preflight; answers creates with `on_create`, listings with `look`."""

    def handler(request: Request, conn: socket.socket) -> None:
        echo = {"X-Request-Id": f"req-{key}"}
        if request.method == "POST" and request.path == "/v3/avatars":
            on_create(conn)
        elif request.path.startswith("/v3/avatars/looks"):
            respond(conn, 200, {"data": [look], "has_more": False}, headers=echo)
        elif request.path.startswith("/v3/avatars"):
            groups_listing(conn)
        else:
            respond(conn, 404, {"error": {"code": "not_found", "message": key}}, headers=echo)

    return handler


def _apply(
    tmp_path: Path, server: FakeServer, key: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(RECIPE)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HEYGEN_BASE_URL": server.base_url,
        "HEYGEN_API_KEY": key,
    }
    result = subprocess.run(
        [sys.executable, "-m", "looks.cli", "apply", "--log-json", str(recipe)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    stored = manifest_path_for(recipe).read_text()
    journal = journal_path_for(manifest_path_for(recipe))
    if journal.exists():
        stored += journal.read_text()
    return result, stored


def _assert_no_trace_of(key: str, *texts: str) -> None:
    for text in texts:
        # Not the key, nor any 6-character piece of it (a prefix left by a cut, say).
        for start in range(len(key) - 5):
            assert key[start : start + 6] not in text, (key[start : start + 6], text)


def test_a_key_echoed_in_request_ids_and_error_messages_is_masked(tmp_path: Path) -> None:
    def refuse(conn: socket.socket) -> None:
        error = {"code": "invalid_parameter", "message": f"key {KEY} may not do this", "param": KEY}
        respond(conn, 400, {"error": error}, headers={"X-Request-Id": f"req-{KEY}-1"})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(KEY, refuse, _look(KEY))
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == 1
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    failed = next(e for e in events if e["event"] == "failed")
    assert "key *** may not do this" in failed["message"]
    assert "(request req-***-1)" in failed["message"]
    assert "key *** may not do this" in stored


@pytest.mark.parametrize("where", [5, 290, 298, 4990])
def test_an_html_error_page_is_masked_before_it_is_cut(tmp_path: Path, where: int) -> None:
    page = ("<html><body>" + "x" * 6000)[:where] + KEY + "y" * 6000 + "</body></html>"

    def refuse(conn: socket.socket) -> None:
        respond(conn, 400, page, content_type="text/html", headers={"X-Request-Id": KEY})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(KEY, refuse, _look(KEY))
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == 1
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    failed = next(json.loads(line) for line in result.stdout.splitlines() if '"failed"' in line)
    assert len(failed["message"]) < 500  # a huge page is cut to one readable line
    assert "\n" not in failed["message"]


def test_a_huge_error_message_is_masked_and_cut_to_one_line(tmp_path: Path) -> None:
    message = "line one\nline two " + "z" * 1_000_000 + KEY

    def refuse(conn: socket.socket) -> None:
        respond(conn, 422, {"error": {"code": "invalid_parameter", "message": message}})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(KEY, refuse, _look(KEY))
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == 1
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    failed = next(json.loads(line) for line in result.stdout.splitlines() if '"failed"' in line)
    assert failed["message"].startswith("invalid_parameter: line one line two zzz")
    assert len(failed["message"]) < 500
    assert len(stored) < 10_000


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_key_in_a_successful_answer_never_reaches_the_manifest(
    tmp_path: Path, status: str
) -> None:
    error = {"code": "generation_failed", "message": f"moderation flagged {KEY}"}
    look = _look(KEY, status, **({"error": error} if status == "failed" else {}))

    def create(conn: socket.socket) -> None:
        group = {"id": "group_1", "name": f"Ava {KEY}"}
        answer = {"data": {"avatar_item": _look(KEY, "processing"), "avatar_group": group}}
        respond(conn, 200, answer, headers={"X-Request-Id": f"req-{KEY}"})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(KEY, create, look)
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == (0 if status == "completed" else 1), result.stderr
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    record = json.loads(manifest_path_for(tmp_path / "ava.yaml").read_text())["nodes"]["ava"]
    assert record["status"] == status
    if status == "completed":
        assert record["preview_image_url"] == "https://cdn.example/***/p.png?sig=***"
    else:
        assert record["error"]["message"] == "moderation flagged ***"


def test_a_one_character_key_does_not_mangle_words(tmp_path: Path) -> None:
    def refuse(conn: socket.socket) -> None:
        error = {"code": "insufficient_credit", "message": "not enough credits for c"}
        respond(conn, 402, {"error": error}, headers={"X-Request-Id": "req-c-42"})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar("c", refuse, _look("c"))
        result, stored = _apply(tmp_path, server, "c")
    assert result.returncode == 1
    assert "not enough credits for ***" in result.stdout
    assert "(request req-***-42)" in result.stdout
    assert "not enough credits for ***" in stored
    assert "***redits" not in result.stdout + result.stderr + stored


def test_an_unreadable_answer_keeps_its_request_id_masked(tmp_path: Path) -> None:
    def garbled(conn: socket.socket) -> None:
        respond(conn, 200, f"<html>{KEY}</html>", headers={"X-Request-Id": f"req-{KEY}"})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(KEY, garbled, _look(KEY))
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == 1
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    assert "answer is not a JSON object (request req-***)" in result.stdout


def test_an_answer_nested_too_deep_is_an_unreadable_answer_not_a_crash(tmp_path: Path) -> None:
    def deep(conn: socket.socket) -> None:
        respond(conn, 200, "[" * 100_000 + "]" * 100_000, headers={"X-Request-Id": f"req-{KEY}"})

    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(KEY, deep, _look(KEY))
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    assert "answer is not a JSON object (request req-***)" in result.stdout


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-be"])
def test_a_key_in_an_answer_in_utf16_or_utf32_never_reaches_the_manifest(
    tmp_path: Path, encoding: str
) -> None:
    # JSON in UTF-16 or -32 without a BOM: json reads it, and as UTF-8 it shows no key.
    def spelt(body: dict[str, Any]) -> bytes:
        return json.dumps(body).encode(encoding)

    def handler(request: Request, conn: socket.socket) -> None:
        if request.method == "POST" and request.path == "/v3/avatars":
            group = {"id": "group_1", "name": f"Ava {KEY}"}
            answer = {"data": {"avatar_item": _look(KEY, "processing"), "avatar_group": group}}
            respond(conn, 200, spelt(answer))
        elif request.path.startswith("/v3/avatars/looks"):
            respond(conn, 200, spelt({"data": [_look(KEY)], "has_more": False}))
        else:
            groups_listing(conn)

    with FakeServer(handler) as server:
        result, stored = _apply(tmp_path, server, KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_no_trace_of(KEY, result.stdout, result.stderr, stored)
    record = json.loads(manifest_path_for(tmp_path / "ava.yaml").read_text())["nodes"]["ava"]
    assert record["preview_image_url"] == "https://cdn.example/***/p.png?sig=***"


@pytest.mark.parametrize("answer", ["code in capitals", "utf-16 page without charset"])
def test_a_key_spelt_otherwise_in_an_error_never_reaches_the_manifest(
    tmp_path: Path, answer: str
) -> None:
    # An error code is lower-cased: the key echoed in capitals would come out as the key. A
    # page in UTF-16 with no charset is read as UTF-8: a NUL between every two characters.
    def refuse(conn: socket.socket) -> None:
        if answer == "code in capitals":
            respond(conn, 400, {"error": {"code": KEY.upper(), "message": "no"}})
        else:
            page = f"forbidden for {KEY.lower()}".encode("utf-16-le")
            respond(conn, 400, page, content_type="text/plain")

    lowered = KEY.lower()
    with FakeServer(lambda r, c: None) as server:
        server.handler = _liar(lowered, refuse, _look(lowered))
        result, stored = _apply(tmp_path, server, lowered)
    assert result.returncode == 1
    _assert_no_trace_of(lowered, result.stdout, result.stderr, stored)
    failed = next(json.loads(line) for line in result.stdout.splitlines() if '"failed"' in line)
    assert "***" in failed["message"] + failed.get("code", "")

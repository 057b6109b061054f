"""The client's PUT to an upload URL, against raw loopback sockets that misbehave."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenacity import stop_after_attempt, wait_none

from engine.client import DirectUploadTicket, HeyGenClient, RetryPolicy
from engine.errors import ApiError

SIZE = 3 * 2**20 + 17  # a few chunks and a ragged end


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Storage:
    """A one-thread HTTP/1.1 server: connection N is cut after `cut[N]` body bytes (if set)."""

    def __init__(self, cut: dict[int, int], status: int = 200, body: bytes = b"") -> None:
        self.cut = cut
        self.status = status
        self.body = body
        self.heads: list[dict[str, str]] = []
        self.received: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._one(conn, len(self.heads))

    def _one(self, conn: socket.socket, number: int) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k: v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        headers["request-line"] = lines[0]
        self.heads.append(headers)
        length = int(headers.get("Content-Length") or headers.get("content-length") or 0)
        limit = self.cut.get(number, length)
        while len(body) < min(length, limit):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        self.received.append(body[:limit])
        if limit < length:
            conn.shutdown(socket.SHUT_RDWR)  # the PUT dies half way
            return
        reason = b"OK" if self.status == 200 else b"Forbidden"
        conn.sendall(
            b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (self.status, reason, len(self.body), self.body)
        )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256))
    return path


@pytest.fixture
def storage_factory() -> Iterator[list[Storage]]:
    made: list[Storage] = []
    yield made
    for s in made:
        s.close()


def ticket(storage: Storage) -> DirectUploadTicket:
    return DirectUploadTicket(
        asset_id="asset_1",
        upload_url=f"http://127.0.0.1:{storage.port}/bucket/clip?X-Signature=secret-sig",
        upload_headers={"Content-Type": "video/mp4", "x-amz-meta-Odd": "Value  With Spaces"},
        expires_in_seconds=600,
    )


def client() -> HeyGenClient:
    policy = RetryPolicy(stop=stop_after_attempt(4), wait=wait_none())
    return HeyGenClient("http://127.0.0.1:9", "sk-SECRET-key", retry=policy)


@pytest.mark.anyio
async def test_a_put_that_dies_half_way_is_sent_again_whole(
    video: Path, storage_factory: list[Storage]
) -> None:
    storage = Storage(cut={0: SIZE // 2})
    storage_factory.append(storage)
    progress: list[int] = []
    async with client() as c:
        await c.put_upload(ticket(storage), video, SIZE, on_progress=progress.append)
    assert len(storage.received) == 2
    assert len(storage.received[0]) == SIZE // 2
    whole = storage.received[1]
    assert hashlib.sha256(whole).digest() == hashlib.sha256(video.read_bytes()).digest()
    assert progress[-1] == SIZE


@pytest.mark.anyio
async def test_upload_headers_go_verbatim_and_the_api_key_never_does(
    video: Path, storage_factory: list[Storage]
) -> None:
    storage = Storage(cut={})
    storage_factory.append(storage)
    async with client() as c:
        await c.put_upload(ticket(storage), video, SIZE)
    [head] = storage.heads
    assert head["request-line"].startswith("PUT /bucket/clip?X-Signature=secret-sig ")
    assert head["x-amz-meta-Odd"] == "Value  With Spaces"  # name and value untouched
    assert head["Content-Type"] == "video/mp4"
    assert head["Content-Length"] == str(SIZE)  # never chunked: signed PUTs refuse that
    assert "Transfer-Encoding" not in head
    assert not any(k.lower() == "x-api-key" for k in head)
    assert "sk-SECRET-key" not in repr(head)


@pytest.mark.anyio
async def test_a_storage_refusal_names_its_code_but_not_the_signed_query(
    video: Path, storage_factory: list[Storage]
) -> None:
    body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    storage = Storage(cut={}, status=403, body=body)
    storage_factory.append(storage)
    async with client() as c:
        with pytest.raises(ApiError) as caught:
            await c.put_upload(ticket(storage), video, SIZE)
    assert caught.value.status == 403 and caught.value.code == "upload_refused"
    assert "AccessDenied: Request has expired" in str(caught.value)
    assert "secret-sig" not in str(caught.value)
    assert len(storage.heads) == 1  # a refusal is not retried


def test_a_ticket_never_shows_its_url_signature() -> None:
    t = DirectUploadTicket("a", "https://s3.example/x?X-Amz-Signature=abc", {}, 60)
    assert "X-Amz-Signature" not in repr(t)

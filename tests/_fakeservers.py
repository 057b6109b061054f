"""Misbehaving HTTP servers on real loopback sockets: slow, lying, closing mid-answer.

Each server runs in a thread, answers every connection with a handler that gets the parsed
request and the raw socket, and records every request it read (method, path, headers).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A self-signed certificate for DNS:localhost (valid to 2126), for https servers here.
LOCALHOST_CERT = Path(__file__).parent / "tls" / "localhost.pem"


def localhost_tls() -> ssl.SSLContext:
    """A server context presenting tests/tls's localhost certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(LOCALHOST_CERT, LOCALHOST_CERT.with_suffix(".key"))
    return context


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


Handler = Callable[[Request, socket.socket], None]


@dataclass
class FakeServer:
    """A loopback server; `requests` lists what it was sent, in order."""

    handler: Handler
    requests: list[Request] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    tls: ssl.SSLContext | None = None  # a server context: https://localhost:PORT

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        if self.tls is not None:
            self.base_url = f"https://localhost:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with contextlib.ExitStack() as closing, contextlib.suppress(OSError):
            closing.enter_context(conn)
            conn.settimeout(30)
            if self.tls is not None:  # a refused handshake is an ssl.SSLError, an OSError
                conn = closing.enter_context(self.tls.wrap_socket(conn, server_side=True))
            reader = conn.makefile("rb")
            while not self.stopping.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                self.handler(request, conn)

    def sleep(self, seconds: float) -> bool:
        """Wait (False once the server is stopping): for handlers that dawdle."""
        return not self.stopping.wait(seconds)

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._listener.close()
        self._thread.join(timeout=5)


def _read_request(reader: Any) -> Request | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


def respond(
    conn: socket.socket,
    status: int,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    """Send a complete answer: a JSON body (or bytes/str as they are)."""
    if isinstance(body, bytes):
        payload = body
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status} Whatever", f"Content-Type: {content_type}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head.append(f"Content-Length: {len(payload)}")
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)


def headers_a_second(server: FakeServer, interval: float = 1.0) -> Handler:
    """A status line, then one header every `interval` seconds, forever (slowloris)."""

    def handler(request: Request, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        n = 0
        while server.sleep(interval):
            n += 1
            conn.sendall(f"X-Slow-{n}: {n}\r\n".encode())

    return handler


def body_a_byte_at_a_time(server: FakeServer, interval: float = 0.3) -> Handler:
    """Complete headers announcing a big body, then the body one byte every `interval` s."""

    def handler(request: Request, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Content-Length: 100000\r\n\r\n")
        while server.sleep(interval):
            conn.sendall(b" ")

    return handler


def silent(server: FakeServer) -> Handler:
    """Reads the request, then says nothing at all until the client gives up."""

    def handler(request: Request, conn: socket.socket) -> None:
        while server.sleep(0.1):
            pass

    return handler


def closes_mid_body(request: Request, conn: socket.socket) -> None:
    """Headers announcing 1000 bytes, 10 of them, then the connection is closed."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b'Content-Length: 1000\r\n\r\n{"data": {')
    conn.shutdown(socket.SHUT_RDWR)
    raise OSError("closed on purpose")  # ends the connection thread


def groups_listing(conn: socket.socket) -> None:
    """An empty but valid answer to GET /v3/avatars (the preflight)."""
    respond(conn, 200, {"data": [], "has_more": False, "next_token": None})


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True

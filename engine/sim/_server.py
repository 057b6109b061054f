"""HTTP/1.1 keep-alive transport for the simulator: asyncio streams and h11."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11
import httpx

from engine.errors import UsageError
from engine.sim import _api
from engine.sim._api import Request, Response, Simulator, error
from engine.sim._config import SimConfig

_READ_CHUNK = 256 * 1024
# Bodies above this are refused before being read. The API itself answers 413 for a file over
# MAX_UPLOAD_BYTES; the slack leaves room for multipart framing and base64's 4/3 growth.
_BODY_SLACK = 16 * 1024 * 1024
_SAVE_EVERY = 10.0
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _body_cap() -> int:
    # Read at call time so tests that lower MAX_UPLOAD_BYTES lower this cap too.
    return _api.MAX_UPLOAD_BYTES * 4 // 3 + _BODY_SLACK


def check_loopback(host: str) -> None:
    """The simulator only ever listens on loopback."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"sim: refusing to listen on {host!r}: only loopback addresses")


class _Dropped(Exception):
    """The connection ended (or must end) without another response."""


class SimServer:
    """One listening simulator; `run` serves until `stop` is called on its loop."""

    def __init__(self, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        check_loopback(host)
        self.sim = Simulator(config)
        self.host = host
        self.port = port
        self.base_url = ""
        self._stop: asyncio.Event | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()

    def stop(self) -> None:
        """Ask `run` to finish; call on the server's event loop."""
        if self._stop is not None:
            self._stop.set()

    async def run(self, on_ready: Callable[[str], None]) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, self.host, self.port, backlog=1024)
        sockname = server.sockets[0].getsockname()
        host = sockname[0]
        self.port = int(sockname[1])
        netloc = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{netloc}:{self.port}"
        self.sim.base_url = self.base_url
        saver = asyncio.create_task(self._save_periodically())
        on_ready(self.base_url)
        try:
            await self._stop.wait()
        finally:
            server.close()
            saver.cancel()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(saver, *self._conns, return_exceptions=True)
            await server.wait_closed()
            path = self.sim.config.state_file
            if path is not None:
                self.sim.save(path)

    async def _save_periodically(self) -> None:
        path = self.sim.config.state_file
        if path is None:
            return
        saved = self.sim.mutations
        while True:
            await asyncio.sleep(_SAVE_EVERY)
            if self.sim.mutations != saved:
                saved = self.sim.mutations
                self.sim.save(path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._one_exchange(conn, reader, writer):
                conn.start_next_cycle()
        except (_Dropped, ConnectionError, asyncio.CancelledError):
            pass
        except h11.RemoteProtocolError as e:
            with contextlib.suppress(Exception):
                self._write(conn, writer, error(e.error_status_hint, "bad_request", str(e)))
        finally:
            self._conns.discard(task)
            writer.close()

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(_READ_CHUNK))

    async def _one_exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection is to be closed."""
        event = await self._next_event(conn, reader)
        if isinstance(event, h11.ConnectionClosed):
            return False
        if not isinstance(event, h11.Request):
            raise _Dropped
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        if self.sim.is_upload_put(event.method.decode("ascii"), path):
            return await self._upload(conn, reader, writer, path, query, headers)
        cap = _body_cap()
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            self._write(conn, writer, _too_large(), close=True)
            return False
        if conn.they_are_waiting_for_100_continue:
            # curl asks before sending large uploads; say yes rather than make it wait.
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        size = 0
        while True:
            part = await self._next_event(conn, reader)
            if isinstance(part, h11.Data):
                size += len(part.data)
                if size > cap:
                    self._write(conn, writer, _too_large(), close=True)
                    return False
                chunks.append(bytes(part.data))
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return False
        request = Request(event.method.decode("ascii"), path, query, headers, b"".join(chunks))
        try:
            response = await self.sim.handle(request)
        except Exception as e:  # a simulator bug must still answer, not hang or drop the client
            traceback.print_exc()
            response = error(500, "internal_error", f"simulator bug: {e!r}")
        if response.drop:
            return False
        self._write(conn, writer, response)
        if writer.transport.get_write_buffer_size() > _READ_CHUNK:
            await writer.drain()
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _upload(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        path: str,
        query: str,
        headers: dict[str, str],
    ) -> bool:
        """Stream a PUT to an upload_url into its sink: hashed as it arrives, never held."""
        sink = self.sim.upload_sink(path, query, headers)
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        while True:
            part = await self._next_event(conn, reader)
            if isinstance(part, h11.Data):
                sink.feed(bytes(part.data))
                rate = self.sim.config.upload_bytes_per_second
                if rate:
                    await asyncio.sleep(len(part.data) / rate)
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return False  # the client went away mid-body: nothing was stored
        answer = sink.finish()
        self._write(
            conn, writer, Response(answer.status, answer.body, answer.content_type, answer.headers)
        )
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    def _write(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        close: bool = False,
    ) -> None:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("X-Request-Id", f"req_{self._id_prefix}{next(self._ids):08x}"),
            *response.headers,
        ]
        if close:
            headers.append(("Connection", "close"))
        data = conn.send(
            h11.Response(
                status_code=response.status,
                headers=headers,
                reason=_REASONS.get(response.status, b""),
            )
        )
        body = conn.send(h11.Data(data=response.body)) if response.body else b""
        end = conn.send(h11.EndOfMessage())
        writer.write(b"".join(x for x in (data, body, end) if x))


def _too_large() -> Response:
    return error(413, "payload_too_large", "request body is larger than 32 MB")


def serve(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the simulator until SIGINT/SIGTERM; the first stdout line is HEYGEN_BASE_URL=..."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = SimServer(config, host, port)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.stop)
        await server.run(lambda url: print(f"HEYGEN_BASE_URL={url}", flush=True))

    asyncio.run(main())


@dataclass
class RunningSimulator:
    """A simulator serving from a background thread (see `running_simulator`)."""

    base_url: str
    _client: httpx.Client

    def state(self) -> dict[str, Any]:
        return self._get("/_sim/state")

    def stats(self) -> dict[str, Any]:
        return self._get("/_sim/stats")

    def assets(self) -> list[dict[str, Any]]:
        """Every asset with its status: completed, pending_upload or expired."""
        assets: list[dict[str, Any]] = self._get("/_sim/assets")["assets"]
        return assets

    def config(self) -> dict[str, Any]:
        return self._get("/_sim/config")

    def reset(self) -> None:
        self._client.post("/_sim/reset").raise_for_status()

    def configure(self, **fields: Any) -> dict[str, Any]:
        """Change runtime settings (fail_rate, drop_rate, latency_ms, max_jobs, credits, ...)."""
        r = self._client.post("/_sim/config", json=fields)
        if r.status_code == 400:
            raise UsageError(r.json()["error"]["message"])
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def _get(self, path: str) -> dict[str, Any]:
        r = self._client.get(path)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result


@contextlib.contextmanager
def running_simulator(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSimulator]:
    """Serve a simulator in-process on a free loopback port for the duration of the block."""
    server = SimServer(config or SimConfig(), host, port)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.run(lambda _url: ready.set()))
        except BaseException as e:
            failure.append(e)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="heygen-sim", daemon=True)
    thread.start()
    ready.wait(30)
    if failure or not server.base_url:
        thread.join(5)
        raise UsageError(f"sim: the simulator did not start: {failure[0] if failure else '?'}")
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            yield RunningSimulator(server.base_url, client)
    finally:
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(server.stop)
        thread.join(30)

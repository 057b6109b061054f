"""A direct upload's PUT over https while the API itself is plain http: the CA bundle is
read at that first handshake (engine/tls.py), mid-run, so a bundle that cannot be read
fails there, as one clear line, never as an internal error."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakeservers import LOCALHOST_CERT, FakeServer, groups_listing, localhost_tls
from conftest import API_KEY, Run
from test_direct_upload import make_video, twin_recipe

from looks import sim
from looks.sim import _uploads


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def https_front(upload_sim: sim.RunningSimulator) -> Iterator[int]:
    """https://localhost:PORT in front of the simulator (tests/tls's certificate)."""
    context = localhost_tls()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sim_port = int(upload_sim.base_url.rsplit(":", 1)[1])

    def connection(conn: socket.socket) -> None:
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except OSError:
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", sim_port))
        threading.Thread(target=_pipe, args=(tls, upstream), daemon=True).start()
        _pipe(upstream, tls)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=connection, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield port
    listener.close()


@pytest.fixture
def upload_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[sim.RunningSimulator]:
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.1, auto_consent=0.1)
    with sim.running_simulator(config) as s:
        yield s


@pytest.fixture
def simulator(upload_sim: sim.RunningSimulator) -> sim.RunningSimulator:
    return upload_sim


@pytest.fixture
def https_uploads(monkeypatch: pytest.MonkeyPatch, https_front: int) -> None:
    """The simulator's upload_url points at the https front."""
    real = _uploads.DirectUploads._url

    def url(self: Any, upload: Any, base_url: str) -> str:
        return str(real(self, upload, f"https://localhost:{https_front}"))

    monkeypatch.setattr(_uploads.DirectUploads, "_url", url)


def test_an_https_put_trusts_the_bundle_ssl_cert_file_names(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    https_uploads: None,
    upload_sim: sim.RunningSimulator,
    looks: Callable[..., Run],
    api_env: Any,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(LOCALHOST_CERT))
    make_video(tmp_path / "alex.mp4")
    run = looks("apply", twin_recipe(tmp_path))
    assert run.code == 0, run.out + run.err
    assert [a["status"] for a in upload_sim.assets()] == ["completed"]


def test_an_https_put_is_verified(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    https_uploads: None,
    upload_sim: sim.RunningSimulator,
    looks: Callable[..., Run],
    api_env: Any,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    make_video(tmp_path / "alex.mp4")
    run = looks("apply", twin_recipe(tmp_path))
    assert run.code != 0
    assert "CERTIFICATE_VERIFY_FAILED" in run.out + run.err
    assert "internal error" not in run.err and "Traceback" not in run.err
    assert [a["status"] for a in upload_sim.assets()] == ["pending_upload"]


@pytest.mark.parametrize("content", [None, b"not a certificate\n"], ids=["missing", "no-pem"])
def test_an_unreadable_bundle_at_an_https_put_mid_run_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    https_uploads: None,
    upload_sim: sim.RunningSimulator,
    looks: Callable[..., Run],
    api_env: Any,
    content: bytes | None,
) -> None:
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_bytes(content)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    make_video(tmp_path / "alex.mp4")
    run = looks("apply", twin_recipe(tmp_path))
    assert run.code != 0
    # The bundle is named, not the video being uploaded (which is there, and readable).
    assert (
        f"ca_bundle_unreadable: {bundle}: cannot be read as a CA bundle (SSL_CERT_FILE)" in run.out
    )
    assert "file_unreadable" not in run.out + run.err
    assert "internal error" not in run.err and "Traceback" not in run.err
    assert API_KEY not in run.out + run.err
    # Nothing was sent: the next run, with a readable bundle, resumes the same upload.
    monkeypatch.setenv("SSL_CERT_FILE", str(LOCALHOST_CERT))
    again = looks("apply", twin_recipe(tmp_path))
    assert again.code == 0, again.out + again.err
    assert [a["status"] for a in upload_sim.assets()] == ["completed"]


def test_an_unreadable_bundle_for_an_https_api_names_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, looks: Callable[..., Run], api_env: Any
) -> None:
    context = localhost_tls()
    bundle = tmp_path / "gone.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    make_video(tmp_path / "alex.mp4")
    with FakeServer(lambda request, conn: groups_listing(conn), tls=context) as server:
        monkeypatch.setenv("HEYGEN_BASE_URL", server.base_url)
        run = looks("apply", twin_recipe(tmp_path))
        assert server.requests == []
    assert run.code == 1
    assert run.err.splitlines()[-1] == (
        f"looks: {bundle}: cannot be read as a CA bundle (SSL_CERT_FILE): No such file or directory"
    ), run.err

"""TLS of the API client: certificates and host names verified as httpx's default does, the
CA bundle read only at the first handshake, so that a run against a plain-http API (`looks
sim`) never pays for reading it (docs/performance.md, start-up and exit).

tests/tls/localhost.pem is a self-signed certificate for DNS:localhost (valid to 2126), its
key beside it; no bundle trusts it unless SSL_CERT_FILE names it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakeservers import LOCALHOST_CERT, FakeServer, Request, groups_listing, localhost_tls
from conftest import API_KEY
from tenacity import stop_after_attempt, wait_none

from looks import sim
from looks.client import HeyGenClient, RetryPolicy
from looks.errors import TransportError
from looks.tls import verifying_context


def _refuse_bundles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make reading a CA bundle fail (create_default_context reads one); return the list
    that names each refused read."""
    refused: list[str] = []

    def refuse(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        refused.append(repr((args, kwargs)))
        raise AssertionError("a CA bundle was read")

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", refuse)
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", refuse)
    return refused


def _once() -> RetryPolicy:
    return RetryPolicy(stop=stop_after_attempt(1), wait=wait_none())


@pytest.fixture
def https_api() -> Iterator[FakeServer]:
    """An https API on localhost answering the preflight, with tests/tls's certificate."""
    context = localhost_tls()

    def handler(request: Request, conn: Any) -> None:
        groups_listing(conn)

    with FakeServer(handler, tls=context) as server:
        yield server


def _preflight(base_url: str) -> None:
    async def run() -> None:
        async with HeyGenClient(base_url, API_KEY, retry=_once()) as client:
            await client.preflight()

    asyncio.run(run())


def test_a_plain_http_api_is_called_without_reading_a_ca_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.1)
    with sim.running_simulator(config) as simulator:
        refused = _refuse_bundles(monkeypatch)

        async def run() -> list[str]:
            async with HeyGenClient(simulator.base_url, API_KEY) as client:
                await client.preflight()
                return [g.id for g in await client.list_groups()]

        assert asyncio.run(run()) == []
    assert refused == []


def test_an_https_client_reads_its_bundle_at_the_first_handshake_not_before(
    monkeypatch: pytest.MonkeyPatch, https_api: FakeServer
) -> None:
    refused = _refuse_bundles(monkeypatch)
    HeyGenClient(https_api.base_url, API_KEY)  # made: nothing read yet
    assert refused == []
    with pytest.raises(AssertionError, match="a CA bundle was read"):
        _preflight(https_api.base_url)
    assert len(refused) == 1
    assert https_api.requests == []


def test_https_verifies_against_certifis_bundle_by_default(
    monkeypatch: pytest.MonkeyPatch, https_api: FakeServer
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        _preflight(https_api.base_url)
    assert https_api.requests == []  # nothing sent to a server that proved nothing


def test_https_trusts_the_bundle_ssl_cert_file_names(
    monkeypatch: pytest.MonkeyPatch, https_api: FakeServer
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(LOCALHOST_CERT))
    _preflight(https_api.base_url)
    assert [(r.method, r.path) for r in https_api.requests] == [("GET", "/v3/avatars?limit=1")]


def test_https_checks_the_host_name(monkeypatch: pytest.MonkeyPatch, https_api: FakeServer) -> None:
    # trusted, but issued for localhost only
    monkeypatch.setenv("SSL_CERT_FILE", str(LOCALHOST_CERT))
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        _preflight(f"https://127.0.0.1:{https_api.port}")
    assert https_api.requests == []


@pytest.mark.parametrize("content", [None, b"not a certificate\n"], ids=["missing", "no-pem"])
def test_a_bundle_that_cannot_be_read_fails_at_once_not_as_a_connect_error(
    monkeypatch: pytest.MonkeyPatch, https_api: FakeServer, tmp_path: Path, content: bytes | None
) -> None:
    # As when httpx read SSL_CERT_FILE up front: an OSError the command line names, not a
    # TransportError retried as a failed connection.
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_bytes(content)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with pytest.raises(OSError) as caught:

        async def run() -> None:
            async with HeyGenClient(https_api.base_url, API_KEY) as client:  # default retries
                await client.preflight()

        asyncio.run(run())
    assert not isinstance(caught.value, (ssl.SSLError, TransportError))
    assert https_api.requests == []


def test_the_context_has_the_default_contexts_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    ours, default = verifying_context(), ssl.create_default_context()
    for setting in (
        "protocol",
        "verify_mode",
        "check_hostname",
        "options",
        "verify_flags",
        "minimum_version",
        "maximum_version",
        "post_handshake_auth",
        "keylog_filename",
    ):
        assert getattr(ours, setting) == getattr(default, setting), setting
    assert [c["name"] for c in ours.get_ciphers()] == [c["name"] for c in default.get_ciphers()]
    assert ours.verify_mode == ssl.CERT_REQUIRED and ours.check_hostname


def test_the_context_keeps_a_key_log_where_sslkeylogfile_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "keys.log"))
    assert verifying_context().keylog_filename == str(tmp_path / "keys.log")

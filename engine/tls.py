"""The TLS context of the API client: httpx's default, with its CA bundle read at first use.

httpx builds `ssl.create_default_context(cafile=certifi.where())` (or SSL_CERT_FILE /
SSL_CERT_DIR) when a client is made, and reading that bundle costs ~30 ms of start-up. A run
against a plain-http API (`looks sim`) never shakes hands; one against https pays the same
read at its first handshake instead of before its first request (docs/performance.md).

Until the bundle is read the context trusts no certificate: a handshake that did not go
through `wrap_bio`/`wrap_socket` would fail verification, never pass unverified.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys

import certifi

from .errors import CaBundleError

__all__ = ["verifying_context"]


class _BundleOnFirstUse(ssl.SSLContext):
    """A client context that reads its CA locations just before its first handshake."""

    _cafile: str | None  # None for both: certifi's bundle
    _capath: str | None
    _loaded: bool

    @classmethod
    def client(cls, cafile: str | None, capath: str | None) -> _BundleOnFirstUse:
        context = cls(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname already
        context._cafile, context._capath, context._loaded = cafile, capath, False
        return context

    def _load_bundle(self) -> None:
        if self._loaded:
            return
        cafile: str | None
        if self._cafile is None and self._capath is None:
            cafile, capath, source = certifi.where(), None, "certifi's CA bundle"
        else:
            cafile, capath = self._cafile, self._capath
            source = "SSL_CERT_FILE" if cafile is not None else "SSL_CERT_DIR"
        try:
            self.load_verify_locations(cafile=cafile, capath=capath)
        except OSError as e:
            # A bundle that is missing or no bundle (SSL_CERT_FILE naming some other file)
            # fails the command at once, as it did when httpx read it up front: an SSLError
            # here would be taken for a failed handshake, and retried, and a bare OSError
            # at an upload's PUT for the file being uploaded.
            reason = e.strerror or str(e)
            raise CaBundleError(
                e.errno, f"cannot be read as a CA bundle ({source}): {reason}", cafile or capath
            ) from e
        self._loaded = True

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        self._load_bundle()
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        self._load_bundle()
        return super().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )


def verifying_context() -> ssl.SSLContext:
    """What httpx's `verify=True` builds (certificates and host names checked, against
    SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle), the bundle read at first use.

    The settings are `ssl.create_default_context`'s for a client; tests/test_tls.py pins
    them to it.
    """
    cafile, capath = os.environ.get("SSL_CERT_FILE") or None, None
    if cafile is None:
        capath = os.environ.get("SSL_CERT_DIR") or None
    context = _BundleOnFirstUse.client(cafile, capath)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if sys.version_info >= (3, 13):  # as create_default_context sets them there
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context

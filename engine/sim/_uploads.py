"""The simulated direct-upload flow: init, a signed PUT URL on the simulator itself, complete.

`DirectUploads` keeps the uploads still waiting for their bytes; the PUT body reaches an
`UploadSink` chunk by chunk (the server streams it), so a 5 GiB upload costs no memory.
Storage answers carry no API envelope: like an object store, errors are a short XML body.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from engine.sim._config import SimConfig

__all__ = ["DIRECT_MAX_BYTES", "DirectUploads", "PendingUpload", "UploadSink", "storage_error"]

# The per-upload cap the init answers as `max_bytes` (see engine/media.py for the choice).
DIRECT_MAX_BYTES = 5 * 1024**3
UPLOAD_PATH = "/_sim/uploads/"
TOKEN_HEADER = "X-Sim-Upload-Token"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEAD = 64


@dataclass(frozen=True)
class StorageAnswer:
    """What the storage side answers a PUT: status, body, headers (no API envelope)."""

    status: int
    body: bytes = b""
    content_type: str = "application/xml"
    headers: tuple[tuple[str, str], ...] = ()


def storage_error(status: int, code: str, message: str) -> StorageAnswer:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return StorageAnswer(status, body.encode())


@dataclass
class PendingUpload:
    """An initialised direct upload, until `complete` turns it into a usable asset."""

    asset_id: str
    api_key: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str | None
    expires_at: float
    headers: dict[str, str]
    received_sha256: str | None = None  # set once one PUT delivered exactly size_bytes
    received_head: bytes = b""
    puts: int = 0


@dataclass
class UploadSink:
    """One PUT's body, hashed as it arrives; `finish` gives the storage's answer."""

    upload: PendingUpload | None
    refusal: StorageAnswer | None = None
    _hash: Any = field(default_factory=hashlib.sha256)
    _size: int = 0
    _head: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        if self.refusal is not None or self.upload is None:
            return  # drained, so the client reads our answer rather than a reset
        self._size += len(data)
        if self._size > self.upload.size_bytes:
            self.refusal = storage_error(
                400, "IncompleteBody", "more bytes than the signed size_bytes"
            )
            return
        if len(self._head) < _HEAD:
            self._head += data[: _HEAD - len(self._head)]
        self._hash.update(data)

    def finish(self) -> StorageAnswer:
        if self.refusal is not None:
            return self.refusal
        upload = self.upload
        assert upload is not None
        if self._size != upload.size_bytes:
            return storage_error(
                400,
                "IncompleteBody",
                f"received {self._size} bytes; the URL is signed for {upload.size_bytes}",
            )
        digest = self._hash.hexdigest()
        if upload.sha256 is not None and digest != upload.sha256:
            return storage_error(
                400, "BadDigest", "the sha256 of the bytes differs from the signed checksum"
            )
        upload.received_sha256 = digest
        upload.received_head = bytes(self._head)
        upload.puts += 1
        return StorageAnswer(200, b"", "text/plain", (("ETag", f'"{digest[:32]}"'),))


class DirectUploads:
    """Pending direct uploads of every caller, with the secret their URLs are signed with."""

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self.pending: dict[str, PendingUpload] = {}

    def clear(self) -> None:
        self.pending.clear()

    def start(
        self,
        asset_id: str,
        api_key: str,
        body: Mapping[str, Any],
        now: float,
        config: SimConfig,
        base_url: str,
    ) -> tuple[PendingUpload, dict[str, Any]]:
        """Register an upload whose body the caller validated; returns it and the answer."""
        ttl = config.upload_url_ttl
        sha = body.get("checksum_sha256")
        upload = PendingUpload(
            asset_id=asset_id,
            api_key=api_key,
            filename=str(body["filename"]),
            content_type=str(body["content_type"]),
            size_bytes=int(body["size_bytes"]),
            sha256=sha if isinstance(sha, str) else None,
            expires_at=now + ttl,
            # A fresh token per init: a client that reuses the headers of an earlier init (or
            # drops one) is refused, as real signed uploads are.
            headers={"Content-Type": str(body["content_type"]), TOKEN_HEADER: os.urandom(12).hex()},
        )
        self.pending[asset_id] = upload
        answer = {
            "asset_id": asset_id,
            "upload_url": self._url(upload, base_url),
            "upload_headers": dict(upload.headers),
            # Whole seconds, at least 1: a shorter --upload-url-ttl (0 included) makes URLs
            # that expire before the answer says, as a storage with a skewed clock would.
            "expires_in_seconds": max(1, math.ceil(ttl)),
            "max_bytes": DIRECT_MAX_BYTES,
            "status": "pending_upload",
        }
        return upload, answer

    def _signature(self, upload: PendingUpload, expires: str) -> str:
        message = f"{upload.asset_id}|{expires}|{upload.size_bytes}|{upload.sha256 or ''}"
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def _url(self, upload: PendingUpload, base_url: str) -> str:
        expires = f"{upload.expires_at:.3f}"
        query = {"expires": expires, "size": str(upload.size_bytes)}
        if upload.sha256:
            query["sha256"] = upload.sha256
        query["signature"] = self._signature(upload, expires)
        return f"{base_url}{UPLOAD_PATH}{quote(upload.asset_id, safe='')}?{urlencode(query)}"

    def sink(self, path: str, query: str, headers: Mapping[str, str], now: float) -> UploadSink:
        """The sink for a PUT to `path?query`; refused (but drained) when the URL is not valid."""
        upload = self.pending.get(path.removeprefix(UPLOAD_PATH))
        if upload is None:
            return UploadSink(None, storage_error(404, "NoSuchUpload", "no such upload"))
        params = {k: v[0] for k, v in parse_qs(query).items()}
        expires = params.get("expires", "")
        signed = (
            params.get("size") == str(upload.size_bytes)
            and params.get("sha256") == upload.sha256
            and hmac.compare_digest(params.get("signature", ""), self._signature(upload, expires))
        )
        if not signed:
            refusal = storage_error(403, "SignatureDoesNotMatch", "the URL's signature is wrong")
            return UploadSink(upload, refusal)
        try:
            expired = float(expires) <= now
        except ValueError:
            expired = True
        if expired:
            return UploadSink(upload, storage_error(403, "AccessDenied", "Request has expired"))
        for name, value in upload.headers.items():
            if headers.get(name.lower()) != value:
                refusal = storage_error(
                    403, "AccessDenied", f"header {name} is missing or differs from upload_headers"
                )
                return UploadSink(upload, refusal)
        if headers.get("content-length") != str(upload.size_bytes):
            refusal = storage_error(
                411 if "content-length" not in headers else 400,
                "MissingContentLength" if "content-length" not in headers else "IncompleteBody",
                f"Content-Length must be the signed size_bytes, {upload.size_bytes}",
            )
            return UploadSink(upload, refusal)
        return UploadSink(upload)

    def is_upload_put(self, method: str, path: str) -> bool:
        return method == "PUT" and path.startswith(UPLOAD_PATH)


def valid_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None

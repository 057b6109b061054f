"""Async HTTP client for the HeyGen v3 avatar API (looks, groups, assets, consent): what
the API answers, as data, and its endpoints. The plumbing under them is engine/session.py."""

from __future__ import annotations

import asyncio
import mimetypes
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from .errors import ApiError, FileChangedError
from .session import (
    CONNECT_TIMEOUT,
    MAX_ANSWER_BYTES,
    PREFLIGHT_BUDGET,
    STALL_REQUESTS,
    UPLOAD_BYTES_PER_SECOND,
    ApiSession,
    RetryPolicy,
    SilenceWatch,
    is_transient,
    parse_retry_after,
    redact_url,
    wait_retry_after,
)
from .settings import DEFAULT_REQUEST_TIMEOUT, ApiSettings

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "PREFLIGHT_BUDGET",
    "STALL_REQUESTS",
    "UPLOAD_BYTES_PER_SECOND",
    "ApiErrorInfo",
    "AssetInfo",
    "DirectUploadTicket",
    "GroupInfo",
    "HeyGenClient",
    "LookInfo",
    "RetryPolicy",
    "SilenceWatch",
    "is_transient",
    "parse_retry_after",
    "redact_url",
    "wait_retry_after",
]

_T = TypeVar("_T")

_MAX_PAGE_SIZE = 50  # the API's documented ceiling for `limit`


# --------------------------------------------------------------------------- data


def _req_str(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} has no {key!r}")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not an object")
    return value


# Only `id` is enforced strictly: a paid create must not be lost because the API dropped a
# cosmetic field, and a retry with the same idempotency key would replay the same answer.


@dataclass(frozen=True)
class ApiErrorInfo:
    """The `error` object of a failed look or group (code lower-cased)."""

    code: str
    message: str

    @classmethod
    def from_api(cls, data: Any) -> ApiErrorInfo | None:
        """Parse an `error` field; None when absent or not an object."""
        if not isinstance(data, Mapping):
            return None
        return cls(code=_str(data, "code").lower() or "unknown", message=_str(data, "message"))


@dataclass(frozen=True)
class LookInfo:
    """A look as the API shows it."""

    id: str
    name: str
    avatar_type: str
    group_id: str | None = None
    status: str | None = None
    error: ApiErrorInfo | None = None
    preview_image_url: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    supported_api_engines: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Completed, with a preview image of non-zero size (usable as video avatar/avatar_id)."""
        return (
            self.status == "completed"
            and bool(self.preview_image_url)
            and bool(self.image_width)
            and bool(self.image_height)
        )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> LookInfo:
        """Parse a Look object; raises ValueError when it has no id."""
        data = _mapping(data, "look")
        engines = data.get("supported_api_engines")
        error = ApiErrorInfo.from_api(data.get("error"))
        preview = _opt_str(data, "preview_image_url")
        width, height = _opt_int(data, "image_width"), _opt_int(data, "image_height")
        status = _opt_str(data, "status")
        if status is None:
            # The reference sends `status` only for private avatars; a look without one is
            # ready once it has a preview image of non-zero size, failed once it has an error.
            if preview and width and height:
                status = "completed"
            elif error is not None:
                status = "failed"
        return cls(
            id=_req_str(data, "id", "look"),
            name=_str(data, "name"),
            avatar_type=_str(data, "avatar_type"),
            group_id=_opt_str(data, "group_id"),
            status=status,
            error=error,
            preview_image_url=preview,
            image_width=width,
            image_height=height,
            supported_api_engines=(
                tuple(e for e in engines if isinstance(e, str)) if isinstance(engines, list) else ()
            ),
        )


@dataclass(frozen=True)
class GroupInfo:
    """An avatar group (a character identity) as the API shows it."""

    id: str
    name: str
    looks_count: int = 0
    created_at: int = 0
    status: str | None = None
    consent_status: str | None = None
    preview_image_url: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> GroupInfo:
        """Parse a Group object; raises ValueError when it has no id."""
        data = _mapping(data, "avatar group")
        return cls(
            id=_req_str(data, "id", "avatar group"),
            name=_str(data, "name"),
            looks_count=_opt_int(data, "looks_count") or 0,
            created_at=_opt_int(data, "created_at") or 0,
            status=_opt_str(data, "status"),
            consent_status=_opt_str(data, "consent_status"),
            preview_image_url=_opt_str(data, "preview_image_url"),
        )


@dataclass(frozen=True)
class AssetInfo:
    """An uploaded asset."""

    asset_id: str
    url: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    status: str | None = None  # a direct upload's; "completed" once usable

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AssetInfo:
        """Parse an upload answer; raises ValueError when it has no asset_id."""
        data = _mapping(data, "asset")
        return cls(
            asset_id=_req_str(data, "asset_id", "asset"),
            url=_opt_str(data, "url"),
            mime_type=_opt_str(data, "mime_type"),
            size_bytes=_opt_int(data, "size_bytes"),
            status=_opt_str(data, "status"),
        )


@dataclass(frozen=True)
class DirectUploadTicket:
    """The init answer of a direct upload: where and how to PUT the bytes, and until when."""

    asset_id: str
    upload_url: str
    upload_headers: Mapping[str, str]
    expires_in_seconds: float
    max_bytes: int | None = None

    def __repr__(self) -> str:  # the URL is a credential: never in a log or a message
        return f"DirectUploadTicket(asset_id={self.asset_id!r}, url={redact_url(self.upload_url)})"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> DirectUploadTicket:
        """Parse an init answer; raises ValueError when a required field is missing."""
        data = _mapping(data, "direct upload")
        url = _req_str(data, "upload_url", "direct upload")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("direct upload's upload_url is not an http(s) URL")
        headers = data.get("upload_headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("direct upload's upload_headers is not an object of strings")
        expires = data.get("expires_in_seconds")
        if isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0:
            raise ValueError("direct upload has no positive expires_in_seconds")
        return cls(
            asset_id=_req_str(data, "asset_id", "direct upload"),
            upload_url=url,
            upload_headers=dict(headers),
            expires_in_seconds=float(expires),
            max_bytes=_opt_int(data, "max_bytes"),
        )


# --------------------------------------------------------------------------- retry


class HeyGenClient:
    """One pooled async client for the HeyGen v3 avatar API; retries transient failures."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        stall_after: float | None = None,
        max_connections: int = 6,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        """`timeout` bounds each read and write; `request_timeout` a whole request (a server
        that trickles its answer a byte at a time must not hold a run forever); `stall_after`
        (default STALL_REQUESTS request deadlines) ends retrying when the API has given no
        complete answer for that long.
        """
        self._session = ApiSession(
            base_url,
            api_key,
            retry=retry,
            transport=transport,
            timeout=timeout,
            request_timeout=request_timeout,
            stall_after=stall_after,
            max_connections=max_connections,
            on_retry=on_retry,
        )

    def __repr__(self) -> str:
        return f"HeyGenClient(base_url={self._session.base_url!r})"

    @classmethod
    def for_settings(cls, settings: ApiSettings, **options: Any) -> HeyGenClient:
        """A client for the API, key and request deadline of `settings`."""
        return cls(
            settings.base_url,
            settings.api_key,
            request_timeout=settings.request_timeout,
            **options,
        )

    @property
    def request_timeout(self) -> float:
        """Seconds a whole request may take (uploads get more, by size)."""
        return self._session.request_timeout

    def deadline_for(self, upload_bytes: int = 0) -> float:
        """The total deadline of one attempt that sends `upload_bytes` of file content."""
        return self._session.deadline_for(upload_bytes)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._session.aclose()

    async def preflight(self) -> None:
        """One cheap authenticated GET before any work: the API answers and takes the key.

        A refused key is an ApiError naming HEYGEN_API_KEY; an API that cannot be connected
        to fails within PREFLIGHT_BUDGET seconds, naming host:port. Other failures are
        retried as usual (a blip mid-run is not this).
        """
        await self._session.preflight()

    async def create_avatar(
        self, body: Mapping[str, Any], *, idempotency_key: str
    ) -> tuple[LookInfo, GroupInfo]:
        """POST /v3/avatars; returns the new look and its group."""
        data = await self._session.call(
            "POST", "/v3/avatars", json=dict(body), idempotency_key=idempotency_key
        )

        def parse() -> tuple[LookInfo, GroupInfo]:
            answer = _mapping(data, "answer")
            return (
                LookInfo.from_api(_mapping(answer.get("avatar_item"), "avatar_item")),
                GroupInfo.from_api(_mapping(answer.get("avatar_group"), "avatar_group")),
            )

        return self._session.parse("POST", "/v3/avatars", parse)

    async def upload_asset(
        self, path: Path, *, idempotency_key: str, media_type: str | None = None
    ) -> AssetInfo:
        """POST /v3/assets as multipart field `file`; media type guessed from the suffix."""
        # Read once into memory (≤32 MB per the API) so every retry re-sends the same bytes.
        content = await asyncio.to_thread(path.read_bytes)
        mime = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = await self._session.call(
            "POST",
            "/v3/assets",
            files={"file": (path.name, content, mime)},
            idempotency_key=idempotency_key,
        )
        return self._session.parse("POST", "/v3/assets", lambda: AssetInfo.from_api(data))

    async def start_direct_upload(
        self,
        *,
        filename: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str,
        idempotency_key: str,
    ) -> DirectUploadTicket:
        """POST /v3/assets/direct-uploads: step 1 of 3 for a file over 32 MB."""
        path = "/v3/assets/direct-uploads"
        body = {
            "filename": filename,
            "content_type": content_type,
            "size_bytes": size_bytes,
            "checksum_sha256": checksum_sha256,
        }
        data = await self._session.call("POST", path, json=body, idempotency_key=idempotency_key)
        return self._session.parse("POST", path, lambda: DirectUploadTicket.from_api(data))

    async def put_upload(
        self,
        ticket: DirectUploadTicket,
        path: Path,
        size_bytes: int,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """PUT the file to the ticket's URL, streamed from disk, with its headers verbatim.

        Step 2 of 3. Retried from the first byte on a transient failure (the same bytes to the
        same URL). The API key is never sent: the URL is the storage's, signed for this file.
        """

        async def attempt() -> httpx.Response:
            # Every upload header verbatim; a Content-Length of ours only if they set none
            # (without one httpx would send the stream chunked, which signed PUTs refuse).
            headers = dict(ticket.upload_headers)
            if not any(name.lower() == "content-length" for name in headers):
                headers["Content-Length"] = str(size_bytes)
            chunks = _file_chunks(path, size_bytes, on_progress)
            return await self._session.put(ticket.upload_url, headers, chunks, size_bytes)

        await self._session.retrying(attempt, retryable=True)

    async def complete_upload(
        self, asset_id: str, *, checksum_sha256: str, idempotency_key: str
    ) -> AssetInfo:
        """POST /v3/assets/{asset_id}/complete: step 3 of 3; safe to repeat."""
        path = f"/v3/assets/{_seg(asset_id)}/complete"
        body = {"checksum_sha256": checksum_sha256}
        data = await self._session.call("POST", path, json=body, idempotency_key=idempotency_key)
        return self._session.parse("POST", path, lambda: AssetInfo.from_api(data))

    async def start_consent(
        self, group_id: str, *, reroute_url: str | None, idempotency_key: str
    ) -> tuple[GroupInfo, str]:
        """POST /v3/avatars/{group_id}/consent; returns the group and the consent URL."""
        path = f"/v3/avatars/{_seg(group_id)}/consent"
        body = {} if reroute_url is None else {"reroute_url": reroute_url}
        data = await self._session.call("POST", path, json=body, idempotency_key=idempotency_key)

        def parse() -> tuple[GroupInfo, str]:
            answer = _mapping(data, "answer")
            return GroupInfo.from_api(
                _mapping(answer.get("avatar_group"), "avatar_group")
            ), _req_str(answer, "url", "consent answer")

        return self._session.parse("POST", path, parse)

    async def get_look(self, look_id: str) -> LookInfo:
        """GET /v3/avatars/looks/{look_id}."""
        path = f"/v3/avatars/looks/{_seg(look_id)}"
        data = await self._session.call("GET", path)
        return self._session.parse("GET", path, lambda: LookInfo.from_api(data))

    async def list_looks(
        self, *, group_id: str | None = None, avatar_type: str | None = None, page_size: int = 50
    ) -> list[LookInfo]:
        """GET /v3/avatars/looks, following next_token over every page."""
        params = {"group_id": group_id, "avatar_type": avatar_type}
        items = await self._paginate("/v3/avatars/looks", params, page_size)
        return self._session.parse(
            "GET", "/v3/avatars/looks", lambda: [LookInfo.from_api(i) for i in items]
        )

    async def rename_look(self, look_id: str, name: str) -> LookInfo:
        """PATCH /v3/avatars/looks/{look_id} with a new name."""
        path = f"/v3/avatars/looks/{_seg(look_id)}"
        data = await self._session.call("PATCH", path, json={"name": name})
        return self._session.parse("PATCH", path, lambda: LookInfo.from_api(data))

    async def delete_look(self, look_id: str) -> None:
        """DELETE /v3/avatars/looks/{look_id} (a group's last look takes the group with it)."""
        await self._session.call_body("DELETE", f"/v3/avatars/looks/{_seg(look_id)}")

    async def get_group(self, group_id: str) -> GroupInfo:
        """GET /v3/avatars/{group_id}."""
        path = f"/v3/avatars/{_seg(group_id)}"
        data = await self._session.call("GET", path)
        return self._session.parse("GET", path, lambda: GroupInfo.from_api(data))

    async def list_groups(self, *, page_size: int = 50) -> list[GroupInfo]:
        """GET /v3/avatars, following next_token over every page."""
        items = await self._paginate("/v3/avatars", {}, page_size)
        return self._session.parse(
            "GET", "/v3/avatars", lambda: [GroupInfo.from_api(i) for i in items]
        )

    async def delete_group(self, group_id: str) -> None:
        """DELETE /v3/avatars/{group_id}."""
        await self._session.call_body("DELETE", f"/v3/avatars/{_seg(group_id)}")

    async def fetch_bytes(self, url: str) -> bytes:
        """GET an absolute URL (e.g. a preview image) without the API key; retried like GETs."""
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        response = await self._session.retrying(
            lambda: self._session.send("GET", url, authenticated=False), retryable=True
        )
        return response.content

    # -- plumbing the endpoints share

    async def _paginate(
        self, path: str, filters: Mapping[str, str | None], page_size: int
    ) -> list[Any]:
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1–{_MAX_PAGE_SIZE}, got {page_size}")
        params: dict[str, str | int] = {k: v for k, v in filters.items() if v is not None}
        params["limit"] = page_size
        items: list[Any] = []
        seen: set[str] = set()
        while True:
            body = await self._session.call_body("GET", path, params=params)
            page = body.get("data")
            if not isinstance(page, list):
                raise ApiError(200, "invalid_response", f"GET {path}: `data` is not a list")
            items.extend(page)
            token = body.get("next_token")
            # Follow next_token; has_more=false ends the walk even if a token is echoed.
            if not isinstance(token, str) or not token or body.get("has_more") is False:
                return items
            if token in seen:  # a server bug would otherwise loop forever
                raise ApiError(200, "invalid_response", f"GET {path}: next_token repeated")
            seen.add(token)
            params["token"] = token


def _seg(value: str) -> str:
    """Quote an id as one path segment, so a stray '/' or '..' cannot change the endpoint."""
    if not value:
        raise ValueError("empty id")
    return urllib.parse.quote(value, safe="")


_UPLOAD_CHUNK = 1 << 20


async def _file_chunks(
    path: Path, size_bytes: int, on_progress: Callable[[int], None] | None
) -> AsyncIterator[bytes]:
    """The file's first `size_bytes` bytes, a chunk at a time, read off the event loop."""
    f = await asyncio.to_thread(path.open, "rb")
    try:
        sent = 0
        while sent < size_bytes:
            chunk = await asyncio.to_thread(f.read, min(_UPLOAD_CHUNK, size_bytes - sent))
            if not chunk:
                # Shorter than declared: stop (the storage drops a short body); retrying
                # would not bring the bytes back.
                raise FileChangedError(f"{path.name} shrank while it was being uploaded")
            sent += len(chunk)
            yield chunk
            if on_progress is not None:
                on_progress(sent)
    finally:
        await asyncio.to_thread(f.close)

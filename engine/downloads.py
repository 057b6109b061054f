"""Downloading files that are not API calls (a look's preview image, from its CDN).

Never sends the API key: a preview URL points at a CDN, and its query (a presigned
credential) is left out of every message. Transient failures (a dropped connection, a
429 or 5xx) are retried a few times, as the API client retries its GETs.
"""

from __future__ import annotations

import urllib.parse
from types import TracebackType
from typing import Self

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from .client import is_transient, parse_retry_after, redact_url, wait_retry_after
from .errors import ApiError, TransportError
from .version import __version__

ATTEMPTS = 3
GIVE_UP_AFTER = 30.0  # seconds: a gallery is not worth a long wait for one picture


class Downloader:
    """A pooled HTTP client for plain GETs of absolute URLs; redirects followed."""

    def __init__(self, *, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None):
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,  # CDN links may redirect; no key is ever sent
            headers={"User-Agent": f"heygen-looks/{__version__}"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def fetch(self, url: str) -> bytes:
        """The body of GET url; ApiError for an error answer, TransportError without one."""
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS) | stop_before_delay(GIVE_UP_AFTER),
            wait=wait_retry_after(wait_exponential(multiplier=0.5, max=30) + wait_random(0, 1)),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get(url)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _get(self, url: str) -> bytes:
        try:
            response = await self._http.get(url)
        except httpx.RequestError as exc:
            detail = str(exc) or "no details"
            raise TransportError(f"GET {redact_url(url)}: {type(exc).__name__}: {detail}") from exc
        if response.is_success:
            return response.content
        status = response.status_code
        raise ApiError(
            status,
            f"http_{status}",
            response.reason_phrase or "error",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

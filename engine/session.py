"""The API client's plumbing: one pooled connection set, retries, deadlines, and errors read
from answers, redacted. The endpoints are engine/client.py's (HeyGenClient)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_never,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.retry import RetryBaseT
from tenacity.stop import StopBaseT, stop_base
from tenacity.wait import WaitBaseT, wait_base, wait_exponential, wait_random

from .errors import ApiError, ApiStalledError, LooksError, TransportError
from .redact import Redactor
from .settings import DEFAULT_REQUEST_TIMEOUT
from .tls import verifying_context
from .version import __version__

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "PREFLIGHT_BUDGET",
    "STALL_REQUESTS",
    "UPLOAD_BYTES_PER_SECOND",
    "ApiSession",
    "RetryPolicy",
    "SilenceWatch",
    "is_transient",
    "parse_retry_after",
    "redact_url",
    "wait_retry_after",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_:.\-]{1,255}")
_REQUEST_IN_PROGRESS = "request_in_progress"
_ERROR_TEXT_LIMIT = 300  # characters of an error message (an HTML page, say) kept

CONNECT_TIMEOUT = 10.0  # seconds to open a connection (TCP and TLS)
PREFLIGHT_BUDGET = 20.0  # seconds before an API that cannot be connected to is reported
# An upload's deadline grows with its size, as if the uplink managed at least this much.
UPLOAD_BYTES_PER_SECOND = 64 * 1024
# With no complete answer from the API for this many request deadlines, retrying stops.
STALL_REQUESTS = 3
# Decoded bytes of one answer kept at most: a gzip bomb (kilobytes on the wire, gigabytes
# inflated) or a chunked body that never ends is a failed attempt, not an exhausted memory.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# Codes that mean the same thing; the official CLI's table names validation_error beside
# the reference's invalid_parameter.
_CODE_ALIASES = {"validation_error": "invalid_parameter"}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date); None if unusable."""
    if value is None or not (text := value.strip()):
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
        return None
    return max(0.0, when.timestamp() - time.time())


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: 429, 5xx, 409 request_in_progress, transport errors.

    Not once the API has stalled (no complete answer for several request deadlines).
    """
    if isinstance(exc, ApiStalledError):
        return False
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, ApiError):
        if exc.status == 429 or exc.status >= 500:
            return True
        return exc.status == 409 and exc.code == _REQUEST_IN_PROGRESS
    return False


class wait_retry_after(wait_base):  # lower case like tenacity's own strategies
    """Wait what the server asked (ApiError.retry_after), else use `fallback`.

    A 409 request_in_progress without Retry-After waits `in_progress` instead: the original
    request is still being answered, so a short pause is enough.
    """

    def __init__(
        self,
        fallback: WaitBaseT,
        *,
        in_progress: WaitBaseT | None = None,
    ) -> None:
        self.fallback = fallback
        self.in_progress: WaitBaseT = (
            in_progress if in_progress is not None else wait_random(0.2, 1.0)
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, ApiError):
            if exc.retry_after is not None:
                return exc.retry_after
            if exc.status == 409 and exc.code == _REQUEST_IN_PROGRESS:
                return float(self.in_progress(retry_state))
        return float(self.fallback(retry_state))


def _default_stop() -> StopBaseT:
    # stop_before_delay (not stop_after_delay) also refuses a sleep that would end past the
    # deadline, e.g. a Retry-After of 10 minutes: the caller gets the 429 at once instead.
    return stop_after_attempt(8) | stop_before_delay(300)


def _default_wait() -> WaitBaseT:
    # = wait_exponential_jitter(initial=0.5, max=30), composed from parts every tenacity>=8.2
    # has: 9.x deprecates `initial` and 8.x lacks its replacement `multiplier`.
    return wait_retry_after(wait_exponential(multiplier=0.5, max=30) + wait_random(0, 1))


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried; built from tenacity stop/wait strategies."""

    stop: StopBaseT = field(default_factory=_default_stop)
    wait: WaitBaseT = field(default_factory=_default_wait)
    # Injectable so tests can record the waits instead of sleeping.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


# --------------------------------------------------------------------------- client


class SilenceWatch:
    """How long the API has been asked without giving a single complete answer.

    Counted from the first request sent after the last complete answer (from that answer if
    requests were still waiting then): a client idle for an hour is not an API silent for one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending = 0
        self._since: float | None = None  # None: nothing asked since the last answer

    def asking(self) -> None:
        self._pending += 1
        if self._since is None:
            self._since = self._clock()

    def done(self, answered: bool) -> None:
        """A request ended: with a complete answer, or not (the silence goes on)."""
        self._pending -= 1
        if answered:
            self._since = self._clock() if self._pending else None

    def seconds(self) -> float:
        """Seconds of silence so far (0 when nothing was asked since the last answer)."""
        return 0.0 if self._since is None else self._clock() - self._since


class ApiSession:
    """The plumbing under HeyGenClient: one pooled connection set, retries, deadlines, and
    errors read from answers (redacted). Endpoints are the client's."""

    @property
    def base_url(self) -> str:
        return self._base_url

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
        # Validated here so a bad key fails fast, and never echoed in the message.
        if not api_key or any(c.isspace() or not c.isprintable() for c in api_key):
            raise ValueError("API key is empty or contains whitespace/control characters")
        scheme = urllib.parse.urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"base URL must be http(s): {base_url!r}")

        if not (request_timeout > 0 and math.isfinite(request_timeout)):
            raise ValueError(f"request_timeout must be a positive number, got {request_timeout}")
        self._api_key = api_key
        self._redactor = Redactor(api_key)
        self._request_timeout = request_timeout
        self._stall_after = (
            stall_after if stall_after is not None else STALL_REQUESTS * request_timeout
        )
        self._silence = SilenceWatch()
        self._base_url = base_url.rstrip("/")
        self._retry = retry if retry is not None else RetryPolicy()
        self._on_retry = on_retry
        self._user_agent = f"heygen-looks/{__version__}"
        # The key is added per request (not as a client default) so a download never sends it
        # to a CDN; redirects stay off for API calls because httpx would forward X-Api-Key.
        # Requests beyond the pool wait here rather than in httpcore's pool, whose queue
        # handling costs grow with the number of waiting requests (measured in bench/).
        # TLS as httpx's default, its CA bundle read at the first handshake (engine/tls.py):
        # uploads and media links may be https even when the API is plain http.
        self._slots = asyncio.Semaphore(max_connections)
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            transport=transport,
            verify=verifying_context(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": self._user_agent},
            follow_redirects=False,
        )

    @property
    def request_timeout(self) -> float:
        """Seconds a whole request may take (uploads get more, by size)."""
        return self._request_timeout

    def deadline_for(self, upload_bytes: int = 0) -> float:
        """The total deadline of one attempt that sends `upload_bytes` of file content."""
        return self._request_timeout + upload_bytes / UPLOAD_BYTES_PER_SECOND

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def preflight(self) -> None:
        """One cheap authenticated GET before any work: the API answers and takes the key.

        A refused key is an ApiError naming HEYGEN_API_KEY; an API that cannot be connected
        to fails within PREFLIGHT_BUDGET seconds, naming host:port. Other failures are
        retried as usual (a blip mid-run is not this).
        """
        path = "/v3/avatars"
        try:
            await self.retrying(
                lambda: self.send("GET", path, params={"limit": 1}),
                retryable=True,
                stop=_stop_connecting(PREFLIGHT_BUDGET - CONNECT_TIMEOUT, self._retry.stop),
            )
        except (ApiError, TransportError) as e:
            failure = _preflight_error(e, self._base_url)
            if failure is e:
                raise
            raise failure from e

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send an API request with retries; return the answer's `data`."""
        body = await self.call_body(
            method, path, json=json, params=params, files=files, idempotency_key=idempotency_key
        )
        if "data" not in body:
            raise ApiError(200, "invalid_response", f"{method} {path}: answer has no `data`")
        return body["data"]

    async def call_body(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> Mapping[str, Any]:
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ValueError(
                f"invalid idempotency key {idempotency_key!r} (1–255 of A-Za-z0-9_:.-)"
            )
        snapshot = dict(params) if params is not None else None  # the caller may mutate its dict
        response = await self.retrying(
            lambda: self.send(
                method,
                path,
                json=json,
                params=snapshot,
                files=files,
                idempotency_key=idempotency_key,
            ),
            # A POST without an idempotency key could create (and bill) twice if retried.
            retryable=method != "POST" or idempotency_key is not None,
        )
        if not response.content:  # e.g. a 204 to a DELETE
            return {}
        try:
            body = self._redactor.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise ApiError(
                response.status_code,
                "invalid_response",
                f"{method} {path}: answer is not a JSON object",
                request_id=_request_id(response, self._redactor),
            )
        return body

    async def retrying(
        self,
        attempt: Callable[[], Awaitable[httpx.Response]],
        *,
        retryable: bool,
        stop: StopBaseT | None = None,
    ) -> httpx.Response:
        """Run `attempt` under the retry policy; transient failures are retried if `retryable`."""
        retry: RetryBaseT = retry_if_exception(is_transient) if retryable else retry_never
        retrying = AsyncRetrying(
            stop=stop if stop is not None else self._retry.stop,
            wait=self._retry.wait,
            sleep=self._retry.sleep,
            retry=retry,
            before_sleep=self._before_sleep,
            reraise=True,  # the caller sees the last ApiError/TransportError, not RetryError
        )
        async for state in retrying:
            with state:
                return await attempt()
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _before_sleep(self, state: RetryCallState) -> None:
        outcome, action = state.outcome, state.next_action
        if outcome is None or action is None:
            return
        exc = outcome.exception()
        if exc is None:
            return
        log.info("retry %d in %.2f s after: %s", state.attempt_number, action.sleep, exc)
        if self._on_retry is not None:
            self._on_retry(exc, action.sleep)

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """One attempt: a 2xx response, or ApiError / TransportError."""
        headers = {"Accept": "application/json"} if authenticated else {}
        if authenticated:
            headers["X-Api-Key"] = self._api_key
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        # Messages name the full URL (which API?), a CDN link without its presigned query.
        where = redact_url(url) if not authenticated else self._base_url + url
        upload = sum(len(content) for _, content, _ in (files or {}).values())
        deadline = self.deadline_for(upload)
        try:
            async with self._slots:
                if authenticated:
                    self._silence.asking()
                answered = False
                try:
                    # httpx's timeouts are per read: a server sending a byte a second would
                    # never trip them. This bounds the whole exchange, headers and body.
                    async with asyncio.timeout(deadline):
                        request = self._http.build_request(
                            method, url, json=json, params=params, files=files, headers=headers
                        )
                        response = await self._http.send(
                            request,
                            stream=True,  # read below, at most MAX_ANSWER_BYTES of it
                            follow_redirects=not authenticated,  # CDN links may redirect
                        )
                        await _read_capped(response)
                    answered = True
                finally:
                    if authenticated:
                        self._silence.done(answered)
        except TimeoutError as exc:
            self._transport_failed(
                f"{method} {where}: no complete answer within {deadline:g} s", exc, authenticated
            )
        except _AnswerTooLarge as exc:
            self._transport_failed(
                f"{method} {where}: answer larger than {MAX_ANSWER_BYTES} bytes", exc, authenticated
            )
        except httpx.RequestError as exc:
            detail = self._redactor.text(_detail(exc))
            self._transport_failed(
                f"{method} {where}: {type(exc).__name__}: {detail}", exc, authenticated
            )
        if response.is_success:
            return response
        raise _api_error(response, self._redactor)

    def _transport_failed(self, message: str, exc: BaseException, authenticated: bool) -> NoReturn:
        """Raise the TransportError of a failed attempt; ApiStalledError past stall_after."""
        silent = self._silence.seconds()
        if authenticated and silent >= self._stall_after:
            raise ApiStalledError(
                f"{message}; {self._base_url} has answered nothing for {silent:.0f} s:"
                f" giving up (a request may take {self._request_timeout:g} s,"
                " LOOKS_REQUEST_TIMEOUT)"
            ) from exc
        raise TransportError(message) from exc

    def parse(self, method: str, path: str, parse: Callable[[], _T]) -> _T:
        # An answer we cannot read is an API error, not a crash with a KeyError traceback.
        try:
            return parse()
        except (ValueError, TypeError, AttributeError) as exc:
            raise ApiError(200, "invalid_response", f"{method} {path}: {exc}") from exc

    async def put(
        self, url: str, headers: Mapping[str, str], content: AsyncIterator[bytes], size: int
    ) -> httpx.Response:
        """One PUT of `size` bytes to a storage URL (signed for the file: never the API key),
        within a deadline that grows with the size; a refusal is the storage's, redacted."""
        where = f"PUT {redact_url(url)}"
        deadline = self.deadline_for(size)
        try:
            async with self._slots, asyncio.timeout(deadline):  # a whole-PUT deadline too
                response = await self._http.request(
                    "PUT", url, content=content, headers=dict(headers)
                )
        except TimeoutError as exc:
            raise TransportError(f"{where}: not done within {deadline:g} s") from exc
        except httpx.RequestError as exc:
            detail = self._redactor.text(str(exc))
            raise TransportError(f"{where}: {type(exc).__name__}: {detail}") from exc
        if response.is_success:
            return response
        raise _storage_error(response, where, self._redactor)


def _detail(exc: BaseException) -> str:
    """The first message down the chain of causes: httpx's own is often empty (a TLS
    handshake with a server that speaks plain HTTP says nothing at the top)."""
    cause: BaseException | None = exc
    for _ in range(10):  # a chain is short; a cycle must not loop
        if cause is None:
            break
        if not isinstance(cause, Exception):  # a CancelledError says only "cancel scope …"
            break
        if str(cause):
            return str(cause) if cause is exc else f"{type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return "no details"


class _AnswerTooLarge(Exception):
    """An answer whose decoded body passed MAX_ANSWER_BYTES."""


async def _read_capped(response: httpx.Response) -> None:
    """Read a streamed answer into `response.content`, refusing more than MAX_ANSWER_BYTES."""
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise _AnswerTooLarge
            chunks.append(chunk)
        # What Response.aread() does, so .content/.json()/.text work as for a read answer.
        response._content = b"".join(chunks)
    finally:
        await response.aclose()


def redact_url(url: str) -> str:
    """The URL without its query: presigned CDN links carry credentials there."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _storage_error(response: httpx.Response, where: str, redactor: Redactor) -> ApiError:
    """An object store's refusal (XML, no API envelope) as an ApiError (redacted, then cut)."""
    text = redactor.text(_plain(response))[:2000]
    code = re.search(r"<Code>([^<]{1,100})</Code>", text)
    message = re.search(r"<Message>([^<]{1,300})</Message>", text)
    detail = ": ".join(m.group(1) for m in (code, message) if m) or (
        response.reason_phrase or "refused"
    )
    status = response.status_code
    return ApiError(
        status,
        "upload_refused",
        f"{where}: storage answered {status} {redactor.text(detail)}",
        request_id=_request_id(response, redactor),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


class _stop_connecting(stop_base):  # lower case like tenacity's own strategies
    """`otherwise`, and stop connection failures once the next try would start past `budget`."""

    def __init__(self, budget: float, otherwise: StopBaseT) -> None:
        self.budget = budget
        self.otherwise = otherwise

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.otherwise(retry_state):
            return True
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if exc is None or not _connect_failure(exc):
            return False
        upcoming = float(getattr(retry_state, "upcoming_sleep", 0.0) or 0.0)
        return (retry_state.seconds_since_start or 0.0) + upcoming > self.budget


def _preflight_error(error: ApiError | TransportError, base_url: str) -> LooksError:
    """What a failed preflight tells the user: a refused key, an unreachable host:port."""
    if isinstance(error, ApiError) and error.status in (401, 403):
        return ApiError(
            error.status,
            error.code,
            f"{base_url} refused HEYGEN_API_KEY ({error.message}); nothing was sent",
            request_id=error.request_id,
        )
    if _connect_failure(error):
        parts = urllib.parse.urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        return TransportError(f"cannot reach the API at {host}:{port}: {error}; nothing was sent")
    return error


def _connect_failure(exc: BaseException) -> bool:
    """A TransportError whose cause is a connection that could not be opened."""
    cause = exc.__cause__
    return isinstance(exc, TransportError) and isinstance(
        cause, httpx.ConnectError | httpx.ConnectTimeout
    )


def _api_error(response: httpx.Response, redactor: Redactor) -> ApiError:
    """ApiError from an error answer; code lower-cased (the API mixes cases).

    Everything the server said is redacted first, and only then cut short: a key echoed
    near the cut must not leave its first characters behind.
    """
    status = response.status_code
    request_id = _request_id(response, redactor)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    code, message, param = f"http_{status}", "", None
    try:
        body = redactor.loads(response.content)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        if isinstance(error.get("code"), str) and error["code"]:
            code = error["code"]
        if isinstance(error.get("message"), str):
            message = error["message"]
        if isinstance(error.get("param"), str) and error["param"]:
            param = error["param"]
            if param not in message:
                message = f"{message} (param {param})" if message else f"param {param}"
    if not message:
        reason = redactor.text(response.reason_phrase or "error")
        text = "" if isinstance(body, Mapping) else redactor.text(_plain(response))
        message = f"{reason}: {text}" if text.strip() else reason
    return ApiError(
        status,
        _clip(_CODE_ALIASES.get(code.lower(), code.lower()), 100),
        _clip(message, _ERROR_TEXT_LIMIT),
        request_id=request_id,
        retry_after=retry_after,
        param=param,
    )


def _plain(response: httpx.Response) -> str:
    """An answer's text for a message, NULs dropped: UTF-16 read as UTF-8 (no charset given)
    puts one between every two characters, and the key would not show to be masked."""
    return response.text.replace("\0", "")


def _request_id(response: httpx.Response, redactor: Redactor) -> str | None:
    """X-Request-Id (what HeyGen's support asks for), redacted: a server may echo anything."""
    return _clip(redactor.text(response.headers.get("X-Request-Id", "")), 100) or None


def _clip(text: str, limit: int) -> str:
    """Server text as one line of at most `limit` characters (an error page, a huge message).

    Callers redact first: cutting first could leave a key's first characters behind.
    """
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."

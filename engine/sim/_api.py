"""The simulated HeyGen v3 avatar API: validation, state and faults, with no sockets.

`Simulator.handle` maps a parsed `Request` to a `Response`. Everything runs on one event loop,
so state needs no locks; look status is computed from timestamps when read, never by timers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import heapq
import html
import json
import math
import os
import random
import re
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engine.errors import UsageError
from engine.sim._config import RUNTIME_FIELDS, SimConfig
from engine.sim._png import PREVIEW_HEIGHT, PREVIEW_WIDTH, preview_png
from engine.sim._uploads import DIRECT_MAX_BYTES, DirectUploads, UploadSink, valid_sha256

# Documented cap of POST /v3/assets (and of a decoded base64 file); a module constant so tests
# can lower it instead of sending 32 MB.
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
MAX_PROMPT_CHARS = 1000
MAX_REFERENCE_IMAGES = 3
MAX_LIST_LIMIT = 50
DEFAULT_LIST_LIMIT = 20
SUPPORTED_API_ENGINES = ("avatar_4_quality", "avatar_4_turbo")

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime"})
_IMAGE_EXTS = frozenset({"png", "jpg", "jpeg", "webp", "gif", "bmp", "heic", "tif", "tiff"})
_VIDEO_EXTS = frozenset({"mp4", "webm", "mov", "m4v", "avi", "mkv"})
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_:.\-]{1,255}")
_AVATAR_TYPES = {"prompt": "studio_avatar", "photo": "photo_avatar", "digital_twin": "digital_twin"}
_CREATE_FIELDS = {
    "prompt": frozenset(
        {"type", "name", "prompt", "avatar_id", "avatar_group_id", "reference_images"}
    ),
    "photo": frozenset({"type", "name", "file", "avatar_group_id"}),
    "digital_twin": frozenset({"type", "name", "file", "avatar_group_id"}),
}
_FILE_FIELDS = {
    "url": frozenset({"type", "url"}),
    "asset_id": frozenset({"type", "asset_id"}),
    "base64": frozenset({"type", "media_type", "data"}),
}
_DIRECT_FIELDS = frozenset({"filename", "content_type", "size_bytes", "checksum_sha256"})
# Answers a retry must re-execute rather than replay: transient by nature.
_NOT_REPLAYED = frozenset({409, 429})

JSON = "application/json"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request; header names are lower case."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """One answer; `drop` asks the server to close the connection without sending it."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


def _dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def ok(data: object, status: int = 200, **top: object) -> Response:
    return Response(status, _dump({"data": data, **top}))


def error(
    status: int, code: str, message: str, param: str | None = None, headers: Iterable[Any] = ()
) -> Response:
    err: dict[str, str] = {"code": code, "message": message}
    if param is not None:
        err["param"] = param
    return Response(status, _dump({"error": err}), headers=tuple(headers))


class Reject(Exception):
    """Raised anywhere inside a handler to answer with an error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.response = error(status, code, message, param, headers)


def invalid(param: str | None, message: str) -> Reject:
    return Reject(400, "invalid_parameter", message, param)


def not_found(what: str, ident: str) -> Reject:
    return Reject(404, "not_found", f"{what} {ident!r} not found")


@dataclass
class _Group:
    id: str
    api_key: str
    name: str
    created_at: float
    seq: int
    consent_status: str | None = None
    consent_token: str | None = None
    reroute_url: str | None = None
    auto_consent_at: float | None = None
    looks: list[tuple[int, str]] = field(default_factory=list)  # (seq, look id), creation order


@dataclass
class _Look:
    id: str
    api_key: str
    group_id: str
    name: str
    avatar_type: str
    created_at: float
    seq: int
    ready_at: float | None  # None while waiting for consent
    fails: bool
    request: dict[str, Any]
    idempotency_key: str | None
    tags: list[str] = field(default_factory=list)
    started_at: float | None = None  # when its generation started (None: waits for consent)


@dataclass(frozen=True)
class _Asset:
    id: str
    api_key: str
    mime_type: str
    size_bytes: int
    sha256: str
    created_at: float
    status: str = "completed"  # "pending_upload" until a direct upload is completed


@dataclass
class _Idem:
    done: bool
    expires_at: float
    status: int = 0
    body: str = ""
    content_type: str = JSON


@dataclass(frozen=True)
class _Ctx:
    req: Request
    key: str
    params: dict[str, str]
    now: float
    idempotency_key: str | None


_Handler = Callable[["Simulator", _Ctx], Response]


@dataclass
class _Stats:
    requests: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    max_jobs_in_flight: int = 0


def _kind_of_mime(mime: str) -> str | None:
    if mime in IMAGE_TYPES:
        return "image"
    if mime in VIDEO_TYPES:
        return "video"
    return None


def sniff_mime(data: bytes) -> str | None:
    """The media type of an upload from its first bytes, for parts sent without a usable type."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    return None


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 2048:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    # Clients commonly send null for an optional field; treat it as absent.
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(name, f"{name} must be a non-empty string")
    return value


def _required_str(body: Mapping[str, Any], name: str) -> str:
    if name not in body or body[name] is None:
        raise invalid(name, f"{name} is required")
    value = body[name]
    if not isinstance(value, str):
        raise invalid(name, f"{name} must be a string")
    if not value.strip():
        raise invalid(name, f"{name} must not be empty")
    return value


def _json_object(req: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    if allow_empty and not req.body.strip():
        return {}
    try:
        body = json.loads(req.body)
    except (ValueError, UnicodeDecodeError):
        raise invalid(None, "request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise invalid(None, "request body must be a JSON object")
    return body


def _reject_unknown(body: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for name in sorted(set(body) - allowed):
        raise invalid(f"{prefix}{name}", f"unknown field {prefix}{name}")


def _summarise(value: Any) -> Any:
    """The create body for /_sim/state, base64 payloads replaced by their size and digest."""
    if isinstance(value, dict):
        if value.get("type") == "base64" and isinstance(value.get("data"), str):
            raw = value["data"].encode()
            return {
                **value,
                "data": {"length": len(raw), "sha256": hashlib.sha256(raw).hexdigest()},
            }
        return {k: _summarise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_summarise(v) for v in value]
    return value


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Parts of a multipart/form-data body by field name: (content type, bytes)."""
    header = BytesHeaderParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode())
    if header.get_content_type() != "multipart/form-data":
        raise invalid(None, "request body must be multipart/form-data")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise invalid(None, "multipart/form-data needs a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    # chunks[0] is the preamble; the last chunk starts with "--" (the close delimiter).
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise invalid(None, "malformed multipart/form-data body")
    parts: dict[str, tuple[str | None, bytes]] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise invalid(None, "malformed multipart/form-data body")
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise invalid(None, "malformed multipart/form-data part")
        msg = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = msg.get_param("name", header="content-disposition")
        if isinstance(name, str):
            ctype = msg.get("content-type")
            parts.setdefault(name, (msg.get_content_type() if ctype else None, content))
    return parts


def _encode_token(kind: str, filters: Mapping[str, str | None], after: int) -> str:
    raw = _dump({"k": kind, "f": dict(filters), "a": after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, kind: str, filters: Mapping[str, str | None]) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after = data["a"]
        valid = (
            data["k"] == kind
            and data["f"] == dict(filters)
            and isinstance(after, int)
            and not isinstance(after, bool)
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise invalid("token", "token is not a valid page token for this listing")
    return int(after)


class Simulator:
    """The API's state machine; `handle` is the only entry point the server needs."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        base_url: str = "http://127.0.0.1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or SimConfig()
        self.base_url = base_url
        self.mutations = 0  # bumped on every state change, so periodic saves can skip idle times
        self._clock = clock
        self._clear()
        path = self.config.state_file
        if path is not None and path.exists():
            self.load(path)
        elif path is not None:
            # Written now, so a path that cannot take it fails at start, not at shutdown.
            try:
                self.save(path)
            except OSError as e:
                raise UsageError(f"sim: cannot write state file {path}: {e.strerror}") from e

    # ----- state -----

    def _clear(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._seq = 0
        self._groups: dict[str, _Group] = {}
        self._looks: dict[str, _Look] = {}
        self._assets: dict[str, _Asset] = {}
        self._asset_data: dict[str, bytes] = {}
        self._uploads = DirectUploads()
        # Durations come from their own stream, so ids and faults do not shift them.
        self._timing_rng = random.Random(f"{self.config.seed}:generation")
        self._consent_tokens: dict[str, str] = {}  # token -> group id
        self._group_order: dict[str, list[tuple[int, str]]] = {}  # per key; deletions lazy
        self._look_order: dict[str, list[tuple[int, str]]] = {}
        self._jobs: dict[str, list[tuple[float, str]]] = {}  # per key: heap of (ready_at, look)
        self._consent_due: list[tuple[float, str]] = []  # heap of (auto-approve time, group)
        self._idem: dict[tuple[str, str], _Idem] = {}
        self._credits = self.config.credits
        self._stats = _Stats()

    def reset(self) -> None:
        """Forget everything: state, stats, idempotency answers; credits back to configured."""
        self._clear()
        self.mutations += 1

    def _new_id(self, prefix: str, taken: Mapping[str, object]) -> str:
        while True:
            ident = f"{prefix}_{self._rng.getrandbits(64):016x}"
            if ident not in taken:
                return ident

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _status(self, look: _Look, now: float) -> str:
        if look.ready_at is None:
            return "pending_consent"
        if now < look.ready_at:
            return "processing"
        return "failed" if look.fails else "completed"

    def _preview_url(self, look_id: str) -> str:
        return f"{self.base_url}/_sim/previews/{look_id}.png"

    def look_view(self, look: _Look, now: float) -> dict[str, Any]:
        status = self._status(look, now)
        view: dict[str, Any] = {
            "id": look.id,
            "name": look.name,
            "avatar_type": look.avatar_type,
            "group_id": look.group_id,
            "status": status,
            "tags": list(look.tags),
        }
        if status == "completed":
            view["preview_image_url"] = self._preview_url(look.id)
            view["image_width"] = PREVIEW_WIDTH
            view["image_height"] = PREVIEW_HEIGHT
            view["preferred_orientation"] = "portrait"
            view["supported_api_engines"] = list(SUPPORTED_API_ENGINES)
        elif status == "failed":
            view["error"] = {
                "code": "generation_failed",
                "message": "the simulated generation of this look failed",
            }
        return view

    def group_view(self, group: _Group, now: float) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "created_at": int(group.created_at),
            "looks_count": len(group.looks),
            "consent_status": group.consent_status,
        }
        if group.looks:
            # The group's status is that of its first (base) look.
            view["status"] = self._status(self._looks[group.looks[0][1]], now)
        for _, look_id in group.looks:
            if self._status(self._looks[look_id], now) == "completed":
                view["preview_image_url"] = self._preview_url(look_id)
                break
        return view

    # ----- jobs and consent (lazy, driven by timestamps) -----

    def _advance(self, now: float) -> None:
        """Carry out auto-consents that fell due, each at the time it was due."""
        due = self._consent_due
        while due and due[0][0] <= now:
            at, group_id = heapq.heappop(due)
            group = self._groups.get(group_id)
            if group is not None and group.auto_consent_at == at:
                self._approve(group, at)

    def _approve(self, group: _Group, at: float) -> None:
        if group.consent_status != "pending":
            return
        group.consent_status = "approved"
        group.auto_consent_at = None
        self.mutations += 1
        for _, look_id in group.looks:
            look = self._looks[look_id]
            if look.ready_at is None:
                look.ready_at = at + self._duration()
                self._start_job(look, at)

    def _duration(self) -> float:
        """One job's generation time: fixed, or log-uniform over the configured range."""
        low, high = self.config.generation_seconds, self.config.generation_seconds_max
        if high is None or high == low:
            return low
        return math.exp(self._timing_rng.uniform(math.log(low), math.log(high)))

    def _start_job(self, look: _Look, at: float) -> None:
        # Events arrive in time order (creates at "now", auto-consents at their due time, which
        # is after the previous request), so pruning at `at` never drops a job still running.
        assert look.ready_at is not None
        look.started_at = at
        heap = self._jobs.setdefault(look.api_key, [])
        heapq.heappush(heap, (look.ready_at, look.id))
        running = len(self._running_jobs(look.api_key, at))
        self._stats.max_jobs_in_flight = max(self._stats.max_jobs_in_flight, running)

    def _running_jobs(self, key: str, now: float) -> list[tuple[float, str]]:
        """The key's heap of (end, look id) for looks processing at `now`; [0] ends first."""
        heap = self._jobs.get(key)
        if not heap:
            return []
        while heap and heap[0][0] <= now:
            heapq.heappop(heap)
        return heap

    def _forget_jobs(self, key: str, look_ids: set[str]) -> None:
        """Deleted looks stop counting as jobs (rare, so a rebuild is fine)."""
        heap = self._jobs.get(key)
        if heap and any(lid in look_ids for _, lid in heap):
            heap[:] = [entry for entry in heap if entry[1] not in look_ids]
            heapq.heapify(heap)

    # ----- the HTTP surface -----

    async def handle(self, req: Request) -> Response:
        """Answer one request (the /_sim/ introspection routes or the simulated /v3 API)."""
        if req.path.startswith("/_sim/"):
            self._advance(self._clock())
            return self._handle_sim(req)
        route, response = await self._handle_v3(req)
        stats = self._stats
        stats.requests += 1
        stats.by_route[route] += 1
        if response.drop:
            stats.dropped += 1
        else:
            stats.by_status[str(response.status)] += 1
        return response

    async def _handle_v3(self, req: Request) -> tuple[str, Response]:
        template, handler, params, allowed = _match(_V3_ROUTES, req.method, req.path)
        route = f"{req.method} {template or '(unknown)'}"
        config = self.config
        raw_key = req.headers.get("x-api-key", "")
        authorized = bool(raw_key) and config.api_key in (None, raw_key)
        # Only a digest of the key scopes what a caller owns: no key is kept in memory longer
        # than the request, nor written to a --state file.
        key = "key-" + hashlib.sha256(raw_key.encode()).hexdigest()[:16]
        idem: str | None = None
        early: Response | None = None
        replay: _Idem | None = None
        registered = False

        if not authorized:
            early = error(401, "unauthorized", "missing or invalid X-Api-Key header")
        elif template is None:
            early = error(404, "not_found", f"no route for {req.path}")
        elif handler is None:
            early = error(
                405,
                "method_not_allowed",
                f"{req.method} is not allowed on {template}",
                headers=[("Allow", ", ".join(allowed))],
            )
        elif route in _IDEMPOTENT and "idempotency-key" in req.headers:
            # Decided on arrival, before any latency: a twin that arrives while this one is
            # still being answered must see it in progress.
            idem = req.headers["idempotency-key"]
            now = self._clock()
            entry = self._idem.get((key, idem))
            if entry is not None and entry.expires_at <= now:
                del self._idem[(key, idem)]
                entry = None
            if not _IDEMPOTENCY_KEY.fullmatch(idem):
                early = error(
                    400,
                    "invalid_parameter",
                    "Idempotency-Key must be 1-255 characters of A-Z a-z 0-9 _ : . -",
                    "Idempotency-Key",
                )
            elif entry is None:
                self._idem[(key, idem)] = _Idem(False, math.inf)
                registered = True
            elif not entry.done:
                early = error(
                    409,
                    "request_in_progress",
                    "a request with this Idempotency-Key is still being processed",
                )
            else:
                replay = entry

        try:
            if config.latency_ms > 0:
                await asyncio.sleep(config.latency_ms / 1000)
            if self.config.fail_rate > 0 and self._rng.random() < self.config.fail_rate:
                return route, error(500, "internal_error", "simulated internal error")
            if early is not None:
                return route, early
            if replay is not None:
                return route, Response(
                    replay.status,
                    replay.body.encode(),
                    replay.content_type,
                    (("Idempotent-Replayed", "true"),),
                )
            assert handler is not None
            now = self._clock()
            self._advance(now)
            try:
                response = handler(self, _Ctx(req, key, params, now, idem))
            except Reject as e:
                response = e.response
            if registered and response.status < 500 and response.status not in _NOT_REPLAYED:
                self._idem[(key, idem or "")] = _Idem(
                    True,
                    now + self.config.idempotency_ttl,
                    response.status,
                    response.body.decode(),
                    response.content_type,
                )
                registered = False
                self.mutations += 1
            drop_rate = self.config.drop_rate
            dropped = (
                route in _DROPPABLE
                and response.status < 300
                and drop_rate > 0
                and self._rng.random() < drop_rate
            )
            if dropped:
                response = replace(response, drop=True)
            return route, response
        finally:
            if registered:
                self._idem.pop((key, idem or ""), None)

    # ----- /v3 handlers -----

    def _owned_group(self, ctx: _Ctx, group_id: str) -> _Group:
        group = self._groups.get(group_id)
        if group is None or group.api_key != ctx.key:
            raise not_found("avatar group", group_id)
        return group

    def _owned_look(self, ctx: _Ctx, look_id: str) -> _Look:
        look = self._looks.get(look_id)
        if look is None or look.api_key != ctx.key:
            raise not_found("look", look_id)
        return look

    def _media(self, ctx: _Ctx, value: object, param: str, kind: str) -> None:
        """Validate one `file` / reference image object; `kind` is "image" or "video"."""
        what = "an image" if kind == "image" else "a video"
        if not isinstance(value, dict):
            raise invalid(param, f"{param} must be an object with a type")
        ftype = value.get("type")
        if not isinstance(ftype, str) or ftype not in _FILE_FIELDS:
            raise invalid(f"{param}.type", f"{param}.type must be one of url, asset_id, base64")
        _reject_unknown(value, _FILE_FIELDS[ftype], f"{param}.")
        if ftype == "url":
            url = value.get("url")
            if not _is_http_url(url):
                raise invalid(f"{param}.url", f"{param}.url must be an http or https URL")
            assert isinstance(url, str)
            name = urlsplit(url).path.rsplit("/", 1)[-1]
            ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            wrong = _VIDEO_EXTS if kind == "image" else _IMAGE_EXTS
            if ext in wrong:
                raise invalid(f"{param}.url", f"{param}.url must point to {what}")
        elif ftype == "asset_id":
            asset_id = value.get("asset_id")
            if not isinstance(asset_id, str) or not asset_id:
                raise invalid(f"{param}.asset_id", f"{param}.asset_id must be a string")
            asset = self._assets.get(asset_id)
            if asset is None or asset.api_key != ctx.key:
                raise invalid(f"{param}.asset_id", f"asset {asset_id!r} not found")
            if asset.status != "completed":
                raise Reject(
                    400,
                    "asset_not_available",
                    f"asset {asset_id!r} is {asset.status}: a direct upload is usable only"
                    " once POST /v3/assets/{asset_id}/complete succeeded",
                    f"{param}.asset_id",
                )
            if _kind_of_mime(asset.mime_type) != kind:
                raise invalid(f"{param}.asset_id", f"asset {asset_id!r} is not {what}")
        else:
            media_type = value.get("media_type")
            accepted = IMAGE_TYPES if kind == "image" else VIDEO_TYPES
            if not isinstance(media_type, str) or media_type not in accepted:
                raise invalid(
                    f"{param}.media_type",
                    f"{param}.media_type must be one of {', '.join(sorted(accepted))}",
                )
            data = value.get("data")
            if not isinstance(data, str) or not data:
                raise invalid(f"{param}.data", f"{param}.data must be a base64 string")
            if len(data) * 3 // 4 > MAX_UPLOAD_BYTES + 2:
                raise Reject(413, "payload_too_large", f"{param}.data is larger than 32 MB")
            try:
                decoded = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise invalid(f"{param}.data", f"{param}.data is not valid base64") from None
            if not decoded:
                raise invalid(f"{param}.data", f"{param}.data is empty")

    def _create(self, ctx: _Ctx) -> Response:
        body = _json_object(ctx.req)
        ctype = body.get("type")
        if ctype is None:
            raise invalid("type", "type is required")
        if not isinstance(ctype, str) or ctype not in _CREATE_FIELDS:
            raise invalid("type", "type must be one of prompt, photo, digital_twin")
        _reject_unknown(body, _CREATE_FIELDS[ctype])
        name = _required_str(body, "name")
        avatar_id: str | None = None
        if ctype == "prompt":
            prompt = _required_str(body, "prompt")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise invalid("prompt", f"prompt must be at most {MAX_PROMPT_CHARS} characters")
            avatar_id = _optional_str(body, "avatar_id")
            refs = body.get("reference_images")
            if refs is not None:
                if not isinstance(refs, list):
                    raise invalid("reference_images", "reference_images must be an array")
                if len(refs) > MAX_REFERENCE_IMAGES:
                    raise invalid(
                        "reference_images",
                        f"at most {MAX_REFERENCE_IMAGES} reference_images are allowed",
                    )
                for i, ref in enumerate(refs):
                    self._media(ctx, ref, f"reference_images[{i}]", "image")
        else:
            if body.get("file") is None:
                raise invalid("file", "file is required")
            self._media(ctx, body["file"], "file", "video" if ctype == "digital_twin" else "image")
        group_id = _optional_str(body, "avatar_group_id")

        # create-avatar.md's error table, with its upper-case codes.
        reference: _Look | None = None
        if avatar_id is not None:
            reference = self._looks.get(avatar_id)
            if reference is None or reference.api_key != ctx.key:
                raise Reject(
                    404, "AVATAR_NOT_FOUND", f"avatar {avatar_id!r} not found", "avatar_id"
                )
        group = self._owned_group(ctx, group_id) if group_id is not None else None
        if reference is not None:
            if group is not None and reference.group_id != group.id:
                raise Reject(
                    400,
                    "INVALID_PARAMETER",
                    f"avatar {reference.id!r} does not belong to avatar group {group.id!r}",
                    "avatar_id",
                )
            if self._status(reference, ctx.now) != "completed":
                raise Reject(
                    400,
                    "INVALID_PARAMETER",
                    f"avatar {reference.id!r} has no usable image (generation not completed)",
                    "avatar_id",
                )
            if group is None:
                group = self._groups[reference.group_id]

        if self._credits is not None and self._credits <= 0:
            raise Reject(402, "insufficient_credit", "no credits left for avatar creation")
        running = self._running_jobs(ctx.key, ctx.now)
        if len(running) >= self.config.max_jobs:
            wait = max(1, math.ceil(running[0][0] - ctx.now))
            raise Reject(
                429,
                "rate_limit_exceeded",
                f"{len(running)} generation jobs are in progress (limit {self.config.max_jobs})",
                headers=[("Retry-After", str(wait))],
            )

        if self._credits is not None:
            self._credits -= 1
        if group is None:
            group = _Group(
                self._new_id("group", self._groups),
                ctx.key,
                name,
                ctx.now,
                self._next_seq(),
            )
            self._groups[group.id] = group
            self._group_order.setdefault(ctx.key, []).append((group.seq, group.id))
        waits_for_consent = False
        if ctype == "digital_twin":
            if group.consent_status is None:
                group.consent_status = "pending"
            waits_for_consent = group.consent_status != "approved"
        fails = self.config.failed_look_rate > 0 and self._rng.random() < (
            self.config.failed_look_rate
        )
        look = _Look(
            id=self._new_id("look", self._looks),
            api_key=ctx.key,
            group_id=group.id,
            name=name,
            avatar_type=_AVATAR_TYPES[ctype],
            created_at=ctx.now,
            seq=self._next_seq(),
            ready_at=None if waits_for_consent else ctx.now + self._duration(),
            fails=fails,
            request=_summarise(body),
            idempotency_key=ctx.idempotency_key,
        )
        self._looks[look.id] = look
        group.looks.append((look.seq, look.id))
        self._look_order.setdefault(ctx.key, []).append((look.seq, look.id))
        if look.ready_at is not None:
            self._start_job(look, ctx.now)
        self.mutations += 1
        return ok(
            {
                "avatar_item": self.look_view(look, ctx.now),
                "avatar_group": self.group_view(group, ctx.now),
            }
        )

    def _list_params(self, ctx: _Ctx) -> tuple[int, str | None, dict[str, str]]:
        try:
            query = parse_qs(ctx.req.query, keep_blank_values=True, strict_parsing=False)
        except ValueError:
            raise invalid(None, "malformed query string") from None
        single = {k: v[0] for k, v in query.items()}
        raw_limit = single.get("limit")
        limit = DEFAULT_LIST_LIMIT
        if raw_limit is not None:
            if not raw_limit.isascii() or not raw_limit.isdigit():
                raise invalid("limit", "limit must be an integer from 1 to 50")
            limit = int(raw_limit)
            if not 1 <= limit <= MAX_LIST_LIMIT:
                raise invalid("limit", "limit must be an integer from 1 to 50")
        token = single.get("token") or None
        return limit, token, single

    def _page(
        self,
        entries: list[tuple[int, str]],
        after: int,
        limit: int,
        keep: Callable[[str], bool],
    ) -> tuple[list[str], int | None]:
        """Up to `limit` ids after sequence `after`, and the cursor of the next page if any."""
        out: list[str] = []
        last = after
        i = bisect_right(entries, (after, "\U0010ffff"))
        n = len(entries)
        while i < n:
            seq, ident = entries[i]
            i += 1
            if keep(ident):
                if len(out) == limit:
                    return out, last
                out.append(ident)
                last = seq
        return out, None

    def _list_groups(self, ctx: _Ctx) -> Response:
        limit, token, _ = self._list_params(ctx)
        after = _decode_token(token, "groups", {}) if token else 0
        ids, more = self._page(
            self._group_order.get(ctx.key, []), after, limit, self._groups.__contains__
        )
        return ok(
            [self.group_view(self._groups[i], ctx.now) for i in ids],
            has_more=more is not None,
            next_token=None if more is None else _encode_token("groups", {}, more),
        )

    def _list_looks(self, ctx: _Ctx) -> Response:
        limit, token, query = self._list_params(ctx)
        group_id = query.get("group_id") or None
        avatar_type = query.get("avatar_type") or None
        if avatar_type is not None and avatar_type not in _AVATAR_TYPES.values():
            raise invalid(
                "avatar_type",
                "avatar_type must be one of studio_avatar, photo_avatar, digital_twin",
            )
        filters = {"group_id": group_id, "avatar_type": avatar_type}
        after = _decode_token(token, "looks", filters) if token else 0
        if group_id is not None:
            group = self._groups.get(group_id)
            # An unknown group is an empty filter result, as for any other filter value.
            entries = group.looks if group is not None and group.api_key == ctx.key else []
        else:
            entries = self._look_order.get(ctx.key, [])
        looks = self._looks

        def keep(ident: str) -> bool:
            look = looks.get(ident)
            return look is not None and (avatar_type is None or look.avatar_type == avatar_type)

        ids, more = self._page(entries, after, limit, keep)
        return ok(
            [self.look_view(looks[i], ctx.now) for i in ids],
            has_more=more is not None,
            next_token=None if more is None else _encode_token("looks", filters, more),
        )

    def _get_group(self, ctx: _Ctx) -> Response:
        return ok(self.group_view(self._owned_group(ctx, ctx.params["group_id"]), ctx.now))

    def _delete_group_record(self, group: _Group) -> None:
        for _, look_id in group.looks:
            self._looks.pop(look_id, None)
        self._forget_jobs(group.api_key, {look_id for _, look_id in group.looks})
        del self._groups[group.id]
        if group.consent_token is not None:
            self._consent_tokens.pop(group.consent_token, None)
        self.mutations += 1

    def _delete_group(self, ctx: _Ctx) -> Response:
        group = self._owned_group(ctx, ctx.params["group_id"])
        self._delete_group_record(group)
        return ok({"id": group.id})

    def _get_look(self, ctx: _Ctx) -> Response:
        return ok(self.look_view(self._owned_look(ctx, ctx.params["look_id"]), ctx.now))

    def _patch_look(self, ctx: _Ctx) -> Response:
        look = self._owned_look(ctx, ctx.params["look_id"])
        body = _json_object(ctx.req)
        _reject_unknown(body, frozenset({"name"}))
        look.name = _required_str(body, "name")
        self.mutations += 1
        return ok(self.look_view(look, ctx.now))

    def _delete_look(self, ctx: _Ctx) -> Response:
        look = self._owned_look(ctx, ctx.params["look_id"])
        group = self._groups[look.group_id]
        if len(group.looks) == 1:
            self._delete_group_record(group)
        else:
            group.looks.remove((look.seq, look.id))
            del self._looks[look.id]
            self._forget_jobs(look.api_key, {look.id})
            self.mutations += 1
        return ok({"id": look.id})

    def _consent(self, ctx: _Ctx) -> Response:
        group = self._owned_group(ctx, ctx.params["group_id"])
        body = _json_object(ctx.req, allow_empty=True)
        _reject_unknown(body, frozenset({"reroute_url"}))
        reroute = body.get("reroute_url")
        if reroute is not None and not _is_http_url(reroute):
            raise invalid("reroute_url", "reroute_url must be an http or https URL")
        if group.consent_status is None:
            raise invalid("group_id", "this avatar group needs no consent (only digital twins do)")
        if group.consent_token is None:
            group.consent_token = self._new_id("consent", self._consent_tokens)
            self._consent_tokens[group.consent_token] = group.id
        if isinstance(reroute, str):
            group.reroute_url = reroute
        auto = self.config.auto_consent
        if group.consent_status == "pending" and auto is not None and group.auto_consent_at is None:
            group.auto_consent_at = ctx.now + auto
            heapq.heappush(self._consent_due, (group.auto_consent_at, group.id))
            self._advance(ctx.now)  # auto_consent=0 approves at once
        self.mutations += 1
        return ok(
            {
                "avatar_group": self.group_view(group, ctx.now),
                "url": f"{self.base_url}/_sim/consent/{group.consent_token}",
            }
        )

    def _upload_asset(self, ctx: _Ctx) -> Response:
        ctype = ctx.req.headers.get("content-type", "")
        parts = _parse_multipart(ctype, ctx.req.body)
        if "file" not in parts:
            raise invalid("file", "multipart field file is required")
        part_type, data = parts["file"]
        if len(data) > MAX_UPLOAD_BYTES:
            raise Reject(413, "payload_too_large", "file is larger than 32 MB", "file")
        if not data:
            raise invalid("file", "file is empty")
        mime = part_type if part_type and _kind_of_mime(part_type) else sniff_mime(data)
        if mime is None:
            raise invalid(
                "file", "file must be png, jpeg, webp, mp4, webm or quicktime (mov) media"
            )
        asset = _Asset(
            self._new_id("asset", self._assets),
            ctx.key,
            mime,
            len(data),
            hashlib.sha256(data).hexdigest(),
            ctx.now,
        )
        self._assets[asset.id] = asset
        self._asset_data[asset.id] = data
        self.mutations += 1
        return ok(
            {
                "asset_id": asset.id,
                "url": f"{self.base_url}/_sim/assets/{asset.id}",
                "mime_type": asset.mime_type,
                "size_bytes": asset.size_bytes,
            }
        )

    def _direct_init(self, ctx: _Ctx) -> Response:
        body = _json_object(ctx.req)
        _reject_unknown(body, _DIRECT_FIELDS)
        filename = _required_str(body, "filename")
        content_type = _required_str(body, "content_type")
        if content_type not in IMAGE_TYPES | VIDEO_TYPES:
            raise invalid("content_type", "content_type must be an image or video media type")
        size = body.get("size_bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise invalid("size_bytes", "size_bytes must be a positive integer")
        if size > DIRECT_MAX_BYTES:
            raise Reject(
                413, "payload_too_large", f"size_bytes is over max_bytes {DIRECT_MAX_BYTES}"
            )
        checksum = body.get("checksum_sha256")
        if checksum is not None and not valid_sha256(checksum):
            raise invalid("checksum_sha256", "checksum_sha256 must be 64 lower-case hex digits")
        asset_id = self._new_id("asset", self._assets)
        self._assets[asset_id] = _Asset(
            asset_id, ctx.key, content_type, size, checksum or "", ctx.now, "pending_upload"
        )
        _, answer = self._uploads.start(
            asset_id, ctx.key, {**body, "filename": filename}, ctx.now, self.config, self.base_url
        )
        self.mutations += 1
        return ok(answer)

    def _direct_complete(self, ctx: _Ctx) -> Response:
        asset_id = ctx.params["asset_id"]
        asset = self._assets.get(asset_id)
        if asset is None or asset.api_key != ctx.key:
            raise not_found("asset", asset_id)
        body = _json_object(ctx.req, allow_empty=True)
        _reject_unknown(body, frozenset({"checksum_sha256"}))
        checksum = body.get("checksum_sha256")
        if checksum is not None and not valid_sha256(checksum):
            raise invalid("checksum_sha256", "checksum_sha256 must be 64 lower-case hex digits")
        if asset.status == "pending_upload":
            upload = self._uploads.pending.get(asset_id)
            if upload is None or upload.received_sha256 is None:
                raise Reject(
                    409,
                    "upload_incomplete",
                    f"no complete upload was received for asset {asset_id!r}; PUT its bytes"
                    " to the upload_url first",
                )
            mime = sniff_mime(upload.received_head) or upload.content_type
            asset = replace(
                asset, status="completed", sha256=upload.received_sha256, mime_type=mime
            )
            self._assets[asset_id] = asset
            del self._uploads.pending[asset_id]
            self.mutations += 1
        if checksum is not None and checksum != asset.sha256:
            raise Reject(
                400,
                "checksum_mismatch",
                "checksum_sha256 differs from the uploaded bytes",
                "checksum_sha256",
            )
        return ok(
            {
                "asset_id": asset.id,
                "url": f"{self.base_url}/_sim/assets/{asset.id}",
                "mime_type": asset.mime_type,
                "size_bytes": asset.size_bytes,
                "status": asset.status,
            }
        )

    def upload_sink(self, path: str, query: str, headers: Mapping[str, str]) -> UploadSink:
        """Where the server streams a PUT to an upload_url (storage, not the /v3 API)."""
        self._stats.by_route["PUT /_sim/uploads/{asset_id}"] += 1
        return self._uploads.sink(path, query, headers, self._clock())

    def is_upload_put(self, method: str, path: str) -> bool:
        return self._uploads.is_upload_put(method, path)

    def _asset_view(self, asset: _Asset, now: float) -> dict[str, Any]:
        status = asset.status
        upload = self._uploads.pending.get(asset.id)
        if status == "pending_upload" and (
            upload is None or (upload.expires_at <= now and upload.received_sha256 is None)
        ):
            status = "expired"  # its URL can no longer take the bytes: never usable
        return {
            "asset_id": asset.id,
            "status": status,
            "mime_type": asset.mime_type,
            "size_bytes": asset.size_bytes,
            "created_at": asset.created_at,
        }

    # ----- /_sim/ introspection -----

    def _handle_sim(self, req: Request) -> Response:
        template, handler, params, allowed = _match(_SIM_ROUTES, req.method, req.path)
        if template is None:
            return error(404, "not_found", f"no route for {req.path}")
        if handler is None:
            return error(
                405,
                "method_not_allowed",
                f"{req.method} is not allowed on {template}",
                headers=[("Allow", ", ".join(allowed))],
            )
        ctx = _Ctx(req, "", params, self._clock(), None)
        try:
            return handler(self, ctx)
        except Reject as e:
            return e.response

    def state(self) -> dict[str, Any]:
        """Every group and look as the API shows them, looks with their create request."""
        now = self._clock()
        self._advance(now)
        looks = []
        for look in self._looks.values():
            view = self.look_view(look, now)
            view["request"] = look.request
            view["idempotency_key"] = look.idempotency_key
            view["started_at"] = look.started_at
            done = look.ready_at is not None and now >= look.ready_at
            view["finished_at"] = look.ready_at if done else None
            looks.append(view)
        return {"groups": [self.group_view(g, now) for g in self._groups.values()], "looks": looks}

    def assets(self) -> list[dict[str, Any]]:
        """Every asset with its status (completed, pending_upload, expired)."""
        now = self._clock()
        return [self._asset_view(a, now) for a in self._assets.values()]

    def stats(self) -> dict[str, Any]:
        s = self._stats
        return {
            "requests": s.requests,
            "by_route": dict(s.by_route),
            "by_status": dict(s.by_status),
            "max_jobs_in_flight": s.max_jobs_in_flight,
            "dropped": s.dropped,
            "credits_remaining": self._credits,
        }

    def configure(self, changes: Mapping[str, Any]) -> SimConfig:
        """Change runtime settings; raises UsageError on unknown fields or bad values."""
        unknown = sorted(set(changes) - RUNTIME_FIELDS)
        if unknown:
            raise UsageError(f"sim: cannot change {', '.join(unknown)} while running")
        self.config = replace(self.config, **changes)
        if "credits" in changes:
            self._credits = self.config.credits
        return self.config

    def _sim_state(self, ctx: _Ctx) -> Response:
        return Response(200, _dump(self.state()))

    def _sim_assets(self, ctx: _Ctx) -> Response:
        return Response(200, _dump({"assets": self.assets()}))

    def _sim_stats(self, ctx: _Ctx) -> Response:
        return Response(200, _dump(self.stats()))

    def _sim_reset(self, ctx: _Ctx) -> Response:
        self.reset()
        path = self.config.state_file
        if path is not None:
            self.save(path)
        return Response(200, _dump({"reset": True}))

    def _sim_get_config(self, ctx: _Ctx) -> Response:
        return Response(200, _dump(self.config.public()))

    def _sim_set_config(self, ctx: _Ctx) -> Response:
        body = _json_object(ctx.req)
        try:
            config = self.configure(body)
        except (UsageError, TypeError) as e:
            raise invalid(None, str(e)) from None
        return Response(200, _dump(config.public()))

    def _sim_preview(self, ctx: _Ctx) -> Response:
        look_id = ctx.params["file"].removesuffix(".png")
        look = self._looks.get(look_id)
        if look is None or self._status(look, ctx.now) != "completed":
            raise not_found("preview", ctx.params["file"])
        return Response(
            200,
            preview_png(look.id),
            "image/png",
            (("Cache-Control", "public, max-age=86400"),),
        )

    def _sim_asset(self, ctx: _Ctx) -> Response:
        asset = self._assets.get(ctx.params["asset_id"])
        data = self._asset_data.get(ctx.params["asset_id"])
        if asset is None or data is None:
            raise not_found("asset", ctx.params["asset_id"])
        return Response(200, data, asset.mime_type)

    def _consent_group(self, ctx: _Ctx) -> _Group:
        group_id = self._consent_tokens.get(ctx.params["token"])
        group = self._groups.get(group_id) if group_id else None
        if group is None:
            raise Reject(404, "not_found", "this consent link is unknown or expired")
        return group

    def _consent_page(self, ctx: _Ctx) -> Response:
        group = self._consent_group(ctx)
        name = html.escape(group.name)
        if group.consent_status == "approved":
            inner = "<p>Consent has been approved. You can close this page.</p>"
        else:
            inner = (
                '<form method="post" action="">'
                '<button type="submit" name="decision" value="approve">Approve</button></form>'
            )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Avatar consent</title>"
            f"</head><body><h1>Consent for avatar &ldquo;{name}&rdquo;</h1>"
            f"<p>Status: <b>{html.escape(str(group.consent_status))}</b></p>{inner}</body></html>"
        )
        return Response(200, page.encode(), HTML)

    def _consent_approve(self, ctx: _Ctx) -> Response:
        group = self._consent_group(ctx)
        self._approve(group, ctx.now)
        if group.reroute_url:
            return Response(303, b"", HTML, (("Location", group.reroute_url),))
        return self._consent_page(ctx)

    # ----- persistence -----

    def save(self, path: Path) -> None:
        """Write the API state (not stats, not asset bytes) atomically to `path`."""
        now = self._clock()
        data = {
            "version": 1,
            "seq": self._seq,
            "credits": self._credits,
            "groups": [asdict(g) for g in self._groups.values()],
            "looks": [asdict(look) for look in self._looks.values()],
            "assets": [asdict(a) for a in self._assets.values()],
            "idempotency": [
                [key, idem, asdict(entry)]
                for (key, idem), entry in self._idem.items()
                if entry.done and entry.expires_at > now
            ],
        }
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the account's data
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        """Restore what `save` wrote; a missing or unreadable file is a UsageError."""
        try:
            if not path.is_file():  # a device such as /dev/zero would be read forever
                raise ValueError("not a regular file")
            data = json.loads(path.read_text())
            if data.get("version") != 1:
                raise ValueError("unknown version")
            self._load(data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UsageError(f"sim: cannot load state file {path}: {e}") from e

    def _load(self, data: dict[str, Any]) -> None:
        self._clear()
        now = self._clock()
        self._seq = int(data["seq"])
        if self.config.credits is not None and data.get("credits") is not None:
            self._credits = int(data["credits"])
        for g in data["groups"]:
            group = _Group(**{**g, "looks": [tuple(x) for x in g["looks"]]})
            self._groups[group.id] = group
            self._group_order.setdefault(group.api_key, []).append((group.seq, group.id))
            if group.consent_token:
                self._consent_tokens[group.consent_token] = group.id
            if group.auto_consent_at is not None:
                heapq.heappush(self._consent_due, (group.auto_consent_at, group.id))
        for item in data["looks"]:
            look = _Look(**item)
            self._looks[look.id] = look
            self._look_order.setdefault(look.api_key, []).append((look.seq, look.id))
            if look.ready_at is not None and look.ready_at > now:
                heapq.heappush(self._jobs.setdefault(look.api_key, []), (look.ready_at, look.id))
        for a in data["assets"]:
            asset = _Asset(**a)
            self._assets[asset.id] = asset
        for key, idem, entry in data["idempotency"]:
            self._idem[(key, idem)] = _Idem(**entry)
        for order in (*self._group_order.values(), *self._look_order.values()):
            order.sort()


def _compile(
    table: dict[str, dict[str, _Handler]],
) -> list[tuple[tuple[str, ...], str, dict[str, _Handler]]]:
    return [(tuple(t.strip("/").split("/")), t, methods) for t, methods in table.items()]


_Routes = list[tuple[tuple[str, ...], str, dict[str, _Handler]]]


def _match(
    routes: _Routes, method: str, path: str
) -> tuple[str | None, _Handler | None, dict[str, str], list[str]]:
    """(template, handler or None if the method is wrong, path params, allowed methods)."""
    segments = path.strip("/").split("/") if path != "/" else [""]
    if path.endswith("/") and path != "/":
        return None, None, {}, []
    for pattern, template, methods in routes:
        if len(pattern) != len(segments):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, segments, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return template, methods.get(method), params, sorted(methods)
    return None, None, {}, []


# Literal routes come before parameterised ones of the same length ("looks" is not a group id).
_V3_ROUTES = _compile(
    {
        "/v3/avatars": {"POST": Simulator._create, "GET": Simulator._list_groups},
        "/v3/avatars/looks": {"GET": Simulator._list_looks},
        "/v3/avatars/looks/{look_id}": {
            "GET": Simulator._get_look,
            "PATCH": Simulator._patch_look,
            "DELETE": Simulator._delete_look,
        },
        "/v3/avatars/{group_id}": {"GET": Simulator._get_group, "DELETE": Simulator._delete_group},
        "/v3/avatars/{group_id}/consent": {"POST": Simulator._consent},
        "/v3/assets": {"POST": Simulator._upload_asset},
        "/v3/assets/direct-uploads": {"POST": Simulator._direct_init},
        "/v3/assets/{asset_id}/complete": {"POST": Simulator._direct_complete},
    }
)
_IDEMPOTENT = frozenset(
    {
        "POST /v3/avatars",
        "POST /v3/assets",
        "POST /v3/avatars/{group_id}/consent",
        "POST /v3/assets/direct-uploads",
        "POST /v3/assets/{asset_id}/complete",
    }
)
_DROPPABLE = frozenset(
    {
        "POST /v3/avatars",
        "POST /v3/assets",
        "POST /v3/assets/direct-uploads",
        "POST /v3/assets/{asset_id}/complete",
    }
)

_SIM_ROUTES = _compile(
    {
        "/_sim/state": {"GET": Simulator._sim_state},
        "/_sim/stats": {"GET": Simulator._sim_stats},
        "/_sim/reset": {"POST": Simulator._sim_reset},
        "/_sim/config": {"GET": Simulator._sim_get_config, "POST": Simulator._sim_set_config},
        "/_sim/previews/{file}": {"GET": Simulator._sim_preview},
        "/_sim/assets": {"GET": Simulator._sim_assets},
        "/_sim/assets/{asset_id}": {"GET": Simulator._sim_asset},
        "/_sim/consent/{token}": {
            "GET": Simulator._consent_page,
            "POST": Simulator._consent_approve,
        },
    }
)

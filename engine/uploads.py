"""Direct uploads of files over 32 MB: init, PUT, complete, each step journaled first.

The upload node's record carries the init's idempotency key (journaled before the init is
sent), then the asset id and the URL's expiry (before the PUT), then `uploaded` (once the
storage took the bytes). A run killed anywhere resumes from there without a second asset:
the init is replayed with its key, which answers the same asset and URL; bytes that landed
before a kill are completed rather than sent again; only an expired URL starts a new init.
The URL itself is never recorded: it is a credential, and a replayed init answers it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.client import AssetInfo, DirectUploadTicket, HeyGenClient, is_transient
from engine.errors import ApiError
from engine.manifest import NodeRecord

__all__ = ["EXPIRY_MARGIN", "DirectUpload", "LocalFile", "ProgressSteps"]

# A PUT started this close to the URL's expiry (or 10 % of its lifetime, if less) may be
# cut off by it: start over instead.
EXPIRY_MARGIN = 30.0
MAX_INITS = 3  # init answers per run whose URL was expired or refused, before giving up


@dataclass(frozen=True)
class LocalFile:
    """What an upload sends: the file, its name and type, and its content's identity."""

    path: Path
    filename: str
    content_type: str
    sha256: str
    size_bytes: int


class ProgressSteps:
    """Turns bytes sent into a call every `step` of the whole (10 %, 20 %, ...)."""

    def __init__(self, total: int, report: Callable[[int, int], None], step: float = 0.1) -> None:
        self.total = total
        self.report = report
        self.step = max(1, int(total * step))
        self._next = self.step

    def __call__(self, sent: int) -> None:
        if sent >= self._next or sent == self.total:
            self.report(sent, self.total)
            self._next = (sent // self.step + 1) * self.step


class DirectUpload:
    """Runs one direct upload to completion, resuming from what its record says."""

    def __init__(
        self,
        client: HeyGenClient,
        file: LocalFile,
        *,
        save: Callable[[NodeRecord], None],
        new_key: Callable[[NodeRecord], NodeRecord],
        progress: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.file = file
        self._save = save
        self._new_key = new_key
        self._progress = progress
        self._clock = clock

    async def run(self, record: NodeRecord) -> AssetInfo:
        """The completed asset; `record` is the node's current record."""
        if record.status != "submitted" or not record.idempotency_key:
            record = self._fresh(record)
        # Resumed mid-PUT: a kill may have come after the bytes landed, and completing tells
        # (cheaper than sending them again). Asked once per asset.
        unasked = record.asset_id is not None
        inits = 0
        while True:
            state = record.upload or {}
            if state.get("phase") == "uploaded":
                return await self._complete(record)
            if record.asset_id is not None and (unasked or self._expired(state)):
                unasked = False
                asset = await self._try_complete(record)
                if asset is not None:
                    return asset
                if self._expired(state):
                    record = self._fresh(record)
                    continue
            if inits == MAX_INITS:
                raise ApiError(
                    403,
                    "upload_refused",
                    f"{self.file.filename}: {MAX_INITS} upload URLs in a row expired or were"
                    " refused before the bytes could be sent",
                )
            inits += 1
            ticket = await self._init(record)
            record = self._record(
                record, asset_id=ticket.asset_id, expires_at=self._expiry(record, ticket)
            )
            if self._expired(record.upload or {}):
                continue  # a replayed answer whose URL has expired since
            try:
                await self.client.put_upload(
                    ticket, self.file.path, self.file.size_bytes, on_progress=self._on_progress()
                )
            except ApiError as e:
                if e.status not in (403, 404):
                    raise _explained(e) from e
                # Refused: expired early, signed for other headers, or forgotten by the
                # storage. Start over, after a complete (an earlier PUT of ours may have landed).
                record = self._record(record, expires_at=0.0)
                continue
            record = self._record(record, phase="uploaded")
            return await self._complete(record)

    # -- steps ----------------------------------------------------------------------------

    async def _init(self, record: NodeRecord) -> DirectUploadTicket:
        assert record.idempotency_key is not None
        ticket = await self.client.start_direct_upload(
            filename=self.file.filename,
            content_type=self.file.content_type,
            size_bytes=self.file.size_bytes,
            checksum_sha256=self.file.sha256,
            idempotency_key=record.idempotency_key,
        )
        if ticket.max_bytes is not None and self.file.size_bytes > ticket.max_bytes:
            raise ApiError(
                413,
                "payload_too_large",
                f"{self.file.filename} is {self.file.size_bytes} bytes; the API takes at most"
                f" {ticket.max_bytes} per upload",
            )
        return ticket

    async def _complete(self, record: NodeRecord) -> AssetInfo:
        assert record.asset_id is not None and record.idempotency_key is not None
        asset = await self.client.complete_upload(
            record.asset_id,
            checksum_sha256=self.file.sha256,
            idempotency_key=f"{record.idempotency_key}:complete",
        )
        if asset.asset_id != record.asset_id:
            raise ApiError(
                200,
                "invalid_response",
                f"completing asset {record.asset_id} answered asset {asset.asset_id}",
            )
        return asset

    async def _try_complete(self, record: NodeRecord) -> AssetInfo | None:
        """The asset if its bytes were uploaded; None when the API says they were not."""
        try:
            return await self._complete(record)
        except ApiError as e:
            if is_transient(e) or e.status >= 500:
                raise
            return None

    # -- records ------------------------------------------------------------------------------

    def _fresh(self, record: NodeRecord) -> NodeRecord:
        """A new init: a new key, journaled before it is sent."""
        cleared = record.evolve(status="pending", asset_id=None, upload=None)
        fresh = self._new_key(cleared)
        self._save(fresh)
        return fresh

    def _record(self, record: NodeRecord, **changes: Any) -> NodeRecord:
        state: dict[str, Any] = {"phase": "put", **(record.upload or {})}
        asset_id = changes.pop("asset_id", record.asset_id)
        state.update(changes)
        updated = record.evolve(asset_id=asset_id, upload=state)
        if updated != record:
            self._save(updated)
        return updated

    def _expiry(self, record: NodeRecord, ticket: DirectUploadTicket) -> float:
        """When to stop starting PUTs to the ticket's URL (a margin before it expires)."""
        # A replayed init answers the original expires_in_seconds: count from the first send.
        sent = record.submitted_at if record.submitted_at is not None else self._clock()
        lifetime = ticket.expires_in_seconds
        return round(sent + lifetime - min(EXPIRY_MARGIN, 0.1 * lifetime), 3)

    def _expired(self, state: Mapping[str, Any]) -> bool:
        expires_at = state.get("expires_at")
        if not isinstance(expires_at, int | float):
            return False
        return expires_at <= self._clock()

    def _on_progress(self) -> Callable[[int], None] | None:
        if self._progress is None:
            return None
        return ProgressSteps(self.file.size_bytes, self._progress)


def _explained(error: ApiError) -> ApiError:
    """A storage refusal of the bytes themselves, said in the user's terms."""
    if error.status == 400:
        return ApiError(
            400,
            "checksum_mismatch",
            f"{error.message}; the file changed since it was planned: run apply again",
            request_id=error.request_id,
        )
    return error

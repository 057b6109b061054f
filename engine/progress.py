"""How apply reports: a live view on a terminal, plain lines otherwise, JSON for machines."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, TextIO


@dataclass(frozen=True)
class Event:
    """Something that happened to one node."""

    address: str
    kind: str  # uploaded, submitted, created, completed, failed, blocked, consent, renamed, ...
    message: str = ""
    recipe: str = ""


class Reporter(Protocol):
    def event(self, event: Event) -> None: ...

    def counts(self, counts: Counter[str], total: int) -> None: ...

    def close(self, summary: str) -> None: ...


def _line(event: Event) -> str:
    where = f"{event.recipe}: " if event.recipe else ""
    tail = f" ({event.message})" if event.message else ""
    return f"{where}{event.address}: {event.kind}{tail}"


@dataclass
class PlainReporter:
    """One line per event; for logs and pipes."""

    out: TextIO = field(default_factory=lambda: sys.stdout)

    def event(self, event: Event) -> None:
        print(_line(event), file=self.out, flush=True)

    def counts(self, counts: Counter[str], total: int) -> None:
        pass

    def close(self, summary: str) -> None:
        print(summary, file=self.out, flush=True)


@dataclass
class JsonReporter:
    """One JSON object per line (`--log-json`)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)

    def event(self, event: Event) -> None:
        record = {"time": round(time.time(), 3), "event": event.kind, "address": event.address}
        if event.recipe:
            record["recipe"] = event.recipe
        if event.message:
            record["message"] = event.message
        print(json.dumps(record, sort_keys=True), file=self.out, flush=True)

    def counts(self, counts: Counter[str], total: int) -> None:
        pass

    def close(self, summary: str) -> None:
        print(json.dumps({"event": "summary", "message": summary}), file=self.out, flush=True)


@dataclass
class LiveReporter:
    """A status line redrawn in place on a terminal, with notable events printed above it."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    started: float = field(default_factory=time.monotonic)
    _last: str = ""
    _drawn: float = 0.0

    def event(self, event: Event) -> None:
        notable = (
            "failed",
            "blocked",
            "consent",
            "completed",
            "interrupted",
            "pruned",
            "adopted",
            "moved",
            "reused",
            "uploading",
        )
        if event.kind in notable:
            self._clear()
            print(_line(event), file=self.out)
            self._redraw(self._last)

    def counts(self, counts: Counter[str], total: int) -> None:
        done = counts["completed"]
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        left = total - done - counts["failed"] - counts["blocked"]
        eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else "-"
        line = (
            f"done {done}/{total}  in flight {counts['in_flight']}  queued {counts['queued']}"
            f"  failed {counts['failed'] + counts['blocked']}  {rate * 60:.1f}/min  ETA {eta}"
        )
        self._last = line
        now = time.monotonic()
        if now - self._drawn >= 0.1:
            self._redraw(line)

    def _redraw(self, line: str) -> None:
        if line:
            self.out.write("\r\x1b[2K" + line)
            self.out.flush()
            self._drawn = time.monotonic()

    def _clear(self) -> None:
        self.out.write("\r\x1b[2K")

    def close(self, summary: str) -> None:
        self._clear()
        print(summary, file=self.out, flush=True)


def reporter_for(out: TextIO, *, log_json: bool) -> Reporter:
    if log_json:
        return JsonReporter(out)
    if out.isatty():
        return LiveReporter(out)
    return PlainReporter(out)

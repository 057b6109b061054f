"""How apply reports: a live view on a terminal, plain lines otherwise, JSON for machines.

Output is a courtesy, never a condition of the run: when the reader goes away (`looks apply
| head -1`), writing stops quietly and the run goes on recording its state to the end.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from engine.summary import RunSummary, summary_text

PROGRESS_EVERY = 30.0  # seconds between progress lines when nothing else is printed


@dataclass(frozen=True)
class EventError:
    """Why a node failed or is blocked, as the API (or the engine) put it."""

    code: str
    message: str
    request_id: str | None = None


@dataclass(frozen=True)
class Event:
    """Something that happened to one node."""

    address: str
    kind: str  # uploaded, submitted, created, completed, failed, blocked, consent, renamed, ...
    message: str = ""
    recipe: str = ""
    look_id: str | None = None
    group_id: str | None = None
    error: EventError | None = None


class Reporter(Protocol):
    def event(self, event: Event) -> None: ...

    def counts(self, counts: Counter[str], total: int) -> None: ...

    def close(self, summary: RunSummary) -> None: ...


class Output:
    """A text stream that goes quiet, instead of raising, once its reader has gone."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # The reader left (`| head -1`) or the stream was closed: nobody to tell.
            self.closed = True
            self._silence()
        except OSError as e:
            # A full disk or a failing device: the run goes on (it may be paid for and is
            # recorded either way); only its output is lost, which is said once, unless
            # the terminal itself hung up (EIO), where stderr is just as dead.
            self.closed = True
            self._silence()
            if e.errno == errno.EIO:
                return
            with contextlib.suppress(OSError, ValueError):
                print(
                    f"looks: standard output: {e.strerror or e}; the rest of the output is dropped",
                    file=sys.stderr,
                )

    def isatty(self) -> bool:
        return self.stream.isatty()

    def _silence(self) -> None:
        # Python flushes stdout once more at exit: point the descriptor at /dev/null so
        # that flush finds nowhere to fail, rather than printing a traceback.
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return  # not backed by a descriptor (a test's StringIO)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def _line(event: Event) -> str:
    where = f"{event.recipe}: " if event.recipe else ""
    tail = f" ({event.message})" if event.message else ""
    return f"{where}{event.address}: {event.kind}{tail}"


@dataclass
class Progress:
    """done/total, rate and ETA from the executor's counts."""

    started: float = field(default_factory=time.monotonic)

    def describe(self, counts: Counter[str], total: int, *, bar: int = 0) -> str:
        done = counts["completed"] + counts["failed"] + counts["blocked"]
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        left = total - done
        eta = _duration(left / rate) if rate > 0 and left > 0 else "-"
        drawn = ""
        if bar:
            filled = bar * done // total if total else bar
            drawn = "[" + "#" * filled + "." * (bar - filled) + "] "
        return (
            f"{drawn}{done}/{total} done  {counts['failed'] + counts['blocked']} failed"
            f"  {counts['in_flight']} in flight  {counts['queued']} queued"
            f"  {rate * 60:.1f}/min  ETA {eta}"
        )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class PlainReporter:
    """One line per event; for logs and pipes. Besides, a progress line every `every`
    seconds, so a long CI job is never silent and always shows how far it got."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    every: float = PROGRESS_EVERY
    _output: Output = field(init=False)
    _progress: Progress = field(default_factory=Progress)
    _progressed: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._output = Output(self.out)

    def event(self, event: Event) -> None:
        self._print(_line(event))

    def counts(self, counts: Counter[str], total: int) -> None:
        if time.monotonic() - self._progressed >= self.every:
            self._print("progress: " + self._progress.describe(counts, total))
            self._progressed = time.monotonic()

    def close(self, summary: RunSummary) -> None:
        self._print(summary_text(summary))

    def _print(self, line: str) -> None:
        self._output.write(line + "\n")


@dataclass
class JsonReporter:
    """One JSON object per line (`--log-json`); a `progress` object every `every` seconds;
    the last one is the run's summary."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    every: float = PROGRESS_EVERY
    _output: Output = field(init=False)
    _progressed: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._output = Output(self.out)

    def event(self, event: Event) -> None:
        record: dict[str, Any] = {
            "time": round(time.time(), 3),
            "event": event.kind,
            "address": event.address,
        }
        if event.recipe:
            record["recipe"] = event.recipe
        if event.message:
            record["message"] = event.message
        if event.look_id:
            record["look_id"] = event.look_id
        if event.group_id:
            record["group_id"] = event.group_id
        if event.error is not None:
            record["error"] = {
                "code": event.error.code,
                "message": event.error.message,
                "request_id": event.error.request_id,
            }
        self._write(record)

    def counts(self, counts: Counter[str], total: int) -> None:
        if time.monotonic() - self._progressed >= self.every:
            self._progressed = time.monotonic()
            keys = ("completed", "failed", "blocked", "in_flight", "queued")
            self._write(
                {
                    "time": round(time.time(), 3),
                    "event": "progress",
                    "total": total,
                    "counts": {k: counts[k] for k in keys},
                }
            )

    def close(self, summary: RunSummary) -> None:
        self._write(
            {
                "time": round(time.time(), 3),
                "event": "summary",
                "counts": summary.json_counts(),
                "stopped": summary.stopped,
                "message": summary_text(summary),
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        self._output.write(json.dumps(record, sort_keys=True) + "\n")


_NOTABLE = (
    "failed",
    "blocked",
    "consent",
    "completed",
    "interrupted",
    "pruned",
    "adopted",
    "uploading",
)


@dataclass
class LiveReporter:
    """A progress bar redrawn in place on a terminal, notable events printed above it.

    The count is redrawn at once whenever it changes, so it never lags behind the events
    printed above it; only redraws for the clock (rate, ETA) are throttled.
    """

    out: TextIO = field(default_factory=lambda: sys.stdout)
    width: int = 20
    _output: Output = field(init=False)
    _progress: Progress = field(default_factory=Progress)
    _counts: Counter[str] = field(default_factory=Counter)
    _total: int = 0
    _drawn: float = 0.0
    _stale: bool = False

    def __post_init__(self) -> None:
        self._output = Output(self.out)

    def event(self, event: Event) -> None:
        if event.kind in _NOTABLE:
            # The bar comes back with the counts that include this event, not before.
            self._output.write("\r\x1b[2K" + _line(event) + "\n")
            self._stale = True

    def counts(self, counts: Counter[str], total: int) -> None:
        changed = counts != self._counts or total != self._total
        self._counts, self._total = Counter(counts), total
        if changed or self._stale or time.monotonic() - self._drawn >= 0.5:
            self._redraw()

    def _redraw(self) -> None:
        # Wider than the terminal, the line would wrap and "\r" no longer redraw it: the
        # bar gives up its room first, the figures last.
        room = self._columns() - 1
        line = self._progress.describe(self._counts, self._total)
        bar = min(self.width, room - len(line) - 3)
        if bar >= 5:
            line = self._progress.describe(self._counts, self._total, bar=bar)
        self._output.write("\r\x1b[2K" + line[:room])
        self._drawn = time.monotonic()
        self._stale = False

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.out.fileno()).columns or 80
        except (AttributeError, OSError, ValueError):
            return 80

    def close(self, summary: RunSummary) -> None:
        # The final bar stays on screen above the summary, with the final count.
        if self._total:
            self._redraw()
            self._output.write("\n")
        self._output.write(summary_text(summary) + "\n")


def reporter_for(out: TextIO, *, log_json: bool, every: float = PROGRESS_EVERY) -> Reporter:
    if log_json:
        return JsonReporter(out, every)
    if out.isatty():
        return LiveReporter(out)
    return PlainReporter(out, every)

"""What a run is given and what it achieves: its options, its batches, its result.

Shared by the executor's parts (engine/executor.py and the modules it is cut into) and by
the Python API; no behaviour here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from .errors import StateWriteError
from .manifest import ManifestStore
from .plan import Plan
from .summary import RunSummary

Outcome = Literal["completed", "failed", "blocked"]


@dataclass(frozen=True)
class ApplyOptions:
    """Knobs of a run."""

    max_jobs: int = 10
    fail_fast: bool = False
    node_timeout: float = 900.0
    poll_min: float = 0.01
    poll_max: float = 10.0
    upload_concurrency: int = 2
    heartbeat: float = 1.0  # seconds between progress updates while nothing happens
    missing_after: float = 30.0  # seconds a look may be absent from listings before a GET
    interrupt_grace: float = 5.0
    recorded_elsewhere: frozenset[str] = frozenset()  # made by other manifests: never adopted


@dataclass(frozen=True)
class Batch:
    """One recipe's plan and its open manifest."""

    plan: Plan
    store: ManifestStore
    label: str = ""


@dataclass
class ApplyResult:
    """What a run achieved.

    Once the run is over, `counts` holds each node it was asked to work on under exactly
    one of engine.summary.OUTCOMES (while it runs, also `queued`).
    """

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    stopped: str | None = None  # why new submissions stopped early, if they did
    requests_429: int = 0
    write_error: StateWriteError | None = None  # the state write that stopped the run
    pruned: bool = True  # False: apply --prune could not delete a look
    notes: list[str] = field(default_factory=list)  # closing lines (the budget's)

    @property
    def ok(self) -> bool:
        unfinished = self.counts["in_flight"] + self.counts["not_started"]
        done = not self.failures and self.stopped is None and unfinished == 0
        return done and self.pruned

    def summary(self) -> RunSummary:
        counts = {k: v for k, v in self.counts.items() if k != "queued"}
        return RunSummary(counts, self.stopped, tuple(self.failures), tuple(self.notes))

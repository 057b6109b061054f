"""What a run achieved, counted exactly, and its closing lines. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Every node a run was asked to work on ends in exactly one of these.
OUTCOMES = ("completed", "failed", "blocked", "in_flight", "not_started")

STOP_REASONS = {
    "interrupted": "Interrupted: what was answered is recorded; run apply again to resume.",
    "fail_fast": "Stopped at the first failure (--fail-fast).",
    "api_stalled": (
        "The API stopped answering: stopped submitting; what was sent is recorded."
        " Run apply again once it answers."
    ),
    "key_refused": "The API refused the key (401): stopped submitting; what was sent is"
    " recorded. Check HEYGEN_API_KEY, then run apply again.",
    "state_write": "Stopped: state could not be written (below); every change before it is"
    " kept. Run apply again once it can be.",
}


@dataclass(frozen=True)
class RunSummary:
    """The counts of a run's nodes by outcome, why it stopped early (if it did), why each
    node that failed or was blocked did so (label, "kind: code: message"), and closing
    notes from whatever stopped the run (the budget's, for `max_credits`)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    stopped: str | None = None
    failures: Sequence[tuple[str, str]] = ()
    notes: Sequence[str] = ()

    def count(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)

    @property
    def remaining(self) -> int:
        """Nodes a further apply must still submit (failed, blocked, not started)."""
        return self.count("failed") + self.count("blocked") + self.count("not_started")

    def json_counts(self) -> dict[str, int]:
        return {outcome: self.count(outcome) for outcome in OUTCOMES}


def summary_text(summary: RunSummary) -> str:
    """`Apply: N completed, N failed, N blocked[, N still generating], N not started.`

    Looks still generating were submitted (and are billed): the next apply picks them up
    without creating them again, so they are told apart from those never started.
    """
    c = summary.count
    generating = f" {c('in_flight')} still generating," if c("in_flight") else ""
    lines = [
        f"Apply: {c('completed')} completed, {c('failed')} failed, {c('blocked')} blocked,"
        f"{generating} {c('not_started')} not started."
    ]
    lines.extend(f"  {label}: {reason}" for label, reason in summary.failures)
    if c("in_flight"):
        lines.append(
            f"{_looks(c('in_flight'))} still generating on the server (submitted, billed):"
            " the next apply picks them up without creating them again."
        )
    if summary.stopped == "insufficient_credit":
        lines.append(
            f"Out of credits: stopped submitting; {_looks(summary.remaining)} remain to be"
            " created. Add credits and run apply again."
        )
    elif summary.stopped in STOP_REASONS:
        lines.append(STOP_REASONS[summary.stopped])
    elif summary.stopped is not None and not summary.notes:
        lines.append(f"Stopped submitting ({summary.stopped.replace('_', ' ')}).")
    lines.extend(summary.notes)
    return "\n".join(lines)


def _looks(n: int) -> str:
    return f"{n} look" if n == 1 else f"{n} looks"

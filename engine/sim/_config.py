"""The simulator's settings, validated once so the rest of the code can trust them."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.errors import UsageError

# Settings a running simulator accepts through POST /_sim/config (and RunningSimulator.configure).
RUNTIME_FIELDS = frozenset(
    {
        "fail_rate",
        "drop_rate",
        "latency_ms",
        "max_jobs",
        "credits",
        "failed_look_rate",
        "generation_seconds",
        "generation_seconds_max",
        "auto_consent",
        "upload_url_ttl",
        "upload_bytes_per_second",
    }
)


def _number(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"sim: {name} must be a finite number, not {value!r}")
    if value < 0:
        raise UsageError(f"sim: {name} must not be negative, not {value!r}")


def parse_seconds_range(text: str) -> tuple[float, float | None]:
    """`S` or `LO-HI` (seconds) as (low, high or None); UsageError names what is wrong."""
    low, sep, high = text.partition("-")
    try:
        values = (float(low), float(high) if sep else None)
        if not all(math.isfinite(v) for v in values if v is not None):
            raise ValueError(text)
    except ValueError:
        raise UsageError(
            f"sim: --generation-seconds takes S or LO-HI (seconds), not {text!r}"
        ) from None
    low_value, high_value = values
    if high_value is not None and not 0 < low_value <= high_value:
        raise UsageError(
            f"sim: --generation-seconds LO-HI needs 0 < LO <= HI (log-uniform), not {text!r}"
        )
    return values


def _integer(name: str, value: object, *, optional: bool = False, minimum: int = 0) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"sim: {name} must be an integer, not {value!r}")
    if value < minimum:
        raise UsageError(f"sim: {name} must be at least {minimum}, not {value!r}")


@dataclass(frozen=True)
class SimConfig:
    """How the simulator behaves; see docs/simulator.md for each field."""

    api_key: str | None = None
    generation_seconds: float = 2.0
    # With a maximum, each job's duration is drawn log-uniformly in [generation_seconds, max].
    generation_seconds_max: float | None = None
    failed_look_rate: float = 0.0
    auto_consent: float | None = None
    max_jobs: int = 10
    credits: int | None = None
    seed: int | None = None
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: float = 0.0
    idempotency_ttl: float = 86400.0
    upload_url_ttl: float = 3600.0
    upload_bytes_per_second: float | None = None  # a slow uplink for PUTs to upload URLs
    state_file: Path | None = None

    def __post_init__(self) -> None:
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise UsageError("sim: api_key must be a non-empty string")
        for name in ("generation_seconds", "latency_ms", "idempotency_ttl", "upload_url_ttl"):
            _number(name, getattr(self, name))
        _number("generation_seconds_max", self.generation_seconds_max, optional=True)
        _number("upload_bytes_per_second", self.upload_bytes_per_second, optional=True)
        if self.upload_bytes_per_second == 0:
            raise UsageError("sim: upload_bytes_per_second must be above 0")
        if self.generation_seconds_max is not None:
            if self.generation_seconds <= 0:
                raise UsageError("sim: a generation_seconds range must start above 0")
            if self.generation_seconds_max < self.generation_seconds:
                raise UsageError(
                    "sim: generation_seconds_max must be at least generation_seconds, not"
                    f" {self.generation_seconds_max!r}"
                )
        _number("auto_consent", self.auto_consent, optional=True)
        for name in ("failed_look_rate", "fail_rate", "drop_rate"):
            value = getattr(self, name)
            _number(name, value)
            if value > 1:
                raise UsageError(f"sim: {name} is a probability between 0 and 1, not {value!r}")
        _integer("max_jobs", self.max_jobs, minimum=1)
        _integer("credits", self.credits, optional=True)
        _integer("seed", self.seed, optional=True)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-ready values (what GET /_sim/config shows)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key":
                value = None if value is None else "(set)"
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out

"""A loopback simulator of the HeyGen v3 avatar API, for tests, benchmarks and demos.

`serve` runs it until a signal (the `looks sim` command); `running_simulator` runs it in a
background thread for tests. docs/simulator.md describes the behaviour and its assumptions.
"""

from engine.sim._api import Request, Response, Simulator
from engine.sim._config import RUNTIME_FIELDS, SimConfig, parse_seconds_range
from engine.sim._server import RunningSimulator, SimServer, running_simulator, serve

__all__ = [
    "RUNTIME_FIELDS",
    "Request",
    "Response",
    "RunningSimulator",
    "SimConfig",
    "SimServer",
    "Simulator",
    "parse_seconds_range",
    "running_simulator",
    "serve",
]

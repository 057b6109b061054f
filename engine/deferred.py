"""Modules of the package imported at their first use, for start-up time.

A run of `looks` needs only its command's module (`looks sim` alone the simulator)
(docs/performance.md, start-up and exit). Not for the Python API's own modules: its public
types name their types in hints, which `typing.get_type_hints` resolves in the module's
namespace, never through a deferred name (tests/test_api_names.py). A module that imports
another this way also imports it under TYPE_CHECKING, so the type checker and
tests/test_architecture.py (which checks that both name the same modules) see the dependency.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Deferred"]


class Deferred:
    """Stands for the module `looks.<name>` and imports it at its first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(import_module(f".{self._name}", __package__), attribute)

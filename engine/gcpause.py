"""Large builds without the cyclic garbage collector.

A 10 MB recipe is a million Python objects. While a build allocates, every full collection
walks all of them again, though the build makes no reference cycles to collect: a quarter
of `looks plan` on such a recipe went there. Objects are still freed by reference counting;
the collector resumes, as it was, when the build ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (restored as it was after)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

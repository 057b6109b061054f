"""Paths resolved as the operating system resolves them, symlink loops included.

On Python 3.11 and 3.12 `Path.resolve()` raises RuntimeError on a symlink loop (3.13 stops
where the loop starts, as `os.path.realpath` does). A loop in a path the user gave is bad
input: resolved here, the open that follows fails with OSError (ELOOP) and is reported like
any other file that cannot be read, not as an internal error.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resolved"]


def resolved(path: str | os.PathLike[str]) -> Path:
    """The absolute path with every symlink resolved that can be; never raises."""
    return Path(os.path.realpath(path))

"""The standard streams, made safe to use whatever state the caller left them in."""

from __future__ import annotations

import os
import sys

_STREAMS = (
    (0, "stdin", os.O_RDONLY, "r"),
    (1, "stdout", os.O_WRONLY, "w"),
    (2, "stderr", os.O_WRONLY, "w"),
)


def ensure_standard_streams() -> None:
    """Point a closed descriptor 0, 1 or 2 (`looks apply 2>&-`) at /dev/null.

    Left closed, the next file opened (a manifest, a journal, a socket) would take its
    number and receive what was meant for the terminal; and Python, finding it closed at
    start, set sys.stderr (or stdin) to None, which nothing downstream expects.
    """
    for fd, name, flags, mode in _STREAMS:
        try:
            os.fstat(fd)
        except OSError:
            # The lowest free descriptor is taken: fd itself, as the lower ones are open.
            devnull = os.open(os.devnull, flags)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
        # A closed stdout is refused by the CLI (nobody could follow the run); a closed
        # stdin or stderr only means nobody reads or hears: they get /dev/null.
        if name != "stdout" and getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))  # noqa: SIM115

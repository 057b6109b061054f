"""How a run stops on a signal: Ctrl-C, `kill` and a terminal closed under it alike.

Inside the event loop the first signal stops new submissions and lets answers in flight be
recorded; a second leaves at once (the journal already holds every change). Outside it
(loading, folding, pruning), SIGTERM and SIGHUP stop `apply` as Ctrl-C does: one line
and exit 130, rather than a silent death by signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence

INTERRUPTED = 130  # the exit code of an interrupted run
# Ctrl-C, `kill`, and a terminal closed under the run (SIGHUP) all stop it the same way.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def heeded(signals: Sequence[signal.Signals]) -> list[signal.Signals]:
    """The signals not ignored by whoever started us: under `nohup` (SIGHUP ignored) the
    run must outlive the terminal, as that user asked."""
    return [sig for sig in signals if signal.getsignal(sig) is not signal.SIG_IGN]


@contextlib.contextmanager
def terminations_interrupt() -> Iterator[None]:
    """Outside the event loop, SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in heeded(STOP_SIGNALS[1:])}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def stopping_on_signals(interrupt: Callable[[], None]) -> Iterator[None]:
    """In the running loop: the first stop signal calls `interrupt`, a second exits 130."""
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_signal() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            # The journal already holds every change: leaving now loses nothing.
            os._exit(INTERRUPTED)
        interrupt()

    before = {sig: signal.getsignal(sig) for sig in heeded(STOP_SIGNALS)}
    for sig in before:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in before.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)  # as before the loop (removing set SIG_DFL)

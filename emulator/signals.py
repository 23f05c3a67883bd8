"""SIGTERM as Ctrl-C: a process that starts Azurite and the emulator (`python -m emulator`, `python -m demo`)
unwinds through its `finally` blocks on either signal, so it stops what it started and removes its folders.

Without this, SIGTERM kills Python at once: Azurite, in a session of its own so that a terminal's Ctrl-C
reaches only its parent, is left running under PID 1. Once stopping, further signals are reported and
ignored, so a second Ctrl-C cannot cut the cleanup short (each stop has its own timeout).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM or SIGINT)."""


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise `Stopped` (a KeyboardInterrupt) in the main thread, once."""
    stopping = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            print(f"{signal.Signals(signum).name}: already stopping", file=sys.stderr, flush=True)
            return
        stopping = True
        raise Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

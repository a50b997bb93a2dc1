"""Stopping on SIGTERM or SIGINT: the supervisors (`hanmo up`, the worker pool) loop until told."""

from __future__ import annotations

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT (handlers installed now, main thread only)."""
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return stopping

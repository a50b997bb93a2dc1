"""Wall-clock time as the queue records it: epoch milliseconds (stream ids use the same)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)

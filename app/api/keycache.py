"""Verified API keys cached per api process (by the sha256 of the presented token)."""

from __future__ import annotations

import hashlib
import time

from app.registry.apikeys import Principal


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal | str]] = {}

    def get(self, token: str, ttl_s: float) -> Principal | str | None:
        hit = self._entries.get(_digest(token))
        if hit is None or time.monotonic() - hit[0] > ttl_s:
            return None
        return hit[1]

    def put(self, token: str, verdict: Principal | str) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[_digest(token)] = (time.monotonic(), verdict)

    def clear(self) -> None:
        self._entries.clear()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

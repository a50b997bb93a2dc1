"""Verified API keys cached per api process (by the sha256 of the presented token)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from app.registry.apikeys import Principal


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal | str]] = {}

    def get(self, token: str) -> Principal | str | None:
        hit = self._entries.get(_digest(token))
        if hit is None or time.monotonic() >= hit[0]:
            return None
        return hit[1]

    def put(self, token: str, verdict: Principal | str, ttl_s: float) -> None:
        """Keep `verdict` for `ttl_s`, and a key's never past its `expires_at`: an entry that
        outlived the key would serve it after it expired."""
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[_digest(token)] = (time.monotonic() + _lifetime_s(verdict, ttl_s), verdict)

    def clear(self) -> None:
        self._entries.clear()


def _lifetime_s(verdict: Principal | str, ttl_s: float) -> float:
    if isinstance(verdict, str) or verdict.expires_at is None:
        return ttl_s
    return min(ttl_s, (verdict.expires_at - datetime.now(UTC)).total_seconds())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

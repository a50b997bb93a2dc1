"""Pinned versions no alias holds, served on demand: the README's "a request naming a `version`
bypasses the split" holds for every READY version, not only those an alias routes to.

The api records each request for such a version in `keys.WANTED` (member "model:version",
score: when, epoch s) before it enqueues the job (app/api/registry_cache.py). Each worker
serves, besides what aliases route to, the `max_unaliased_versions` most recently wanted of
them (least recently wanted evicted, once its stream is empty); one not named for
`unaliased_idle_s` is no longer wanted. A version a worker cannot load is marked unservable
for UNSERVABLE_TTL_S, with the reason: the api then answers 503 at once instead of queueing,
and the jobs already waiting for it are failed; it is tried again after that."""

from __future__ import annotations

import time
from typing import Any

from app.queue import keys
from app.settings import Settings

UNSERVABLE_TTL_S = 30
MAX_TRACKED = 64  # the most recently wanted versions a worker looks at


class PinnedDemand:
    """The demand for unaliased versions, as recorded in Redis."""

    def __init__(self, redis: Any, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    def recent(self) -> list[str]:
        """Version keys wanted within `unaliased_idle_s`, most recent first (older ones are
        removed from the set)."""
        cutoff = time.time() - self.settings.unaliased_idle_s
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(keys.WANTED, "-inf", f"({cutoff}")
            pipe.zrevrange(keys.WANTED, 0, MAX_TRACKED - 1)
            _, members = pipe.execute()
        return [m.decode() for m in members]

    def mark_unservable(self, version_key: str, reason: str) -> None:
        self.redis.set(keys.unservable(version_key), reason, ex=UNSERVABLE_TTL_S)

    def clear_unservable(self, version_key: str) -> None:
        self.redis.delete(keys.unservable(version_key))


def unservable_detail(version_key: str, reason: str) -> str:
    """The problem detail for a version that no worker could load."""
    model, _, version = version_key.rpartition(":")
    return f"version {version} of {model} cannot be served: {reason}"

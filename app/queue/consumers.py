"""The consumer group seen from a live worker: which consumers are dead (their heartbeat key
expired), moving their pending entries to a live consumer, and removing them from the group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from app.queue import keys, scripts
from app.redis_conn import as_text

CLAIM_COUNT = 100  # entries taken from one dead consumer per sweep


@dataclass(frozen=True, slots=True)
class Claimed:
    """A pending entry now held by this worker."""

    entry_id: bytes
    deliveries: int  # before this claim
    fields: dict[bytes, bytes] | None  # None: the entry was deleted while pending


class ConsumerGroup:
    """The workers' consumer group on each stream."""

    def __init__(self, redis: Redis) -> None:
        self.redis: Any = redis  # redis-py types stream replies as wide unions
        self._claim = redis.register_script(scripts.CLAIM)
        self._forget = redis.register_script(scripts.FORGET_CONSUMER)

    def dead(self, stream: str, alive: str) -> list[str]:
        """The stream's consumers other than `alive` whose heartbeat key is gone."""
        try:
            consumers = self.redis.xinfo_consumers(stream, keys.GROUP)
        except ResponseError:  # no stream or group yet (or Redis lost them): no one to claim
            return []
        names = [as_text(c["name"]) for c in consumers]
        others = [name for name in names if name != alive]
        if not others:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for name in others:
                pipe.exists(keys.worker(name))
            beating = pipe.execute()
        return [name for name, beats in zip(others, beating, strict=True) if not beats]

    def claim(self, stream: str, alive: str, idle_ms: int = 0, owner: str = "") -> list[Claimed]:
        """Move to `alive` the entries pending at least `idle_ms`, only `owner`'s when given
        (atomically, see scripts.CLAIM)."""
        reply = self._claim(keys=[stream], args=[keys.GROUP, alive, CLAIM_COUNT, idle_ms, owner])
        return [Claimed(eid, int(n), _fields(flat)) for eid, n, flat in reply]

    def forget(self, stream: str, consumer: str) -> bool:
        """Remove the consumer from the group if it holds no pending entry."""
        return bool(self._forget(keys=[stream], args=[keys.GROUP, consumer]))


def _fields(flat: list[bytes] | None) -> dict[bytes, bytes] | None:
    """A Lua-returned entry's [field, value, ...] as a dict."""
    return None if flat is None else dict(zip(flat[::2], flat[1::2], strict=True))

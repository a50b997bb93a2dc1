"""What the workers report: their heartbeats (device, loaded versions, failed loads) and the
depth of every served version's stream, for the admin API."""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from app.errors import RedisUnavailable
from app.queue import keys
from app.queue.errors import REDIS_ERRORS
from app.redis_conn import as_text
from app.registry import service
from app.services.backends import Backends, transact


async def workers(redis: Redis, heartbeat_ttl_s: float) -> list[dict[str, Any]]:
    """Every worker whose heartbeat is younger than `heartbeat_ttl_s`."""
    try:
        ids = await redis.zrangebyscore(keys.WORKERS, time.time() - heartbeat_ttl_s, "+inf")
        beats = [await redis.hgetall(keys.worker(as_text(wid))) for wid in ids]
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("worker heartbeats cannot be read: Redis is away") from exc
    return [
        _worker_view(as_text(wid), {as_text(k): as_text(v) for k, v in fields.items()})
        for wid, fields in zip(ids, beats, strict=True)
        if fields
    ]


def _worker_view(wid: str, beat: dict[str, str]) -> dict[str, Any]:
    return {
        "id": beat.get("id", wid),
        "host": beat.get("host", ""),
        "pid": int(beat.get("pid", "0")),
        "device": beat.get("device", ""),
        "models": json.loads(beat.get("models", "{}")),
        "failed_loads": json.loads(beat.get("failed_loads", "{}")),
        "last_error": beat.get("last_error", ""),
        "beat_age_s": round(time.time() - float(beat.get("beat_s", "0")), 3),
    }


async def queues(backends: Backends) -> dict[str, Any]:
    """Per served version: jobs waiting in its stream and entries a worker holds unacked;
    and the checks waiting."""
    served = await transact(backends.sessions, service.served)
    redis = backends.redis
    try:
        out = [
            {
                "model": version.model,
                "version": version.version,
                "depth": await redis.xlen(keys.stream(version.model, version.version)),
                "pending": await _pending(redis, keys.stream(version.model, version.version)),
            }
            for version in served
        ]
        checks = await redis.xlen(keys.CHECKS)
    except REDIS_ERRORS as exc:
        raise RedisUnavailable("queue depths cannot be read: Redis is away") from exc
    return {"queues": out, "checks": checks}


async def _pending(redis: Redis, stream: str) -> int:
    try:
        summary = await redis.xpending(stream, keys.GROUP)
    except REDIS_ERRORS:
        raise
    except Exception:  # no group yet: nothing pending
        return 0
    return int(summary.get("pending", 0))

"""Failing the jobs left in streams that no worker will read: the stream of a version that no
alias holds and no request named lately (`unaliased_idle_s`), or that was archived. Its entries
would otherwise wait for ever (async jobs stay "queued", and survive restarts).

An entry younger than `drain_s` is left alone (a request routed just before an alias move), and
so is a stream some live worker still holds loaded: that worker drains it."""

from __future__ import annotations

import logging
from typing import Any

from app.errors import VersionNotServed
from app.queue import keys
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer
from app.redis_conn import as_text
from app.settings import Settings
from app.worker.heartbeat import loaded_anywhere

log = logging.getLogger("hanmo.worker")


def sweep_stale(
    consumer: StreamConsumer, settings: Settings, served: set[str], loaded: set[str]
) -> int:
    """Fail the old entries of every stream whose version is not in `served` (aliased or
    wanted) and that no live worker holds; returns how many entries were failed."""
    redis = consumer.redis
    streams = [as_text(s) for s in redis.smembers(keys.STREAMS)]
    forget_departed_rates(redis, streams)
    unserved = [s for s in streams if _version_key(s) not in served | loaded]
    if not unserved:
        return 0
    held = loaded_anywhere(redis, settings.heartbeat_ttl_s)
    failed = 0
    for stream in unserved:
        if _version_key(stream) not in held:
            failed += _fail_stale(consumer, stream, now_ms() - int(settings.drain_s * 1000))
    return failed


def forget_departed_rates(redis: Any, streams: list[str]) -> None:
    """Remove from each stream's rates the workers that left the fleet (gone from the
    heartbeat set, 10 heartbeat TTLs after their last beat): admission sums live workers'
    rates only, and a worker's id is new at each start."""
    for stream in streams:
        rate_key = keys.rate(stream)
        measured = [as_text(w) for w in redis.hkeys(rate_key)]
        if not measured:
            continue
        with redis.pipeline(transaction=False) as pipe:
            for worker in measured:
                pipe.zscore(keys.WORKERS, worker)
            beats = pipe.execute()
        gone = [w for w, beat in zip(measured, beats, strict=True) if beat is None]
        if gone:
            redis.hdel(rate_key, *gone)


def _fail_stale(consumer: StreamConsumer, stream: str, before_ms: int) -> int:
    model, version = keys.stream_version(stream)
    consumer.ensure_group(stream)
    error = VersionNotServed(
        f"version {version} of {model} is no longer served (no alias holds it and no request"
        " named it lately, or it was archived)"
    )
    count = consumer.fail_waiting(stream, error, before_ms)
    if count:
        log.warning("worker.failed_stale version=%s:%s jobs=%d", model, version, count)
    else:
        consumer.forget_stream(stream)  # listed again by the next job enqueued on it
    return count


def _version_key(stream: str) -> str:
    model, version = keys.stream_version(stream)
    return f"{model}:{version}"

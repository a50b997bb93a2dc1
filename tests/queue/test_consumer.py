"""The worker side of the streams protocol on a real Redis: jobs admitted and answered once,
and the stale-stream helpers (failing what waits, forgetting empty streams, adopting streams
made before they were listed)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from app.errors import ServiceUnavailable
from app.queue import keys
from app.queue.client import JobQueue
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer
from app.queue.results import unpack
from app.queue.status import JobStatus
from app.redis_conn import async_client, sync_client
from app.settings import Settings

STREAM = keys.stream("m", 1)


def enqueue(settings: Settings, deadline_ms: int = 0) -> str:
    """One job, enqueued as the api enqueues it (app/queue/client.py); its id."""

    async def submit() -> str:
        redis = async_client(settings.redis_url)
        queue = JobQueue(redis, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
        inputs = {"z": np.zeros((1, 2), np.float32)}
        deadline = deadline_ms or now_ms() + 60_000
        try:
            done = await queue.submit(STREAM, inputs, {"model": "m"}, deadline, will_wait=False)
        finally:
            await redis.aclose()
        return done.job_id

    return asyncio.run(submit())


def consumer(redis: Any) -> StreamConsumer:
    return StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)


def status(redis: Any, job_id: str) -> str:
    return str(redis.hget(keys.job(job_id), "status"), "utf-8")


def test_enqueue_lists_the_stream_and_a_job_is_admitted_then_answered(settings: Settings) -> None:
    redis: Any = sync_client(settings.redis_url)
    a = enqueue(settings)
    assert redis.smembers(keys.STREAMS) == {STREAM.encode()}
    worker = consumer(redis)
    worker.ensure_group(STREAM)
    worker.ensure_group(STREAM)  # a second time is no error
    ((stream, entries),) = worker.read([STREAM], count=10)
    (job,) = worker.admit(stream, entries)
    assert status(redis, a) == JobStatus.RUNNING
    worker.fail(stream, job, ServiceUnavailable("no"))
    assert status(redis, a) == JobStatus.FAILED
    problem = unpack(redis.get(keys.result(a)) or b"").problem
    assert problem is not None
    assert (problem["status"], problem["model"], problem["version"]) == (503, "m", 1)
    assert redis.xlen(STREAM) == 0


def test_fail_waiting_fails_only_entries_added_before_the_cutoff(settings: Settings) -> None:
    redis: Any = sync_client(settings.redis_url)
    old = enqueue(settings)
    cutoff = int(redis.xinfo_stream(STREAM)["last-generated-id"].split(b"-")[0]) + 1
    redis.xadd(STREAM, {"job": "young"}, id=f"{cutoff + 10}-0")  # a later entry
    worker = consumer(redis)
    worker.ensure_group(STREAM)
    assert worker.fail_waiting(STREAM, ServiceUnavailable("gone"), before_ms=cutoff) == 1
    assert status(redis, old) == JobStatus.FAILED
    assert [eid for eid, _ in redis.xrange(STREAM)] == [f"{cutoff + 10}-0".encode()]


def test_an_empty_stream_is_forgotten_and_an_unlisted_one_adopted(settings: Settings) -> None:
    redis: Any = sync_client(settings.redis_url)
    enqueue(settings)
    worker = consumer(redis)
    worker.forget_stream(STREAM)  # not empty: kept
    assert redis.sismember(keys.STREAMS, STREAM)
    redis.delete(keys.STREAMS)  # as an older hanmo left it
    worker.adopt_streams()
    assert redis.sismember(keys.STREAMS, STREAM)
    worker.ensure_group(STREAM)
    worker.fail_waiting(STREAM, ServiceUnavailable("gone"))
    worker.forget_stream(STREAM)
    assert not redis.sismember(keys.STREAMS, STREAM)

"""Admission by cost (issue 46, item 3) on a real Redis: the stream's backlog is the summed
cost of its jobs (queued and running), kept by the scripts that add and delete entries; a job
is refused (429, Retry-After) when the backlog with it cannot finish by its deadline at the
rate live workers measured, and a synchronous job is refused (503) when no worker is alive."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from app.errors import NoWorker, Overloaded
from app.queue import keys
from app.queue.client import JobQueue
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer
from app.queue.status import JobStatus
from app.redis_conn import async_client, sync_client
from app.settings import Settings

STREAM = keys.stream("m", 1)
INPUTS = {"z": np.zeros((1, 2), np.float32)}


def submit_all(settings: Settings, jobs: list[dict[str, Any]]) -> list[Any]:
    """Submit each job ({cost, wait, deadline_s}); the Submitted, or the error raised."""

    async def scenario() -> list[Any]:
        redis = async_client(settings.redis_url)
        queue = JobQueue(redis, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
        found: list[Any] = []
        for job in jobs:
            deadline = now_ms() + int(job.get("deadline_s", 30) * 1000)
            try:
                found.append(
                    await queue.submit(
                        STREAM, INPUTS, {}, deadline, will_wait=False, cost=job["cost"]
                    )
                    if not job.get("wait")
                    else await queue.submit(STREAM, INPUTS, {}, deadline, cost=job["cost"])
                )
            except (NoWorker, Overloaded) as error:
                found.append(error)
            finally:
                queue.listener.forget(getattr(found[-1], "job_id", ""))
        await redis.aclose()
        return found

    return asyncio.run(scenario())


def backlog(redis: Any) -> int | None:
    value = redis.get(keys.backlog(STREAM))
    return None if value is None else int(value)


def live_worker(redis: Any, worker_id: str, rate: float | None) -> None:
    redis.zadd(keys.WORKERS, {worker_id: time.time()})
    if rate is not None:
        redis.hset(keys.rate(STREAM), worker_id, str(rate))


def test_backlog_follows_the_entries_and_goes_with_the_last(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    submitted = submit_all(settings, [{"cost": 2}, {"cost": 3}, {"cost": 5}])
    assert backlog(redis) == 10
    consumer = StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)
    consumer.ensure_group(STREAM)
    read = consumer.read([STREAM], count=1)
    jobs = consumer.admit(STREAM, read[0][1])
    assert [job.cost for job in jobs] == [2.0]
    consumer.finish(STREAM, jobs, [JobStatus.DONE], [b"D"])
    assert backlog(redis) == 8  # a finished job leaves the backlog
    job_id = submitted[1].job_id
    asyncio.run(_cancel(settings, job_id))
    assert backlog(redis) == 5  # so does a cancelled one
    entry = redis.xrange(STREAM)[0][0]
    consumer.drop(STREAM, entry)
    assert backlog(redis) is None  # the last one gone: no backlog left behind


async def _cancel(settings: Settings, job_id: str) -> None:
    redis = async_client(settings.redis_url)
    queue = JobQueue(redis, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
    await queue.cancel(job_id, STREAM)
    await redis.aclose()


def test_work_that_cannot_finish_by_its_deadline_is_refused_with_when_to_retry(
    settings: Settings,
) -> None:
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=10.0)  # 10 units a second
    fits, too_much, second, later = submit_all(
        settings,
        [
            {"cost": 200, "deadline_s": 30},  # 20 s of work: fits in 30 s
            {"cost": 500, "deadline_s": 30},  # 20 + 50 s: 40 s too late
            {"cost": 200, "deadline_s": 30},  # 20 + 20 s: 10 s too late
            {"cost": 200, "deadline_s": 300},  # an async job's longer deadline: fits
        ],
    )
    assert not isinstance(fits, Exception)
    assert isinstance(too_much, Overloaded)
    assert too_much.status == 429
    assert too_much.problem()["retry_after_s"] == 40
    assert isinstance(second, Overloaded)
    assert second.problem()["retry_after_s"] == 10
    assert not isinstance(later, Exception)
    assert backlog(redis) == 400  # refused jobs add nothing
    assert redis.xlen(STREAM) == 2


def test_only_live_workers_rates_count(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=1.0)
    redis.hset(keys.rate(STREAM), "gone", "1000")  # a worker no longer in the fleet
    (refused,) = submit_all(settings, [{"cost": 100, "deadline_s": 30}])
    assert isinstance(refused, Overloaded)  # 100 s at 1/s: w1 alone counts
    assert redis.hget(keys.rate(STREAM), "gone") is None
    redis.hset(keys.rate(STREAM), "w2", "9")
    live_worker(redis, "w2", rate=None)
    (accepted,) = submit_all(settings, [{"cost": 100, "deadline_s": 30}])
    assert not isinstance(accepted, Exception)  # 10/s together: 10 s


@pytest.mark.parametrize("wait", [True, False])
def test_a_synchronous_job_needs_a_live_worker(settings: Settings, wait: bool) -> None:
    redis = sync_client(settings.redis_url)
    redis.zadd(keys.WORKERS, {"stale": time.time() - 3600})
    (answer,) = submit_all(settings, [{"cost": 1, "wait": wait}])
    if wait:
        assert isinstance(answer, NoWorker)
        assert answer.status == 503
        assert redis.xlen(STREAM) == 0
    else:  # an async job waits in the queue for a worker
        assert not isinstance(answer, Exception)
        assert redis.xlen(STREAM) == 1


def test_reads_follow_the_rows_of_recent_jobs(settings: Settings) -> None:
    """A worker reads about `count` rows a stream: as many entries as its jobs' rows fit, known
    for a stream not read yet from its oldest entry (before, 256 entries regardless of size:
    one worker held 129 jobs of 1,024 rows)."""
    redis = sync_client(settings.redis_url)
    big = {"z": np.zeros((128, 2), np.float32)}

    async def enqueue(n: int) -> None:
        client = async_client(settings.redis_url)
        queue = JobQueue(client, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
        for _ in range(n):
            await queue.submit(STREAM, big, {}, now_ms() + 30_000, will_wait=False, cost=128)
        await client.aclose()

    asyncio.run(enqueue(10))
    consumer = StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)
    consumer.ensure_group(STREAM)
    first = consumer.read([STREAM], count=256)[0][1]
    assert len(first) == 2  # the oldest entry has 128 rows: two fill 256 rows
    consumer.admit(STREAM, first)
    second = consumer.read([STREAM], count=256)[0][1]
    assert len(second) == 2

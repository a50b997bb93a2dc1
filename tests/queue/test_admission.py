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
from app.queue.consumer import READ_SLICE_S, StreamConsumer
from app.queue.results import unpack
from app.queue.status import JobStatus
from app.redis_conn import async_client, sync_client
from app.settings import Settings
from app.worker.stale import forget_departed_rates

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
    assert too_much.problem()["retry_after_s"] in (40, 41)  # the ms between deadline and ENQUEUE
    assert isinstance(second, Overloaded)
    assert second.problem()["retry_after_s"] in (10, 11)
    assert not isinstance(later, Exception)
    assert backlog(redis) == 400  # refused jobs add nothing
    assert redis.xlen(STREAM) == 2


def test_only_live_workers_rates_count(settings: Settings) -> None:
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=1.0)
    redis.hset(keys.rate(STREAM), "gone", "1000")  # a worker no longer in the fleet
    (refused,) = submit_all(settings, [{"cost": 100, "deadline_s": 30}])
    assert isinstance(refused, Overloaded)  # 100 s at 1/s: w1 alone counts
    forget_departed_rates(redis, [STREAM])  # the stale sweep's part
    assert redis.hget(keys.rate(STREAM), "gone") is None
    assert redis.hget(keys.rate(STREAM), "w1") is not None
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


def test_reads_take_no_more_than_a_slice_of_work(settings: Settings) -> None:
    """Small jobs that each took long (a style request's 256 glyphs) are read a few at a time
    while the worker serves other streams, not as many as their rows fit: a worker that read
    128 of them ran them for 30 s while a one-row sample on another stream waited."""
    redis = sync_client(settings.redis_url)
    asyncio.run(_enqueue_small(settings, 40))
    consumer = StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)
    other = keys.stream("other", 1)  # a second model this worker serves
    for stream in (STREAM, other):
        consumer.ensure_group(stream)
    first = consumer.read([STREAM, other], count=20)[0][1]
    assert len(first) == 20  # one row each, nothing known of their time: rows decide
    consumer.admit(STREAM, first)
    consumer.learn_time(STREAM, jobs=1, busy_s=READ_SLICE_S / 2)
    second = consumer.read([STREAM, other], count=20)[0][1]
    assert len(second) == 2  # two jobs' worth of time fill the slice
    alone = consumer.read([STREAM], count=20)[0][1]
    assert len(alone) == 18  # no other stream waits: rows decide (batches stay whole)


async def _enqueue_small(settings: Settings, n: int) -> None:
    client = async_client(settings.redis_url)
    queue = JobQueue(client, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
    for _ in range(n):
        await queue.submit(STREAM, INPUTS, {}, now_ms() + 30_000, will_wait=False, cost=1)
    await client.aclose()


def test_a_step_with_another_to_come_is_admitted_only_if_both_can_finish(
    settings: Settings,
) -> None:
    """A style request's encode is followed by its generate, which joins the back of the
    queue: the encode is refused when the backlog, met twice, and both steps cannot finish
    by the deadline (the flood before this rule: 21 of 1,469 style requests 504 after being
    admitted)."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=10.0)  # 10 cost units a second
    submit_all(settings, [{"cost": 40}])  # a backlog of 4 s

    async def encode(then_cost: float) -> Any:
        client = async_client(settings.redis_url)
        queue = JobQueue(client, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
        deadline = now_ms() + 10_000
        try:
            return await queue.submit(
                STREAM, INPUTS, {}, deadline, will_wait=False, cost=10, then_cost=then_cost
            )
        except Overloaded as error:
            return error
        finally:
            await client.aclose()

    alone = asyncio.run(encode(0))  # 4 s + 1 s of 10 s: admitted
    assert not isinstance(alone, Overloaded)
    # now 5 s queued: this step (1 s) and its next (3 s) behind 2 x 5 s cannot finish in 10 s
    refused = asyncio.run(encode(30))
    assert isinstance(refused, Overloaded)
    assert refused.problem()["retry_after_s"] in (4, 5)  # 14 s of work, 10 s less a few ms left
    assert backlog(redis) == 50  # nothing written for the refused one


def test_a_worker_sheds_the_jobs_its_batch_cannot_finish_in_time(settings: Settings) -> None:
    """Admitted on a rate measured when it was quieter: at the pace the worker now measures
    (2 s a cost unit), a batch of four ends 8 s after it starts; the jobs due in 5 s (waited for or
    not) are answered 429 at once, except the batch's first (it runs, and the pace is
    measured again); the one due in 30 s runs."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)
    jobs = [
        {"cost": 1, "wait": True, "deadline_s": 5},
        {"cost": 1, "wait": True, "deadline_s": 5},
        {"cost": 1, "deadline_s": 5},
        {"cost": 1, "wait": True, "deadline_s": 30},
    ]
    submitted = submit_all(settings, jobs)
    consumer = StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)
    consumer.ensure_group(STREAM)
    consumer.learn_time(STREAM, jobs=1, busy_s=2.0, cost=1.0)
    ((stream, entries),) = consumer.read([STREAM], count=10)
    running = consumer.admit(stream, entries)
    ids = [s.job_id for s in submitted]
    assert [job.job_id for job in running] == [ids[0], ids[3]]
    for job_id in (ids[1], ids[2]):
        shed = unpack(redis.get(keys.result(job_id)) or b"").problem
        assert shed is not None
        assert (shed["status"], shed["type"]) == (429, "https://hanmo.dev/problems/overloaded")
        assert shed["retry_after_s"] >= 1
        assert redis.hget(keys.job(job_id), "status") == JobStatus.FAILED.encode()
    assert redis.xlen(STREAM) == 2  # the shed jobs' entries are gone, their cost off the backlog
    assert backlog(redis) == 2


def test_a_batch_first_job_is_shed_when_late_even_at_twice_the_pace(settings: Settings) -> None:
    """The first job of a batch runs so that the pace is measured again, unless it could not
    finish by its deadline even at twice the measured pace: its client would get a 504. The
    pace is per cost unit: a cheap job behind it (cost 1 of 40) is not judged by the big one."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)
    jobs = [
        {"cost": 40, "wait": True, "deadline_s": 5},  # 40 x 0.5 s: 20 s, 10 s at twice the pace
        {"cost": 1, "wait": True, "deadline_s": 5},  # alone: 0.5 s
    ]
    submitted = submit_all(settings, jobs)
    consumer = StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)
    consumer.ensure_group(STREAM)
    consumer.learn_time(STREAM, jobs=2, busy_s=5.0, cost=10.0)  # 0.5 s a cost unit
    ((stream, entries),) = consumer.read([STREAM], count=10)
    running = consumer.admit(stream, entries)
    big, small = (s.job_id for s in submitted)
    assert [job.job_id for job in running] == [small]
    shed = unpack(redis.get(keys.result(big)) or b"").problem
    assert shed is not None
    assert shed["status"] == 429
    assert shed["retry_after_s"] in (15, 16)  # done in 20 s, due in 5 s less a few ms


def test_each_work_class_is_priced_at_its_own_pace(settings: Settings) -> None:
    """A stream's jobs with other input names (a style's encode, its generate) are timed apart:
    after many cheap batches of one class (100 cost units a second), a job of the slow class
    (0.5 a second) behind a cheap one is judged at its own pace (cost 4: 8 s, due in 5 s: shed),
    where one pace for the stream, set by the cheap batches, ran it into a 504. The rate
    published for admission is the slowest class's."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)
    consumer = StreamConsumer(redis, "w1", max_deliveries=3, result_ttl_s=lambda _: 60)
    consumer.ensure_group(STREAM)
    consumer.learn_time(STREAM, jobs=1, busy_s=8.0, cost=4.0, work=("x",))  # 0.5 a second
    for _ in range(20):
        consumer.learn_time(STREAM, jobs=1, busy_s=0.01, cost=1.0, work=("z",))
    assert consumer.rate(STREAM, ("z",)) == pytest.approx(100.0)
    assert consumer.rate(STREAM, ("x",)) == pytest.approx(0.5)
    assert consumer.rate(STREAM) == pytest.approx(0.5)  # what admission is told

    async def scenario() -> list[str]:
        client = async_client(settings.redis_url)
        queue = JobQueue(client, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
        due = now_ms() + 5000
        cheap = await queue.submit(STREAM, INPUTS, {}, due, will_wait=False, cost=1)
        slow_inputs = {"x": np.zeros((1, 2), np.float32)}
        slow = await queue.submit(STREAM, slow_inputs, {}, due, will_wait=False, cost=4)
        await client.aclose()
        return [cheap.job_id, slow.job_id]

    cheap, slow = asyncio.run(scenario())
    ((stream, entries),) = consumer.read([STREAM], count=10)
    running = consumer.admit(stream, entries)
    assert [job.job_id for job in running] == [cheap]
    shed = unpack(redis.get(keys.result(slow)) or b"").problem
    assert shed is not None
    assert shed["status"] == 429
    assert shed["retry_after_s"] in (3, 4)  # done in 8.01 s, due in 5 s less a few ms


def test_admission_plans_to_fill_only_its_headroom_of_the_deadline(settings: Settings) -> None:
    """With a headroom of 0.8, a job that the measured rate would finish in 5 s of the 6 s to
    its deadline is refused (5 s > 4.8 s): the margin is for a worker running slower than its
    measured average, whose job would otherwise be a 504. With 1.0 the same job is admitted."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=10.0)  # 10 cost units a second
    submit_all(settings, [{"cost": 40}])  # a backlog of 4 s

    async def one(headroom: float) -> Any:
        client = async_client(settings.redis_url)
        queue = JobQueue(
            client, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60,
            admit_headroom=headroom,
        )  # fmt: skip
        try:
            return await queue.submit(STREAM, INPUTS, {}, now_ms() + 6_000, False, cost=10)
        except Overloaded as error:
            return error
        finally:
            await client.aclose()

    refused = asyncio.run(one(0.8))
    assert isinstance(refused, Overloaded)
    assert refused.problem()["retry_after_s"] == 1
    assert not isinstance(asyncio.run(one(1.0)), Overloaded)

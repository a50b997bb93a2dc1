"""A worker's look at its queue (app/queue/late.py) on a real Redis: jobs nobody has read yet
that can no longer finish by their deadline at the measured pace are answered 429 at once, not
left to a 504 at the deadline; on-time jobs, started jobs and a job with nothing ahead stay."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from app.queue import keys
from app.queue.client import JobQueue
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer
from app.queue.late import QueueLook
from app.queue.results import unpack
from app.queue.status import JobStatus
from app.redis_conn import async_client, sync_client
from app.settings import Settings
from tests.queue.test_admission import STREAM, backlog, live_worker, submit_all


def worker(settings: Settings, rate: float, worker_id: str = "w1") -> StreamConsumer:
    """A consumer that measured `rate` cost units a second on the stream (class ('z',))."""
    consumer = StreamConsumer(
        sync_client(settings.redis_url), worker_id, max_deliveries=3, result_ttl_s=lambda _: 60
    )
    consumer.ensure_group(STREAM)
    consumer.learn_time(STREAM, jobs=1, busy_s=1.0, cost=rate, work=("z",))
    return consumer


def shed_problem(redis: Any, job_id: str) -> dict[str, Any] | None:
    """The problem a job was answered with (None: no answer yet)."""
    blob = redis.get(keys.result(job_id))
    return None if blob is None else unpack(blob).problem


def test_queued_jobs_that_cannot_finish_in_time_are_answered_429_at_once(
    settings: Settings,
) -> None:
    """At 1 cost unit a second, four queued jobs of cost 2: the first (nothing ahead) stays for
    the read-time shedding; the second would end at 4 s, due in 3 s: shed, and it takes no
    time from those behind; the third ends at 4 s, due in 30 s: stays; the fourth, due in 5 s,
    would end at 6 s: shed. The entries and their cost leave the queue."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)  # no rate yet: admission lets every job in
    consumer = worker(settings, rate=1.0)
    jobs = [
        {"cost": 2, "wait": True, "deadline_s": 1},
        {"cost": 2, "wait": True, "deadline_s": 3},
        {"cost": 2, "deadline_s": 30},
        {"cost": 2, "wait": True, "deadline_s": 5},
    ]
    ids = [s.job_id for s in submit_all(settings, jobs)]
    live_worker(redis, "w1", rate=1.0)
    look = QueueLook(consumer, heartbeat_ttl_s=10)
    assert look.shed_late(STREAM, look.live_workers(), margin_s=0.5) == 2
    for job_id in (ids[1], ids[3]):
        problem = shed_problem(redis, job_id)
        assert problem is not None
        assert (problem["status"], problem["type"]) == (
            429,
            "https://hanmo.dev/problems/overloaded",
        )
        assert problem["retry_after_s"] in (1, 2)  # 1 s late, and the ms since it was sent
        assert redis.hget(keys.job(job_id), "status") == JobStatus.FAILED.encode()
    for job_id in (ids[0], ids[2]):
        assert redis.get(keys.result(job_id)) is None
        assert redis.hget(keys.job(job_id), "status") == JobStatus.QUEUED.encode()
    assert redis.xlen(STREAM) == 2
    assert backlog(redis) == 4
    ((_, entries),) = consumer.read([STREAM], count=10)  # the rest is read as usual
    assert [fields[b"job"].decode() for _, fields in entries] == [ids[0], ids[2]]


def test_a_started_job_is_left_to_its_worker_and_counts_as_half_done(settings: Settings) -> None:
    """A job read and started (cost 4, at 1 a second) counts 2 s ahead of the queue: the job
    behind it (cost 1, due in 2.5 s) would end at 3 s, so it is shed; the started job, due in
    1 s, is its worker's to answer (between chunks), never the look's."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)
    consumer = worker(settings, rate=1.0)
    ids = [
        s.job_id
        for s in submit_all(
            settings, [{"cost": 4, "deadline_s": 1}, {"cost": 1, "wait": True, "deadline_s": 2.5}]
        )
    ]
    live_worker(redis, "w1", rate=1.0)
    entries = consumer.read([STREAM], count=1)[0][1]
    for _, fields in entries:  # started as admit would, without its read-time shedding
        redis.hset(keys.job(fields[b"job"].decode()), "status", JobStatus.RUNNING.value)
    look = QueueLook(consumer, heartbeat_ttl_s=10)
    assert look.shed_late(STREAM, look.live_workers(), margin_s=0.0) == 1
    assert redis.hget(keys.job(ids[0]), "status") == JobStatus.RUNNING.encode()
    assert redis.get(keys.result(ids[0])) is None
    assert shed_problem(redis, ids[1]) is not None


def test_each_job_is_priced_at_its_class_pace_and_the_pace_is_shared_by_live_workers(
    settings: Settings,
) -> None:
    """Behind a slow job (class x, 0.25 a second: cost 1 is 4 s ahead), a cheap one of class z
    (10 a second) due in 6 s ends at 4.1 s and stays, where the stream's slowest pace would
    price it at 4 s and shed it (8 s). A job of class x (cost 1, due in 7 s) behind them would
    end at 8.1 s with this worker alone: shed; with a second live worker publishing the same
    rate, the queue runs twice as fast (it would end at 4.05 s) and nothing is shed. (Margins
    of 1.1 s or more, for a slow test machine between the submits and the look.)"""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)
    consumer = worker(settings, rate=10.0)
    consumer.learn_time(STREAM, jobs=1, busy_s=4.0, cost=1.0, work=("x",))
    assert consumer.rate(STREAM) == 0.25

    async def scenario(plan: list[tuple[str, float]]) -> list[str]:
        client = async_client(settings.redis_url)
        queue = JobQueue(client, "t", max_depth=100, result_ttl_s=60, idempotency_ttl_s=60)
        found = []
        for name, due_s in plan:
            inputs = {name: np.zeros((1, 2), np.float32)}
            due = now_ms() + int(due_s * 1000)
            found.append((await queue.submit(STREAM, inputs, {}, due, will_wait=False)).job_id)
        await client.aclose()
        return found

    ids = asyncio.run(scenario([("x", 30.0), ("z", 6.0), ("x", 7.0)]))
    live_worker(redis, "w1", rate=0.25)
    assert [f[b"work"] for _, f in redis.xrange(STREAM)] == [b"x", b"z", b"x"]  # ENQUEUE's
    look = QueueLook(consumer, heartbeat_ttl_s=10)
    live_worker(redis, "w2", rate=0.25)
    assert look.shed_late(STREAM, look.live_workers(), margin_s=0.0) == 0
    redis.zrem(keys.WORKERS, "w2")
    assert look.shed_late(STREAM, look.live_workers(), margin_s=0.0) == 1
    assert [shed_problem(redis, job_id) is not None for job_id in ids] == [False, False, True]


def test_a_job_answered_meanwhile_is_not_answered_again(settings: Settings) -> None:
    """The look's answer is guarded: a job a worker started between the look's read and its
    answer stays with the worker (0 answered), and a job already answered is left as it is."""
    redis = sync_client(settings.redis_url)
    live_worker(redis, "w1", rate=None)
    consumer = worker(settings, rate=1.0)
    ids = [
        s.job_id
        for s in submit_all(settings, [{"cost": 2, "deadline_s": 30}, {"cost": 2, "deadline_s": 1}])
    ]
    live_worker(redis, "w1", rate=1.0)
    redis.hset(keys.job(ids[1]), "status", JobStatus.RUNNING.value)  # a worker took it
    look = QueueLook(consumer, heartbeat_ttl_s=10)
    assert look.shed_late(STREAM, look.live_workers(), margin_s=0.0) == 0
    assert redis.get(keys.result(ids[1])) is None
    assert redis.xlen(STREAM) == 2

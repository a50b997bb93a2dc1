"""The api-side queue client on a real Redis."""

from __future__ import annotations

import asyncio

import numpy as np

from app.queue import keys
from app.queue.client import JobQueue
from app.queue.clock import now_ms
from app.queue.results import pack_done
from app.redis_conn import async_client
from app.settings import Settings


def test_reply_that_arrives_before_wait_is_not_lost(settings: Settings) -> None:
    """The worker may answer before the enqueue call returns to the api; the waiter made
    at submit must still receive that reply (no result key exists here to fall back on)."""

    async def scenario() -> np.ndarray:
        redis = async_client(settings.redis_url)
        queue = JobQueue(  # this test answers the job itself: no worker runs
            redis, "test", max_depth=10, result_ttl_s=60, idempotency_ttl_s=60,
            need_live_worker=False,
        )  # fmt: skip
        queue.listener.start()
        await asyncio.wait_for(queue.listener.connected.wait(), 5)
        stream = keys.stream("m", 1)
        submitted = await queue.submit(
            stream, {"z": np.zeros((1, 2), np.float32)}, {}, now_ms() + 10_000
        )
        blob = pack_done({"x": np.arange(3, dtype=np.float32)}, {})
        await redis.publish(queue.listener.channel, submitted.job_id.encode() + b"\n" + blob)
        await asyncio.sleep(0.2)  # the reply is delivered before anyone waits
        outcome = await queue.wait(submitted, now_ms() + 300)  # shorter than the fallback poll
        await queue.listener.stop()
        await redis.aclose()
        assert outcome.tensors is not None
        return outcome.tensors["x"]

    assert asyncio.run(scenario()).tolist() == [0.0, 1.0, 2.0]


def test_async_submission_registers_no_waiter(settings: Settings) -> None:
    async def scenario() -> int:
        redis = async_client(settings.redis_url)
        queue = JobQueue(redis, "test", max_depth=10, result_ttl_s=60, idempotency_ttl_s=60)
        submitted = await queue.submit(
            keys.stream("m", 1),
            {"z": np.zeros((1, 2), np.float32)},
            {},
            now_ms() + 10_000,
            will_wait=False,
        )
        await redis.aclose()
        assert not submitted.waiting
        return len(queue.listener._waiters)

    assert asyncio.run(scenario()) == 0

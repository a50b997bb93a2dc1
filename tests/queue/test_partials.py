"""A running job's rows as they finish (app/queue/partials.py), on a real Redis: a chunk of a
batch is cut into each asking job's own rows, counted from the job's first row."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from app.queue import keys, partials
from app.queue.clock import now_ms
from app.queue.entries import Job
from app.redis_conn import async_client, sync_client
from app.settings import Settings


def job(redis: Any, job_id: str, rows: int, wants: bool) -> Job:
    redis.hset(keys.job(job_id), "meta", json.dumps({"op": "generate", "partials": wants}))
    inputs = {"codepoint": np.zeros(rows, np.int64)}
    return Job("1-0", job_id, inputs, now_ms() + 60_000, "reply")


def read_all(settings: Settings, job_id: str) -> list[tuple[int, dict[str, np.ndarray]]]:
    async def read() -> list[tuple[int, dict[str, np.ndarray]]]:
        redis = async_client(settings.redis_url)
        try:
            return (await partials.read(redis, job_id, "0-0"))[0]
        finally:
            await redis.aclose()

    return asyncio.run(read())


def test_a_chunk_is_cut_into_the_rows_of_each_job_that_asks(settings: Settings) -> None:
    redis: Any = sync_client(settings.redis_url)
    asks = (True, True, False)
    jobs = [job(redis, f"{'a' * 8}{i:016x}", 40, wants) for i, wants in enumerate(asks)]
    wants = partials.wanted(redis, jobs)
    glyphs = np.arange(120, dtype=np.float32)[:, None]  # row r of the batch holds r
    for part in (slice(0, 64), slice(64, 120)):
        partials.publish(redis, jobs, wants, part, {"glyph": glyphs[part]})
    first, second, third = (read_all(settings, j.job_id) for j in jobs)
    assert wants == [True, True, False]
    assert [(start, t["glyph"][:, 0].tolist()) for start, t in first] == [(0, list(range(40)))]
    assert [(start, t["glyph"][:, 0].tolist()) for start, t in second] == [
        (0, list(range(40, 64))),  # the job's rows 0-23, in the batch's first chunk
        (24, list(range(64, 80))),  # its rows 24-39, in the second
    ]
    assert third == []
    assert 0 < redis.ttl(keys.partial(jobs[0].job_id)) <= 60 + partials.GRACE_S

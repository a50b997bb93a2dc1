"""A running job's rows as they finish (issue 49, item 2: a style request's glyphs streamed).

A job whose meta asks for them (`partials`: true) gets each finished chunk of its rows
appended by the worker to its own stream (`keys.partial`), bounded (MAXLEN) and expiring a
little after the job's deadline; the api reads them while it waits for the result. An entry
holds `start` (the chunk's first row, counted in the job's rows) and `tensors` (the codec
frame of the job's outputs for those rows). A batch's last chunk is not written: the result,
which holds every row, follows at once."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from app.queue import codec, keys
from app.queue.clock import now_ms
from app.queue.entries import Entries, Job
from app.queue.errors import REDIS_ERRORS

log = logging.getLogger("hanmo.queue")
MAX_ENTRIES = 64  # chunks kept per job: a job's rows / its chunk's rows (256 glyphs: 3)
GRACE_S = 30  # kept this long past the job's deadline, for a reader that resumes late
Partial = tuple[int, dict[str, np.ndarray]]  # (first row, the outputs of the chunk's rows)


def wanted(redis: Redis, jobs: Sequence[Job]) -> list[bool]:
    """Which of a batch's jobs asked for their rows as they finish (one round trip; none
    when Redis is away: the result still comes)."""
    try:
        pipe = redis.pipeline(transaction=False)
        for job in jobs:
            pipe.hget(keys.job(job.job_id), "meta")
        metas = pipe.execute()
    except REDIS_ERRORS:
        return [False] * len(jobs)
    return [bool(meta) and json.loads(meta).get("partials") is True for meta in metas]


def publish(
    redis: Redis,
    jobs: Sequence[Job],
    wants: Sequence[bool],
    part: slice,
    outputs: dict[str, np.ndarray],
) -> None:
    """Append the rows of chunk `part` (rows of the batch; `outputs` are that chunk's) to the
    stream of each job that `wants` them. Best effort: a failure costs only earliness."""
    pipe = redis.pipeline(transaction=False)
    first = 0  # the job's first row in the batch
    for job, want in zip(jobs, wants, strict=True):
        low, high = max(part.start, first), min(part.stop, first + job.rows)
        if want and low < high:
            rows = {
                name: out[low - part.start : high - part.start] for name, out in outputs.items()
            }
            key = keys.partial(job.job_id)
            entry = {"start": low - first, "tensors": codec.encode(rows)}
            pipe.xadd(key, entry, maxlen=MAX_ENTRIES, approximate=False)  # type: ignore[arg-type]
            pipe.expire(key, max(0, job.deadline_ms - now_ms()) // 1000 + GRACE_S)
        first += job.rows
    try:
        pipe.execute()
    except REDIS_ERRORS as exc:
        log.warning("queue.partial_failed jobs=%d error=%r", len(jobs), exc)


async def read(redis: AsyncRedis, job_id: str, after: str) -> tuple[list[Partial], str]:
    """The chunks of `job_id` written after entry `after` ("0-0": all), and the last one's id
    (none while Redis is away: the result brings every row)."""
    try:
        found: list[tuple[bytes, Entries]] = await redis.xread({keys.partial(job_id): after})  # type: ignore[assignment]
    except REDIS_ERRORS:
        return [], after
    chunks: list[Partial] = []
    for _, entries in found or []:
        for entry_id, fields in entries:
            chunks.append((int(fields[b"start"]), codec.decode(fields[b"tensors"])))
            after = entry_id.decode()
    return chunks, after

"""The api side of the queue: admit and enqueue jobs, await their results, read and cancel."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from app import tracing
from app.errors import (
    DeadlineExceeded,
    HanmoError,
    JobNotCancellable,
    JobNotFound,
    NoWorker,
    Overloaded,
    QueueFull,
    RedisUnavailable,
)
from app.logs import REQUEST_ID
from app.queue import codec, keys, scripts
from app.queue.clock import now_ms
from app.queue.entries import work_class
from app.queue.errors import REDIS_ERRORS
from app.queue.listener import ReplyListener
from app.queue.results import Outcome, pack_failed, unpack
from app.redis_conn import as_text

FALLBACK_POLL_S = 0.5
# How long the record and result of a delivered synchronous job stay (FINISH sets it): long
# enough for a waiter that missed the pub/sub message to read the result by polling (every
# FALLBACK_POLL_S), short enough that Redis holds the work in flight, not the last answers.
FORGET_AFTER_S = 5
LIVE_WORKERS_S = 0.5  # how long the api reuses its read of the live workers (admission)


@dataclass(frozen=True, slots=True)
class Submitted:
    job_id: str
    duplicate: bool  # an Idempotency-Key that already named this job
    waiting: bool  # a reply waiter was registered before the enqueue


class JobQueue:
    def __init__(
        self,
        redis: Redis,
        instance_id: str,
        *,
        max_depth: int,
        result_ttl_s: int,
        idempotency_ttl_s: int,
        observe: Callable[[Outcome], None] | None = None,
        admit_by_cost: bool = True,
        admit_headroom: float = 1.0,
        heartbeat_ttl_s: float = 10.0,
        need_live_worker: bool = True,
        min_replica_acks: int = 0,
        replica_ack_timeout_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.listener = ReplyListener(redis, keys.reply_channel(instance_id), observe)
        self.max_depth = max_depth
        self.result_ttl_s = result_ttl_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self.admit_by_cost = admit_by_cost
        self.admit_headroom = admit_headroom  # the share of a deadline admission may fill
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.need_live_worker = need_live_worker  # for synchronous jobs (503 without one)
        self.replica_acks = (min_replica_acks, replica_ack_timeout_ms)  # WAIT n ms
        self._enqueue = redis.register_script(scripts.ENQUEUE)
        self._cancel = redis.register_script(scripts.CANCEL)
        self._live: tuple[float, str] = (-math.inf, "")  # (read at, comma-joined live ids)
        self.cluster = isinstance(redis, AsyncRedisCluster)

    async def submit(
        self,
        stream: str,
        inputs: dict[str, np.ndarray],
        meta: dict[str, Any],
        deadline_ms: int,
        idempotency_key: str | None = None,
        will_wait: bool = True,
        cost: float = 1.0,
        then_cost: float = 0.0,
        forget: bool = False,
    ) -> Submitted:
        """Admit and enqueue one job: 429 when the stream is at its depth limit, or when its
        backlog (with this job's `cost`) cannot finish by the deadline at the rate the workers
        measured (and, when `then_cost` > 0, its request's next step after it); a synchronous
        job (`will_wait`) gets 503 when no worker is alive. With `will_wait`, the reply waiter
        is registered first, and `wait` must follow. `forget`: nobody asks for the job once
        its waiter has it, so its record and result expire FORGET_AFTER_S after it finishes
        (set by FINISH: no delete from the api, one round trip less a request)."""
        job_id = keys.new_job_id(stream)
        if will_wait:
            self.listener.expect(job_id)
        try:
            verdict, value = await self._run_enqueue(
                stream,
                job_id,
                (codec.encode(inputs), ",".join(work_class(inputs))),
                meta,
                deadline_ms,
                idempotency_key,
                (will_wait, cost, then_cost, False),
                forget,
            )
        except HanmoError:
            self.listener.forget(job_id)
            raise
        return Submitted(value.decode(), verdict == b"dup", will_wait and verdict == b"ok")

    async def check(
        self,
        stream: str,
        deadline_ms: int,
        idempotency_key: str | None = None,
        will_wait: bool = True,
        cost: float = 1.0,
        then_cost: float = 0.0,
    ) -> None:
        """Raise what `submit` would raise for this job (429, 503), writing nothing: a route
        calls it before the costly part of reading a request (decoding a style's references),
        so that a refused request costs the api little."""
        job_id = keys.stream_tag(stream)  # names no job; only its slot matters (a dry run)
        await self._run_enqueue(
            stream,
            job_id,
            (b"", ""),
            {},
            deadline_ms,
            idempotency_key,
            (will_wait, cost, then_cost, True),
        )

    async def _run_enqueue(
        self,
        stream: str,
        job_id: str,
        inputs: tuple[bytes, str],
        meta: dict[str, Any],
        deadline_ms: int,
        idempotency_key: str | None,
        how: tuple[bool, float, float, bool],
        forget: bool = False,
    ) -> tuple[bytes, bytes]:
        """The ENQUEUE script's verdict and value; its refusals raised as problems. `inputs`:
        the encoded tensors and their names, comma-joined (the job's work class, which a
        worker's look at its queue prices by, app/queue/late.py)."""
        will_wait, cost, then_cost, dry = how
        fields: dict[str, Any] = {
            "meta": json.dumps(meta),
            "stream": stream,
            "created_ms": now_ms(),
            "deadline_ms": deadline_ms,
            "reply": self.listener.channel,
        }
        if forget:
            fields["forget_s"] = FORGET_AFTER_S  # read by FINISH (app/queue/scripts.py)
        idem = keys.idempotency(stream, idempotency_key or "")
        script_keys = [stream, keys.job(job_id), idem, keys.backlog(stream), keys.rate(stream)]
        if not self.cluster:  # one server: the script lists the stream itself
            script_keys.append(keys.STREAMS)
        try:
            args: list[Any] = [
                self.max_depth,
                job_id,
                inputs[0],
                deadline_ms,
                self.listener.channel,
                self.result_ttl_s,
                self.idempotency_ttl_s,
                meta.get("alias") or "",
                str(max(0, math.ceil(cost))),  # whole units (app/queue/scripts.py)
                now_ms(),
                "1" if self.admit_by_cost else "0",
                await self._live_workers(),
                "1" if will_wait and self.need_live_worker else "0",
                str(max(0, math.ceil(then_cost))),
                "1" if dry else "0",
                "1" if idempotency_key else "0",
                str(self.admit_headroom),
                "" if dry else tracing.traceparent(),  # the caller's span: the job's parent
                "" if dry else REQUEST_ID.get(),
                inputs[1],
            ]
            for pair in fields.items():
                args.extend(pair)
            verdict, value = await self._enqueue_replicated(
                not (will_wait or dry),  # answered 202: WAIT for replicas first
                idem,
                keys=script_keys,
                args=args,
            )
            if verdict == b"ok" and not dry and self.cluster:
                # listed for the stale sweep after the entry exists (app/worker/stale.py);
                # on a cluster the set is in another slot than the script's keys
                await self.redis.sadd(keys.STREAMS, stream)
        except REDIS_ERRORS as exc:
            raise RedisUnavailable("the job queue cannot be reached; retry shortly") from exc
        if verdict == b"dup":
            self.listener.forget(job_id)
        if verdict == b"full":
            raise QueueFull(f"the queue holds {value.decode()} jobs, its limit", retry_after_s=1)
        if verdict == b"busy":
            late_s = int(value)
            raise Overloaded(
                "the work queued for this model cannot finish by this request's deadline at "
                f"the rate its workers run (about {late_s} s too late): retry later",
                retry_after_s=late_s,
            )
        if verdict == b"noworker":
            raise NoWorker("no worker is running to answer this request", retry_after_s=5)
        return verdict, value

    async def _enqueue_replicated(
        self, durable: bool, idem: str, keys: list[str], args: list[Any]
    ) -> tuple[bytes, bytes]:
        """ENQUEUE; for a `durable` job with min_replica_acks n, then WAIT n on the script's
        own connection (WAIT counts that connection's writes), so a 202 means n replicas hold
        the job and a failover keeps it. A duplicate (its Idempotency-Key named a job already,
        perhaps one whose WAIT failed) is waited for too, after a no-op write of its key (SET
        XX KEEPTTL of the same value) takes the connection past the job's writes. Fewer acks
        in time: 503; the job stays, and a retry with the same Idempotency-Key finds it."""
        acks, timeout_ms = self.replica_acks
        if not durable or acks == 0:
            return await self._enqueue(keys=keys, args=args)  # type: ignore[no-any-return]
        async with self.redis.client() as one:
            verdict, value = await self._enqueue(keys=keys, args=args, client=one)
            if verdict == b"dup":
                await one.set(idem, value, xx=True, keepttl=True)
            if verdict in (b"ok", b"dup") and await one.wait(acks, timeout_ms) < acks:
                raise RedisUnavailable(
                    f"the job was queued but fewer than {acks} Redis replicas confirmed it within "
                    f"{timeout_ms} ms; retry with the same Idempotency-Key",
                    retry_after_s=1,
                )
        return verdict, value

    async def _live_workers(self) -> str:
        """The ids of the workers whose heartbeat is live, comma-joined, read at most every
        LIVE_WORKERS_S (none live: read again at once, a worker may just have started)."""
        read_at, live = self._live
        now = time.monotonic()
        if now - read_at > LIVE_WORKERS_S or not live:
            found = await self.redis.zrangebyscore(
                keys.WORKERS, time.time() - self.heartbeat_ttl_s, "+inf"
            )
            live = ",".join(as_text(worker) for worker in found)
            self._live = (now, live)
        return live

    async def wait(self, submitted: Submitted, deadline_ms: int) -> Outcome:
        """The job's outcome, from the reply channel or (fallback) the result key."""
        job_id = submitted.job_id
        future = self.listener.expect(job_id)
        try:
            if not submitted.waiting:  # an earlier request's job: it may be done already
                outcome = await self._read_result(job_id)
                if outcome is not None:
                    return outcome
            while True:
                remaining_s = (deadline_ms - now_ms()) / 1000
                if remaining_s <= 0:
                    break
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(future), min(remaining_s, FALLBACK_POLL_S)
                    )
                except TimeoutError:
                    outcome = await self._read_result(job_id)
                    if outcome is not None:
                        return outcome
        finally:
            self.listener.forget(job_id)
        outcome = await self._read_result(job_id, last=True)
        if outcome is not None:
            return outcome
        raise DeadlineExceeded("no result before the request's deadline", job_id=job_id)

    async def _read_result(self, job_id: str, last: bool = False) -> Outcome | None:
        """The job's stored outcome, or None. While Redis is away, None (the wait goes on to
        the deadline); at the `last` look, after the deadline, a Redis that cannot be reached
        is the answer (503), not a deadline the job might have met (504): bench.chaos redis
        found a request sent just before Redis went away answered 504."""
        try:
            blob: bytes | None = await self.redis.get(keys.result(job_id))  # type: ignore[assignment]
        except REDIS_ERRORS as exc:
            if last:
                raise RedisUnavailable("the job queue cannot be reached; retry shortly") from exc
            return None
        return unpack(blob) if blob is not None else None

    async def status(
        self, job_id: str, missing: type[HanmoError] = JobNotFound
    ) -> tuple[dict[str, str], Outcome | None]:
        """A job's state fields and, when finished, its outcome; `missing` when unknown."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.job(job_id))
                pipe.get(keys.result(job_id))
                fields, blob = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise RedisUnavailable("the job store cannot be reached; retry shortly") from exc
        if not fields:
            raise missing(f"no job {job_id!r} (unknown or expired)")
        state = {k.decode(): v.decode() for k, v in fields.items()}
        return state, (unpack(blob) if blob is not None else None)

    async def cancel(self, job_id: str, stream: str, abandon: bool = False) -> None:
        """Cancel a job that no worker has started. With `abandon` (its synchronous client has
        gone), a job already running is marked abandoned: its worker stops a batch between
        chunks once every job in it is (app/worker/runner.py)."""
        problem = {
            "type": "https://hanmo.dev/problems/cancelled",
            "title": "Job cancelled",
            "status": 409,
            "detail": "the job was cancelled before it ran",
        }
        try:
            verdict = await self._cancel(
                keys=[keys.job(job_id), keys.result(job_id), stream, keys.backlog(stream)],
                args=[
                    keys.GROUP,
                    pack_failed(problem),
                    self.result_ttl_s,
                    job_id,
                    "1" if abandon else "0",
                ],
            )
        except REDIS_ERRORS as exc:
            raise RedisUnavailable("the job store cannot be reached; retry shortly") from exc
        if verdict == b"gone":
            raise JobNotFound(f"no job {job_id!r} (unknown or expired)")
        if verdict != 1:
            raise JobNotCancellable(f"the job is {verdict.decode()}; only queued jobs cancel")

    async def depth(self, stream: str) -> int:
        return int(await self.redis.xlen(stream))

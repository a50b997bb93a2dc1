"""A worker's look at its queue: the jobs nobody has read yet that cannot finish by their
deadline are answered 429 (with Retry-After) at once, instead of a 504 at the deadline.

Admission (ENQUEUE) and the worker's read-time shedding price a job when it arrives and when it
is read; in between, a machine that slows (the flood of bench.overload: the api's processes
take CPU from the worker) leaves admitted jobs queued until their clients' deadline. Every
LOOK_EVERY_S a worker reads the metadata of its streams' unread entries (scripts.UNREAD: no
inputs leave Redis), prices each at its work class's measured pace, and walks the queue in
order: a job that would end after its deadline (less one look's interval) is answered as
overloaded and leaves the queue, so it takes no time from the jobs behind it. Work in flight
ahead of the unread entries counts at half its cost (a batch is half done on average), and the
pace is shared among the live workers by their published rates (keys.rate). A job with nothing
priced ahead of it is left to the read-time shedding, which gives a batch's first job a
second chance at twice the pace."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.queue import keys, scripts
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer, failed_blob, too_late
from app.queue.entries import Job
from app.redis_conn import as_text

log = logging.getLogger("hanmo.worker")
LOOK_EVERY_S = 0.5  # the default of Settings.queue_look_s
UNREAD_COUNT = 256  # entries a look prices, oldest first


class QueueLook:
    def __init__(self, consumer: StreamConsumer, heartbeat_ttl_s: float) -> None:
        self.consumer = consumer
        self.redis: Any = consumer.redis
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self._unread = self.redis.register_script(scripts.UNREAD)
        self._shed = self.redis.register_script(scripts.SHED_QUEUED)

    def live_workers(self) -> list[str]:
        """The ids of the workers whose heartbeat is recent (what ENQUEUE's admission sums)."""
        since = time.time() - self.heartbeat_ttl_s
        return [as_text(w) for w in self.redis.zrangebyscore(keys.WORKERS, since, "+inf")]

    def run(self, streams: Callable[[], list[str]], every_s: float, stop: threading.Event) -> None:
        """Look at the streams every `every_s` until `stop` (a worker's thread); errors are
        logged and the next look tries again."""
        while not stop.wait(every_s):
            try:
                live = self.live_workers()
                for stream in streams():
                    self.shed_late(stream, live, every_s)
            except Exception as exc:  # never end the thread: Redis down, a stream deleted
                log.warning("worker.look_failed error=%r", exc)

    def shed_late(self, stream: str, live: list[str], margin_s: float = LOOK_EVERY_S) -> int:
        """Answer 429 the stream's unread jobs that cannot finish by their deadline less
        `margin_s`; returns how many. Nothing is done before this worker has a measured pace."""
        own = self.consumer.rate(stream)
        if not own:
            return 0
        backlog, unread_cost, entries = self._unread(
            keys=[stream, keys.backlog(stream)], args=[keys.GROUP, UNREAD_COUNT]
        )
        if not entries:
            return 0
        published = self.redis.hmget(keys.rate(stream), live) if live else []
        group = max(own, sum(float(r) for r in published if r))
        in_flight = float(backlog) - float(unread_cost) if len(entries) < UNREAD_COUNT else 0.0
        ahead_s = max(0.0, in_flight) / 2 / group
        start_ms = now_ms()
        shed = 0
        for entry_id, job_id, deadline_ms, cost, work, alias, reply in entries:
            job = Job(
                entry_id=as_text(entry_id),
                job_id=as_text(job_id),
                inputs={},
                deadline_ms=int(deadline_ms),
                reply=as_text(reply),
                alias=as_text(alias),
                cost=float(cost),
            )
            work_class = tuple(as_text(work).split(",")) if work else None
            job_s = job.cost / self.consumer.rate(stream, work_class) * own / group
            done_ms = start_ms + 1000 * (ahead_s + job_s)
            if ahead_s > 0 and done_ms > job.deadline_ms - 1000 * margin_s:
                shed += self._answer_late(stream, job, done_ms)
            else:
                ahead_s += job_s
        if shed:
            log.info("worker.shed_queued stream=%s jobs=%d", stream, shed)
        return shed

    def _answer_late(self, stream: str, job: Job, done_ms: float) -> int:
        """429 for a job still queued (a worker that took it meanwhile keeps it): 1 if sent."""
        error = too_late(job, done_ms, "the work queued ahead")
        answered = self._shed(
            keys=[stream, keys.backlog(stream), keys.job(job.job_id), keys.result(job.job_id)],
            args=[
                keys.GROUP,
                self.consumer.result_ttl_s(stream),
                now_ms(),
                failed_blob(stream, job, error),
                job.entry_id,
                job.reply,
                job.job_id,
            ],
        )
        if answered:
            self.consumer.on_failure(stream, error)
        return int(answered)

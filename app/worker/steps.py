"""The step lane: autoregressive sampling batched per step across requests (iteration-level,
or "continuous", batching; issue 50, item 4).

A sampling job of the `autoregressive` kind is taken out of the batch path into this lane.
Each turn of the worker's loop runs ONE step for every model with rows in flight: one graph
call on all of that model's rows (rows of different jobs at different positions share it: the
graph sees whole partial samples), then each job draws its rows' next position. A job that
arrived since the last step joins before it; a job whose last position is drawn is answered
and leaves, so a long request does not hold short ones, and the graph always runs on as many
rows as are in flight, up to the model's batch rows (HANMO_MAX_BATCH_ROWS, or the card's
signature.max_batch_rows when smaller; a job larger than that runs alone).

Between two steps the worker reads its streams without blocking (streams whose lane is full
are not read, so other workers take their jobs) and serves what came: other models' batches
run between steps, as they do between a long batch's chunks. Every LIVENESS_S the lane checks
its jobs: a job past its deadline fails (504), one whose client left (abandoned) fails 499,
one no longer running (cancelled, answered elsewhere) is dropped; and it re-claims their
entries, so no other worker takes a job in flight. A worker that dies mid-loop leaves its
entries pending: another claims them after the visibility timeout and runs them from the
start (seeded draws make the answer the same bytes).

`HANMO_AR_BATCHING=request` (the benchmark's baseline, bench/autoregressive.py) keeps the
same lane but batches whole requests: jobs join only when no row is in flight, so a batch
runs until its last job is done before the next starts (each job is still answered when its
own rows are done).

A job whose meta asks for partial rows (`partials`, Accept: text/event-stream) gets each
completed image row (every `width` steps) appended to its partial stream (app/queue/
partials.py): entry `start` = the row's index, tensors `rows` [n, k, width] int64 levels."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from app.errors import ClientGone, DeadlineExceeded, JobFailed
from app.kinds.autoregressive.graph import AutoregressiveKind, draw, step_logits
from app.queue import codec, keys, partials
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer
from app.queue.entries import Job
from app.queue.errors import REDIS_ERRORS
from app.queue.results import pack_done
from app.queue.status import JobStatus
from app.runtime.models import LoadedModel
from app.settings import Settings
from app.worker.runner import run_info
from app.worker.traces import record_wait

log = logging.getLogger("hanmo.worker")
LIVENESS_S = 0.05  # how often the lane reads its jobs' status (cancelled, abandoned)
RATE_EVERY_S = 1.0  # how often it publishes its measured rate for admission


@dataclass(slots=True)
class Flight:
    """One job in the lane: its rows' partial samples and where they are."""

    stream: str
    model: LoadedModel
    job: Job
    x: np.ndarray  # [n, P] int64, drawn in place
    position: int  # the next position to draw (every row of a job is at the same one)
    width: int  # positions per image row
    streamed: bool = False  # its client wants rows as they are completed
    compute_s: float = 0.0

    @property
    def rows(self) -> int:
        return len(self.x)

    @property
    def done(self) -> bool:
        return self.position >= int(self.x.shape[1])


class StepLane:
    def __init__(
        self, settings: Settings, consumer: StreamConsumer, on_error: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.on_error = on_error
        self.flying: dict[str, list[Flight]] = {}  # stream -> its jobs in flight
        self.waiting: dict[str, deque[Flight]] = {}  # stream -> jobs taken, to join
        self.whole_requests = settings.ar_batching == "request"
        self._next_liveness = 0.0
        self._next_claim = 0.0
        self._next_rate = 0.0
        self.widest = 0  # the most rows one step ran (tests and the benchmark read it)
        # each step: its model, rows and compute seconds (the worker's metrics)
        self.observe_step: Callable[[LoadedModel, list[Job], float], None] = lambda *_: None

    @property
    def busy(self) -> bool:
        return any(self.flying.values()) or any(bool(w) for w in self.waiting.values())

    def full(self) -> set[str]:
        """Streams not to read now: their lane holds as many rows as a step runs (or, batching
        whole requests, a batch is in flight) and jobs wait to join already."""
        return {
            stream
            for stream, flights in self.flying.items()
            if flights and (self.whole_requests or self._free(stream, flights[0].model) <= 0)
        }

    def _free(self, stream: str, model: LoadedModel) -> int:
        limit = model.batch_rows(self.settings.max_batch_rows)
        held = sum(f.rows for f in self.flying.get(stream, []))
        return limit - held - sum(f.rows for f in self.waiting.get(stream, ()))

    def take(self, stream: str, model: LoadedModel, job: Job) -> bool:
        """Take an autoregressive sampling job into the lane (True), or leave it (a log-prob
        job is one graph pass: the batch path runs it)."""
        if not isinstance(model.kind, AutoregressiveKind) or "u" not in job.inputs:
            return False
        held = [*self.flying.get(stream, []), *self.waiting.get(stream, ())]
        if any(f.job.job_id == job.job_id for f in held):  # redelivered to this worker
            return True
        x = job.inputs["x"].astype(np.int64, copy=True)
        start = int(job.inputs["start"][0]) if len(x) else x.shape[1]
        width = int(model.signature["shape"][-1])
        flight = Flight(stream, model, job, x, start, width)
        flight.streamed = partials.wanted(self.consumer.redis, [job])[0]
        self.waiting.setdefault(stream, deque()).append(flight)
        record_wait(job)
        return True

    def run_step(self) -> None:
        """One step of every model with rows in flight (jobs waiting join first)."""
        now = time.monotonic()
        if now >= self._next_liveness:
            self._next_liveness = now + LIVENESS_S
            self._check_liveness()
        for stream in list(self.flying.keys() | self.waiting.keys()):
            self._join(stream)
            flights = self.flying.get(stream, [])
            if flights:
                self._step(stream, flights)
            if not self.flying.get(stream) and not self.waiting.get(stream):
                self.flying.pop(stream, None)
                self.waiting.pop(stream, None)

    def _join(self, stream: str) -> None:
        """Waiting jobs join, in order, while their rows fit (a lone job always does)."""
        waiting = self.waiting.get(stream)
        flights = self.flying.setdefault(stream, [])
        if not waiting or (self.whole_requests and flights):
            return
        limit = waiting[0].model.batch_rows(self.settings.max_batch_rows)
        held = sum(f.rows for f in flights)
        while waiting and (not flights or held + waiting[0].rows <= limit):
            flight = waiting.popleft()
            flights.append(flight)
            held += flight.rows
            self._publish_rows(flight, 0, flight.position // flight.width)  # the prefix's
            if flight.done:  # a complete prefix: nothing to draw
                self._end(flight, partial(self._reply, flight))

    def _step(self, stream: str, flights: list[Flight]) -> None:
        model = flights[0].model
        start = time.perf_counter()
        try:
            x = np.concatenate([f.x for f in flights]) if len(flights) > 1 else flights[0].x
            labels = [f.job.inputs["label"] for f in flights if "label" in f.job.inputs]
            label = np.concatenate(labels) if labels else None
            logits = step_logits(model.graphs, x, label)
        except Exception as exc:  # a graph that raises fails its jobs, never the worker
            log.error("worker.step_failed version=%s error=%r", model.served.key, exc)
            self.on_error(f"{model.served.key}: {type(exc).__name__}: {exc}")
            failure = JobFailed(f"the model raised {type(exc).__name__} while running a step")
            for flight in list(flights):
                self._end(flight, partial(self.consumer.fail, flight.stream, flight.job, failure))
            return
        first = 0
        for flight in list(flights):
            rows, at = slice(first, first + flight.rows), flight.position
            first += flight.rows
            inputs = flight.job.inputs
            flight.x[:, at] = draw(logits[rows, at], inputs["u"][:, at], inputs["temperature"])
            flight.position += 1
            if flight.position % flight.width == 0:
                row = flight.position // flight.width - 1
                self._publish_rows(flight, row, row + 1)
        took_s = time.perf_counter() - start
        self.widest = max(self.widest, len(x))
        for flight in flights:
            flight.compute_s += took_s
        self.observe_step(model, [f.job for f in flights], took_s)
        work = flights[0].job.work  # sampling, apart from the stream's scoring
        self.consumer.learn_time(stream, len(flights), took_s, float(len(x)), work)
        for flight in [f for f in flights if f.done]:
            self._end(flight, partial(self._reply, flight))
        if time.monotonic() >= self._next_rate:
            self._next_rate = time.monotonic() + RATE_EVERY_S
            self._publish_rate(stream)

    def _publish_rows(self, flight: Flight, first: int, stop: int) -> None:
        """Image rows first..stop-1 of the job's samples, to its partial stream (best effort:
        the result brings every row). The last row comes with the result."""
        if not flight.streamed or first >= stop or flight.done:
            return
        job = flight.job
        rows = flight.x[:, first * flight.width : stop * flight.width]
        tensors = {"rows": rows.reshape(len(rows), -1, flight.width)}
        entry = {"start": first, "tensors": codec.encode(tensors)}
        key = keys.partial(job.job_id)
        try:
            pipe = self.consumer.redis.pipeline(transaction=False)
            pipe.xadd(key, entry, maxlen=partials.MAX_ENTRIES * 4, approximate=False)
            pipe.expire(key, max(0, job.deadline_ms - now_ms()) // 1000 + partials.GRACE_S)
            pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("worker.rows_failed job=%s error=%r", job.job_id, exc)

    def _check_liveness(self) -> None:
        """Fail jobs past their deadline or abandoned by their client, drop those no longer
        running (cancelled, answered elsewhere), and re-claim the entries of the rest."""
        held = [f for flights in self.flying.values() for f in flights]
        held += [f for waiting in self.waiting.values() for f in waiting]
        if not held:
            return
        claim = time.monotonic() >= self._next_claim
        if claim:
            self._next_claim = time.monotonic() + self.settings.visibility_timeout_ms / 4000
        try:
            pipe = self.consumer.redis.pipeline(transaction=False)
            for flight in held:
                pipe.hmget(keys.job(flight.job.job_id), ["status", "abandoned"])
                if claim:
                    entry = [flight.job.entry_id]
                    pipe.xclaim(flight.stream, keys.GROUP, self.consumer.id, 0, entry, justid=True)
            replies = pipe.execute()[:: 2 if claim else 1]
        except REDIS_ERRORS as exc:  # keep stepping: the next check looks again
            log.warning("worker.liveness_failed error=%r", exc)
            return
        late = now_ms()
        for flight, (status, abandoned) in zip(held, replies, strict=True):
            job = flight.job
            if status != str(JobStatus.RUNNING).encode():
                self._end(flight, partial(self.consumer.drop, flight.stream, job.entry_id))
            elif abandoned:
                gone = ClientGone("the client closed its connection before the answer")
                self._end(flight, partial(self.consumer.fail, flight.stream, job, gone))
            elif job.deadline_ms < late:
                error = DeadlineExceeded("the job's deadline passed while it ran")
                self._end(flight, partial(self.consumer.fail, flight.stream, job, error))

    def _end(self, flight: Flight, answer: Callable[[], None]) -> None:
        """Answer (or drop) a job and take its rows out of the lane."""
        try:
            answer()
        finally:
            flying = self.flying.get(flight.stream, [])
            waiting = self.waiting.get(flight.stream, deque())
            if flight in flying:
                flying.remove(flight)
            if flight in waiting:
                waiting.remove(flight)

    def _reply(self, flight: Flight) -> None:
        model, job = flight.model, flight.job
        shape = tuple(int(d) for d in model.signature["shape"])
        info = run_info(model, self.consumer.id, flight.compute_s * 1000, job.rows)
        info |= {"alias": job.alias, "queue_ms": job.started_ms - job.enqueued_ms}
        blob = pack_done({"levels": flight.x.reshape(flight.rows, *shape)}, info)
        self.consumer.finish(flight.stream, [job], [JobStatus.DONE], [blob])
        log.debug("worker.ar_done job=%s rows=%d", job.job_id, flight.rows)

    def _publish_rate(self, stream: str) -> None:
        """The measured rate (row-steps per busy second) for the api's admission by cost."""
        rate = self.consumer.rate(stream)
        if not rate:
            return
        try:
            self.consumer.redis.hset(keys.rate(stream), self.consumer.id, f"{rate:.6g}")
        except REDIS_ERRORS as exc:
            log.warning("worker.rate_failed stream=%s error=%r", stream, exc)

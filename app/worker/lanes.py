"""The long-job lane: a job whose kind runs it in steps (a 3,755-glyph font) is taken out of
the batch path and run one step at a time, with the worker's normal read-and-answer turns
between steps, so a slot holding a font keeps answering sampling requests.

Time is shared by `long_job_share`: after a step of t seconds the worker serves other jobs
for up to t * (1 - share) / share seconds, or until none are waiting, before the next step.
Each finished step's result is kept in Redis (keys.steps, with the job's deadline as TTL),
so a job another worker reclaims (or this one after a restart) resumes from its last
finished step; the job's entry stays claimed by this worker (XCLAIM at every step)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from app.errors import DeadlineExceeded, JobFailed
from app.kinds.base import Graph, Tensors
from app.queue import keys
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer
from app.queue.entries import Job
from app.queue.errors import REDIS_ERRORS
from app.queue.results import pack_done
from app.queue.status import JobStatus
from app.runtime.models import LoadedModel
from app.settings import Settings
from app.worker.runner import run_info
from app.worker.traces import record_wait, step_context

log = logging.getLogger("hanmo.worker")
COMPUTED = "computed"  # keys.steps field: steps this job has run, on any worker
# keys.steps field: the glyphs a step of this job holds, set by the worker that began it; a
# worker that resumes the job steps by it whatever its own long_job_chunk says (one with
# another chunk took stored steps of 4 glyphs for steps of 1, and the font failed at its build)
CHUNK = "chunk"
BUILD_SHARE = 0.95  # the progress a job reports when every step is done (the build is left)
# Between steps, streams count as empty only after this long with nothing to read: a client
# answered a moment ago needs a few ms to ask again, and a read right after the answer found
# nothing, so the next step started at once and sampling waited a whole step each time
# (bench.chaos font: p50 1.9 s). Polled (1 ms), not XREADGROUP BLOCK, whose timeout Redis
# rounds up to its 10 Hz cron (see worker/runner.py _gather_more).
IDLE_GRACE_S = 0.05
IDLE_POLL_S = 0.001


@runtime_checkable
class SteppedKind(Protocol):
    """A kind that runs some jobs in steps (StyleTransferKind's fonts)."""

    def step_count(self, inputs: Tensors, chunk: int) -> int: ...

    def run_step(
        self,
        signature: dict[str, Any],
        graphs: dict[str, Graph],
        inputs: Tensors,
        index: int,
        chunk: int,
    ) -> bytes: ...

    def finish_steps(
        self, signature: dict[str, Any], inputs: Tensors, states: list[bytes]
    ) -> Tensors: ...


@dataclass(slots=True)
class LongJob:
    stream: str
    model: LoadedModel
    kind: SteppedKind
    job: Job
    steps: int
    chunk: int  # glyphs a step (CHUNK)
    done: dict[int, bytes] = field(default_factory=dict)  # step index -> its result
    compute_s: float = 0.0


class LongLane:
    def __init__(
        self, settings: Settings, consumer: StreamConsumer, on_error: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.on_error = on_error
        self.jobs: deque[LongJob] = deque()
        self._interactive_until = 0.0
        self._interactive_idle = False
        self._empty_since: float | None = None

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def take(self, stream: str, model: LoadedModel, job: Job) -> bool:
        """Take a job that runs in steps into the lane (True), or leave it to the batch path."""
        kind = model.kind
        if not isinstance(kind, SteppedKind):
            return False
        if kind.step_count(job.inputs, self.settings.long_job_chunk) == 0:
            return False
        if all(held.job.job_id != job.job_id for held in self.jobs):  # not one redelivered
            stored = self.consumer.redis.hgetall(keys.steps(job.job_id))
            chunk = int(stored.get(CHUNK.encode()) or self.settings.long_job_chunk)
            steps = kind.step_count(job.inputs, chunk)
            done = _done_steps(stored, steps)
            self.jobs.append(LongJob(stream, model, kind, job, steps, chunk, done))
            record_wait(job)
            log.info(
                "worker.long_job job=%s steps=%d chunk=%d resumed=%d",
                job.job_id,
                steps,
                chunk,
                len(done),
            )
        return True

    def due(self) -> bool:
        """Whether the next step runs now: the interactive share is spent or nothing waits."""
        return self.busy and (self._interactive_idle or time.monotonic() >= self._interactive_until)

    def read_between_steps(self, found: bool) -> None:
        """What a (non-blocking) read between steps found: once nothing has come in for
        IDLE_GRACE_S, the next step need not wait for the end of the interactive share."""
        now = time.monotonic()
        if found:
            self._empty_since = None
            return
        if self._empty_since is None:
            self._empty_since = now
        if now - self._empty_since >= IDLE_GRACE_S:
            self._interactive_idle = True
        else:
            time.sleep(IDLE_POLL_S)

    def run_step(self) -> None:
        """Run the first held job's next step (or its build, when every step is done), its
        request's id on the log lines and, when tracing, a `step` span in its trace."""
        held = self.jobs[0]
        with step_context(held.job, len(held.done)):
            self._step(held)

    def _step(self, held: LongJob) -> None:
        start = time.monotonic()
        try:
            self._advance(held)
        except REDIS_ERRORS:  # the job stays held: the loop retries once Redis is back
            raise
        except Exception as exc:  # a step that raises fails its job, never the worker
            log.error("worker.long_job_failed job=%s error=%r", held.job.job_id, exc)
            self.on_error(f"{held.model.served.key}: {type(exc).__name__}: {exc}")
            error = JobFailed(f"the model raised {type(exc).__name__} while running the job")
            self._end(held, lambda: self.consumer.fail(held.stream, held.job, error))
            return
        took_s = time.monotonic() - start
        held.compute_s += took_s
        share = self.settings.long_job_share
        self._interactive_until = time.monotonic() + took_s * (1 - share) / share
        self._interactive_idle = False
        self._empty_since = None

    def _advance(self, held: LongJob) -> bool:
        """One step of `held`; True when the job has ended (answered, failed or dropped)."""
        job = held.job
        if job.deadline_ms < now_ms():
            error = DeadlineExceeded("the job's deadline passed while it ran")
            return self._end(held, lambda: self.consumer.fail(held.stream, job, error))
        index = next((i for i in range(held.steps) if i not in held.done), None)
        if index is None:
            return self._end(held, lambda: self._reply(held))
        model = held.model
        state = held.kind.run_step(model.signature, model.graphs, job.inputs, index, held.chunk)
        held.done[index] = state
        if not self._keep(held, index, state):  # cancelled, or answered by another worker
            return self._end(held, lambda: self.consumer.drop(held.stream, job.entry_id))
        return False

    def _keep(self, held: LongJob, index: int, state: bytes) -> bool:
        """Store the step, report progress and re-claim every held entry, in one round trip;
        False when the job is no longer running (cancelled or answered elsewhere)."""
        job = held.job
        ttl_s = max(1, -(-(job.deadline_ms - now_ms()) // 1000))
        fraction = round(BUILD_SHARE * len(held.done) / held.steps, 4)
        pipe = self.consumer.redis.pipeline(transaction=False)
        pipe.hset(keys.steps(job.job_id), mapping={str(index): state, CHUNK: held.chunk})
        pipe.hincrby(keys.steps(job.job_id), COMPUTED, 1)
        pipe.expire(keys.steps(job.job_id), ttl_s)
        pipe.hset(keys.job(job.job_id), "progress", fraction)
        pipe.hget(keys.job(job.job_id), "status")
        for other in self.jobs:
            claim = [other.job.entry_id]
            pipe.xclaim(other.stream, keys.GROUP, self.consumer.id, 0, claim, justid=True)
        status = pipe.execute()[4]
        return bool(status == str(JobStatus.RUNNING).encode())

    def _end(self, held: LongJob, answer: Callable[[], None]) -> bool:
        """Answer (or drop) a held job and forget its steps."""
        try:
            answer()
        finally:
            if held in self.jobs:
                self.jobs.remove(held)
            try:
                self.consumer.redis.delete(keys.steps(held.job.job_id))
            except REDIS_ERRORS as exc:  # it expires with the job's deadline anyway
                log.warning("worker.steps_not_deleted job=%s error=%r", held.job.job_id, exc)
        return True

    def _reply(self, held: LongJob) -> None:
        model, job = held.model, held.job
        states = [held.done[i] for i in range(held.steps)]
        start = time.monotonic()
        outputs = held.kind.finish_steps(model.signature, job.inputs, states)
        compute_ms = (held.compute_s + time.monotonic() - start) * 1000
        info = run_info(model, self.consumer.id, compute_ms, job.rows)
        info |= {"alias": job.alias, "queue_ms": job.started_ms - job.enqueued_ms}
        computed = self.consumer.redis.hget(keys.steps(job.job_id), COMPUTED)
        self.consumer.finish(held.stream, [job], [JobStatus.DONE], [pack_done(outputs, info)])
        log.info(  # computed > steps: a step was run again (its result was lost with a worker)
            "worker.long_job_done job=%s steps=%d computed=%d",
            job.job_id,
            held.steps,
            int(computed or 0),
        )


def _done_steps(stored: dict[bytes, bytes], steps: int) -> dict[int, bytes]:
    """The steps a worker finished before (the job was reclaimed or restarted), from its
    keys.steps hash."""
    done = {}
    for name, value in stored.items():
        index = name.decode()
        if index.isdigit() and int(index) < steps:
            done[int(index)] = value
    return done

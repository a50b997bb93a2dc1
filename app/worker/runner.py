"""Running one stream's jobs: admit them, gather more rows for a short batch, group them by
inputs, run the batches on the loaded model and answer each job."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app import tracing
from app.errors import ClientGone, JobFailed, NonFiniteOutput
from app.kinds import progress
from app.queue import keys, partials
from app.queue.clock import now_ms
from app.queue.consumer import StreamConsumer, failed_blob
from app.queue.entries import Entries, Job
from app.queue.errors import REDIS_ERRORS
from app.queue.results import pack_done
from app.queue.status import JobStatus
from app.runtime.models import LoadedModel, concat_rows, split_rows
from app.settings import Settings
from app.worker.batcher import chunks, group_by_inputs, plan_batches
from app.worker.traces import batch_context

log = logging.getLogger("hanmo.worker")
GATHER_POLL_S = 0.001
PROGRESS_EVERY_S = 0.5


class BatchRunner:
    def __init__(
        self, settings: Settings, consumer: StreamConsumer, on_error: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.on_error = on_error  # the heartbeat's last_error
        # a job that runs in steps goes to the worker's long-job lane (worker/lanes.py)
        self.take_long: Callable[[str, LoadedModel, Job], bool] = lambda *_: False
        # each batch run: its model, jobs and compute seconds (the worker's metrics)
        self.observe_batch: Callable[[LoadedModel, list[Job], float], None] = lambda *_: None
        # between the chunks of a long batch: serve other streams' waiting jobs (the worker's
        # loop sets it), returning the seconds that took
        self.between_chunks: Callable[[str], float] = lambda _: 0.0

    def handle(self, stream: str, model: LoadedModel, entries: Entries) -> None:
        """Start, run and answer the jobs of one stream's entries."""
        jobs = self.consumer.admit(stream, entries)
        jobs = self._gather_more(stream, jobs)
        jobs = [job for job in jobs if not self.take_long(stream, model, job)]
        for group in group_by_inputs(jobs):  # e.g. sampling (z) apart from scoring (x)
            for batch in plan_batches([j.rows for j in group], self.settings.max_batch_rows):
                batched = [group[i] for i in batch]
                with batch_context(model.served, batched, self.consumer.id):  # request ids, spans
                    self._run_batch(stream, model, batched)

    def _gather_more(self, stream: str, jobs: list[Job]) -> list[Job]:
        """With max_wait_ms set, wait that long for more rows before running a short batch.

        It polls (a non-blocking read, then a 1 ms sleep) rather than XREADGROUP BLOCK: Redis
        times blocked reads out from its server cron (10 Hz by default), so a BLOCK of 5 ms
        returned after 50-100 ms, and a lone request took ~100 ms (found by bench/peer.py)."""
        wait_ms = self.settings.max_wait_ms
        if wait_ms <= 0 or not jobs:
            return jobs
        deadline = time.monotonic() + wait_ms / 1000
        rows = sum(j.rows for j in jobs)
        while rows < self.settings.max_batch_rows:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                break
            read = self.consumer.read([stream], self.settings.max_batch_rows - rows)
            entries = read[0][1] if read else []
            if not entries:
                time.sleep(min(left_s, GATHER_POLL_S))
                continue
            more = self.consumer.admit(stream, entries)
            jobs.extend(more)
            rows += sum(j.rows for j in more)
        return jobs

    def _run_batch(self, stream: str, model: LoadedModel, jobs: list[Job]) -> None:
        rows = [j.rows for j in jobs]
        start = time.perf_counter()
        elsewhere_s = 0.0  # time spent on other streams' jobs between this batch's chunks
        try:
            inputs = concat_rows([j.inputs for j in jobs])
            total = sum(rows)
            parts = []
            plan = chunks(total, model.batch_rows(self.settings.max_batch_rows))
            # jobs that stream their rows get each chunk but the last (the result follows it)
            streamed = partials.wanted(self.consumer.redis, jobs) if len(plan) > 1 else []
            live = jobs  # those still to be answered with the batch's outputs
            with progress.reporting(self._progress(stream, jobs[0]) if len(jobs) == 1 else None):
                for index, part in enumerate(plan):
                    if index and self._abandoned(stream, live):
                        return
                    if index:
                        elsewhere_s += self.between_chunks(stream)
                        live = self._shed_running(stream, live, part.start / total, start)
                    if not live:  # every job would be late: the pace so far is what it learnt
                        busy_s = time.perf_counter() - start - elsewhere_s
                        ran = sum(job.cost for job in jobs) * part.start / total
                        self.consumer.learn_time(stream, len(jobs), busy_s, ran, jobs[0].work)
                        return
                    parts.append(model.run({k: v[part] for k, v in inputs.items()}))
                    if any(streamed) and index < len(plan) - 1:
                        partials.publish(self.consumer.redis, jobs, streamed, part, parts[-1])
            outputs = concat_rows(parts)
        except Exception as exc:  # a graph that raises fails its jobs, never the worker
            log.error("worker.batch_failed version=%s error=%r", model.served.key, exc)
            self.on_error(f"{model.served.key}: {type(exc).__name__}: {exc}")
            failure = JobFailed(f"the model raised {type(exc).__name__} while running the batch")
            for job in jobs:
                self.consumer.fail(stream, job, failure)
            return
        compute_ms = (time.perf_counter() - start - elsewhere_s) * 1000
        info = run_info(model, self.consumer.id, compute_ms, sum(rows))
        self.observe_batch(model, jobs, compute_ms / 1000)
        on_time = {job.job_id for job in live}
        answered = [
            (job, out)
            for job, out in zip(jobs, split_rows(outputs, rows), strict=True)
            if job.job_id in on_time
        ]
        with tracing.span("reply"):
            self._reply(stream, [j for j, _ in answered], [out for _, out in answered], info)
        busy_s = time.perf_counter() - start - elsewhere_s
        cost = sum(job.cost for job in jobs)
        self.consumer.learn_time(stream, len(jobs), busy_s, cost, jobs[0].work)
        if cost > 0:
            self._publish_rate(stream)
        log.debug(
            "worker.batch_done version=%s rows=%d compute_ms=%.2f",
            model.served.key,
            sum(rows),
            compute_ms,
        )

    def _shed_running(self, stream: str, live: list[Job], done: float, start: float) -> list[Job]:
        """Between two chunks, with the fraction `done` of the batch's rows run since
        `start`: answer 429 at once, with Retry-After, the jobs that the rest of the batch
        cannot finish by their deadline at the pace this batch has kept so far (its wall
        time, with the turns other streams took between its chunks), and stop running for
        them. Admission and the read-time shedding priced them at the pace measured before;
        when the machine slowed since, their clients waited to the deadline for a 504 while
        the work went on for nobody (bench.overload flood). Returns the jobs still on time."""
        elapsed_ms = (time.perf_counter() - start) * 1000
        done_ms = now_ms() + elapsed_ms * (1 - done) / done
        on_time = [job for job in live if job.deadline_ms >= done_ms]
        for job in live:
            if job.deadline_ms < done_ms:
                self.consumer.shed(stream, job, done_ms)
        return on_time

    def _abandoned(self, stream: str, jobs: list[Job]) -> bool:
        """Whether every job of the batch was abandoned by its synchronous client (marked by
        the api's cancel, app/queue/scripts.py CANCEL); if so they are answered 499 and the
        rest of the batch is not run: a flood's clients that gave up leave no work behind."""
        try:
            pipe = self.consumer.redis.pipeline(transaction=False)
            for job in jobs:
                pipe.hget(keys.job(job.job_id), "abandoned")
            if not all(pipe.execute()):
                return False
        except REDIS_ERRORS:  # keep running: the answer is stored when Redis is back
            return False
        log.info("worker.abandoned stream=%s jobs=%d", stream, len(jobs))
        gone = ClientGone("every client of this batch closed its connection before the answer")
        for job in jobs:
            self.consumer.fail(stream, job, gone)
        return True

    def _publish_rate(self, stream: str) -> None:
        """Publish this worker's rate on the stream (cost per busy second, smoothed by the
        consumer's learn_time, the same pace its shedding uses) for ENQUEUE's admission by
        cost. Batches priced 0 (long-lane work: fonts) are not measured."""
        rate = self.consumer.rate(stream)
        if not rate:  # nothing measured yet
            return
        try:
            self.consumer.redis.hset(keys.rate(stream), self.consumer.id, f"{rate:.6g}")
        except REDIS_ERRORS as exc:  # admission keeps the last rate it saw
            log.warning("worker.rate_failed stream=%s error=%r", stream, exc)

    def _progress(self, stream: str, job: Job) -> Callable[[float], None]:
        """A long job's reporter: writes its progress to the job record and re-claims its
        entry, so that other workers do not take a job that is running for a long time."""
        last = [0.0]
        redis = self.consumer.redis

        def report(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY_S and fraction < 1.0:
                return
            last[0] = now
            try:
                pipe = redis.pipeline(transaction=False)
                pipe.hset(keys.job(job.job_id), "progress", round(fraction, 4))
                pipe.xclaim(stream, keys.GROUP, self.consumer.id, 0, [job.entry_id], justid=True)
                pipe.execute()
            except REDIS_ERRORS as exc:  # progress is best effort
                log.warning("worker.progress_failed job=%s error=%r", job.job_id, exc)

        return report

    def _reply(
        self, stream: str, jobs: list[Job], outputs: list[dict[str, Any]], info: dict[str, Any]
    ) -> None:
        statuses, blobs = [], []
        for job, tensors in zip(jobs, outputs, strict=True):
            bad = nonfinite(tensors)
            if bad:  # a problem response, never NaN in an answer (JSON null, black pixels)
                log.warning("worker.nonfinite version=%s job=%s %s", info["model"], job.job_id, bad)
                error = NonFiniteOutput(f"the model gave {bad} for this request's inputs")
                self.consumer.on_failure(stream, error)
                statuses.append(JobStatus.FAILED)
                blobs.append(failed_blob(stream, job, error))
                continue
            extra = {"alias": job.alias, "queue_ms": job.started_ms - job.enqueued_ms}
            statuses.append(JobStatus.DONE)
            blobs.append(pack_done(tensors, {**info, **extra}))
        self.consumer.finish(stream, jobs, statuses, blobs)


def nonfinite(tensors: dict[str, Any]) -> str:
    """'' when every float output is finite, else which outputs hold NaN or Inf and how many."""
    found = [
        f"{int(np.count_nonzero(~np.isfinite(value)))} NaN/Inf values in `{name}`"
        for name, value in tensors.items()
        if value.dtype.kind in "fc" and not np.isfinite(value).all()
    ]
    return ", ".join(found)


def run_info(model: LoadedModel, worker_id: str, compute_ms: float, rows: int) -> dict[str, Any]:
    """What a result says about the run that made it (and the model's counters, counted)."""
    model.stats["batches"] += 1
    model.stats["rows"] += rows
    return {
        "model": model.served.model,
        "version": model.served.version,
        "provider": model.provider,
        "runtime": model.runtime,
        "worker": worker_id,
        "compute_ms": round(compute_ms, 3),
        "batch_rows": rows,
    }

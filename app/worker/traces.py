"""What the worker tells of a batch it runs (and of a long job's steps): the requests' ids on
its log lines (app/logs.py) and, when tracing (app/tracing.py), its spans.

A batch serves many requests, so its span (`batch`, with `graph run` and `reply` under it) is
recorded once and LINKED to each of its jobs' enqueue spans, rather than copied as a child
into every job's trace: a 256-job batch is one span and one graph run in the trace store, not
256 of each, and its timing is not counted 256 times. Each job still gets a span of its own in
its request's trace, `queue wait` (from the enqueue to the worker's START, the times the queue
kept), linked back to the batch. A batch of one job (the usual case under light load) is
also that job's child, so that request's trace is one tree from the api into the worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from app import tracing
from app.logs import REQUEST_ID
from app.queue.entries import Job
from app.registry.service import ServedVersion

MAX_LOGGED_IDS = 16  # request ids on a batch's log lines; past it, how many more


@contextmanager
def batch_context(served: ServedVersion, jobs: list[Job], worker_id: str) -> Iterator[None]:
    """While a batch runs: its requests' ids in force for log lines, and its spans."""
    token = REQUEST_ID.set(request_ids(jobs))
    try:
        with _spans(served, jobs, worker_id):
            yield
    finally:
        REQUEST_ID.reset(token)


@contextmanager
def step_context(job: Job, done: int) -> Iterator[None]:
    """While a long job's step runs (app/worker/lanes.py): its request's id in force for log
    lines, and a `step` span in its trace."""
    token = REQUEST_ID.set(job.request_id)
    try:
        attributes = {"hanmo.job_id": job.job_id, "hanmo.steps_done": done}
        with tracing.job_span("step", job.trace, attributes):
            yield
    finally:
        REQUEST_ID.reset(token)


def record_wait(job: Job) -> None:
    """A long job's `queue wait` span (it runs in no batch, so it links to none)."""
    if tracing.tracer() is not None:
        wait = {"hanmo.job_id": job.job_id, "hanmo.rows": job.rows}
        tracing.record("queue wait", job.trace, job.enqueued_ms, job.started_ms, wait)


def request_ids(jobs: list[Job]) -> str:
    """The ids of the requests a batch serves, comma-joined ('' for none)."""
    ids = [job.request_id for job in jobs if job.request_id]
    if len(ids) > MAX_LOGGED_IDS:
        return ",".join(ids[:MAX_LOGGED_IDS]) + f",+{len(ids) - MAX_LOGGED_IDS}"
    return ",".join(ids)


def _spans(served: ServedVersion, jobs: list[Job], worker_id: str) -> AbstractContextManager[Any]:
    return tracing.OFF if tracing.tracer() is None else _batch_spans(served, jobs, worker_id)


@contextmanager
def _batch_spans(served: ServedVersion, jobs: list[Job], worker_id: str) -> Iterator[None]:
    attributes = {
        "hanmo.model": served.model,
        "hanmo.version": served.version,
        "hanmo.worker": worker_id,
        "hanmo.batch.jobs": len(jobs),
        "hanmo.batch.rows": sum(job.rows for job in jobs),
    }
    with tracing.batch_span("batch", [job.trace for job in jobs], attributes) as batch:
        for job in jobs:
            wait = {"hanmo.job_id": job.job_id, "hanmo.rows": job.rows}
            tracing.record("queue wait", job.trace, job.enqueued_ms, job.started_ms, wait, batch)
        yield

"""Dynamic batching on a real worker: max_wait_ms gathers jobs that arrive close together."""

from __future__ import annotations

import time

from app.settings import Settings
from tests.helpers import live_api, wait_until, worker_thread

SAMPLE = "/v1/models/tiny-sampler/sample"
ASYNC = {"Prefer": "respond-async"}


def test_max_wait_ms_gathers_a_late_job_into_the_batch(tiny: Settings) -> None:
    waiting = tiny.model_copy(update={"max_wait_ms": 400.0})
    with worker_thread(waiting) as worker, live_api(waiting) as client:
        first = client.post(SAMPLE, json={"seed": 1}, headers=ASYNC).json()
        time.sleep(0.05)
        second = client.post(SAMPLE, json={"seed": 2, "n": 3}, headers=ASYNC).json()
        for job in (first, second):
            wait_until(lambda job=job: client.get(job["href"]).json()["status"] == "done")
        stats = dict(next(iter(worker.models.values())).stats)
    assert stats == {"batches": 1, "rows": 4}


def test_without_max_wait_a_batch_is_what_is_already_queued(tiny: Settings) -> None:
    with live_api(tiny) as client:
        jobs = [client.post(SAMPLE, json={"seed": s}, headers=ASYNC).json() for s in range(5)]
        limited = tiny.model_copy(update={"max_batch_rows": 2})
        with worker_thread(limited) as worker:
            for job in jobs:
                wait_until(lambda job=job: client.get(job["href"]).json()["status"] == "done")
            stats = dict(next(iter(worker.models.values())).stats)
    assert stats == {"batches": 3, "rows": 5}  # 2 + 2 + 1 under max_batch_rows=2

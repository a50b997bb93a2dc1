"""Dynamic batching on a real worker: max_wait_ms gathers jobs that arrive close together."""

from __future__ import annotations

import time
from pathlib import Path

from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_faults import raising_sampler
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


def test_a_cards_max_batch_rows_runs_a_large_batch_in_smaller_calls(
    settings: Settings, tmp_path: Path
) -> None:
    """The raising sampler fails any call of 32 rows or more; with `max_batch_rows: 16` in its
    card the worker runs 40 rows as calls of 16, 16 and 8, and the answer is whole."""
    register_directory(
        settings, raising_sampler(tmp_path / "capped", max_batch_rows=16), "production"
    )
    with worker_thread(settings) as worker, live_api(settings) as client:
        answer = client.post(
            "/v1/models/raising-sampler/sample", json={"n": 40, "seed": 1, "format": "array"}
        )
        one = client.post(
            "/v1/models/raising-sampler/sample", json={"n": 1, "seed": 1, "format": "array"}
        )
        stats = next(iter(worker.models.values())).stats
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["samples"]) == 40
    assert answer.json()["samples"][0] == one.json()["samples"][0]  # same rows, in order
    assert stats["rows"] == 41

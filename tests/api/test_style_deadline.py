"""One deadline per style-transfer request (issue 46): its encode job and its generate job
carry the same absolute deadline, so the second gets only what the first left. Real api,
real worker thread, real ONNX Runtime on the shipped glyph-style model, real Redis; the
worker is held back by the clock condition a test names, never by a guessed sleep."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from redis import Redis

from app.errors import DeadlineExceeded
from app.queue import keys
from app.queue.clock import now_ms
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from app.worker.main import Worker
from tests.api.test_style_transfer import MODEL, URL, references, supported_text
from tests.helpers import live_api, wait_until, worker_thread

Job = dict[str, str]


@pytest.fixture
def served(settings: Settings) -> Settings:
    """The style model served; delivered jobs' records kept, so the tests read every step's."""
    register_directory(settings, MODEL, "production")
    return settings.model_copy(update={"keep_sync_results": True})


def read_job(redis: Redis, job_id: str) -> Job:
    fields: dict[bytes, bytes] = redis.hgetall(keys.job(job_id))  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in fields.items()}


def op(job: Job) -> str:
    return str(json.loads(job["meta"])["op"])


def hold_jobs(worker: Worker, release: Callable[[Job], bool]) -> list[Job]:
    """Pause the worker thread before it admits each job until `release(job)` holds; then its
    own code runs on. Returns the jobs it held, in order, each with the deadline its stream
    entry carried (what the worker reads) as `entry_deadline_ms`."""
    held: list[Job] = []
    handle = worker.handle

    def gated(stream: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for _, fields in entries:
            job = read_job(worker.redis, fields[b"job"].decode())
            job["entry_deadline_ms"] = fields[b"deadline_ms"].decode()
            held.append(job)
            wait_until(partial(release, job), timeout_s=60, awaiting=f"release of {op(job)}")
        handle(stream, entries)

    worker.handle = gated  # type: ignore[method-assign]
    return held


def enqueued(redis: Redis) -> dict[str, str]:
    """Every job in Redis, as op -> job id."""
    job_ids = [k.decode().rpartition(":")[2] for k in redis.scan_iter(match=keys.job("*"))]
    return {op(read_job(redis, j)): j for j in job_ids}


def body(timeout_ms: int) -> dict[str, Any]:
    return {"references": references(), "text": supported_text(2), "timeout_ms": timeout_ms}


def test_both_jobs_of_a_request_carry_its_one_deadline(served: Settings) -> None:
    with worker_thread(served) as worker, live_api(served) as client:
        # a step that takes a millisecond or more would move a fresh deadline on
        held = hold_jobs(worker, lambda job: now_ms() > int(job["created_ms"]))
        response = client.post(URL, json=body(20_000))
    assert response.status_code == 200, response.text
    assert [op(job) for job in held] == ["encode", "generate"]
    encode, generate = held
    assert generate["deadline_ms"] == encode["deadline_ms"]
    assert encode["entry_deadline_ms"] == encode["deadline_ms"]
    assert generate["entry_deadline_ms"] == generate["deadline_ms"]


def test_the_generate_job_gets_only_what_the_encode_job_left(served: Settings) -> None:
    """The encode job runs once half the request's time is spent; the generate job is held
    until the request's deadline has passed, so the worker drops it (with a fresh deadline of
    its own it would still have had half the time left, and would have run)."""
    timeout_ms = 4_000

    request_deadline: list[int] = []  # the encode job's: the one the request began with

    def release(job: Job) -> bool:
        if op(job) == "encode":
            request_deadline[:] = [int(job["deadline_ms"])]
            return now_ms() > request_deadline[0] - timeout_ms // 2
        return now_ms() > request_deadline[0]

    redis = sync_client(served.redis_url)
    with worker_thread(served) as worker, live_api(served) as client:
        held = hold_jobs(worker, release)
        response = client.post(URL, json=body(timeout_ms))
        assert [op(job) for job in held] == ["encode", "generate"]
        generate = enqueued(redis)["generate"]
        wait_until(
            lambda: read_job(redis, generate)["status"] not in ("queued", "running"),
            timeout_s=60,
            awaiting="the worker to answer the generate job",
        )
        status = read_job(redis, generate)["status"]
    redis.close()
    assert response.status_code == 504, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert status == "failed"  # dropped by the worker for its deadline, never run


def test_no_time_left_after_encoding_is_504_without_a_generate_job(served: Settings) -> None:
    redis = sync_client(served.redis_url)
    with worker_thread(served) as worker, live_api(served) as client:
        hold_jobs(worker, lambda job: now_ms() > int(job["deadline_ms"]))
        response = client.post(URL, json=body(1_000))
        ops = list(enqueued(redis))
    redis.close()
    assert response.status_code == 504, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 504
    assert ops == ["encode"]


def test_a_failed_encode_job_ends_the_request_with_its_problem(served: Settings) -> None:
    """A step's problem (here its job, cancelled while the worker is held, answers 409) is
    the request's answer, and the generate job is never submitted."""
    cancelled = threading.Event()
    redis = sync_client(served.redis_url)
    with worker_thread(served) as worker, live_api(served) as client:
        hold_jobs(worker, lambda job: cancelled.is_set())
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, URL, json=body(20_000))
            wait_until(lambda: "encode" in enqueued(redis), awaiting="the encode job")
            cancel = client.delete(f"/v1/jobs/{enqueued(redis)['encode']}")
            cancelled.set()
            response = pending.result()
        ops = list(enqueued(redis))
    redis.close()
    assert cancel.status_code == 204, cancel.text
    assert response.status_code == 409, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Job cancelled"
    assert ops == ["encode"]


def test_a_job_is_not_submitted_once_the_deadline_has_passed() -> None:
    from app.api.inference import check_time_left  # here: the file still runs on older code

    with pytest.raises(DeadlineExceeded, match="before its generate job"):
        check_time_left(now_ms(), "generate")
    check_time_left(now_ms() + 60_000, "generate")

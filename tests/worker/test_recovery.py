"""At-least-once delivery with one answer per job: workers killed mid-batch, stopped
gracefully, and jobs that keep killing their workers."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import httpx
from redis import Redis

from app.cli import register_directory
from app.queue import keys
from app.redis_conn import sync_client
from app.settings import Settings
from tests.helpers import (
    live_api,
    slow_sampler,
    start_worker_process,
    wait_until,
    worker_thread,
)

SLOW = "/v1/models/slow-sampler/sample"
# Heavy enough that a batch is still running when the test looks (a job of 32 rows takes
# about 0.1 s here; at width 512 and 8 rows, 20 jobs could all finish between two looks).
SLOW_WIDTH, SLOW_ROWS = 1024, 32
ASYNC = {"Prefer": "respond-async"}


def count_replies(settings: Settings, stop: threading.Event, seen: Counter[str]) -> None:
    """Count every answer published on any api's reply channel, per job."""
    # A plain client: no socket timeout and no health-check PING, so a quiet spell while a
    # killed worker is replaced (CI once saw 10 s) cannot kill this listener mid-test.
    pubsub = Redis.from_url(settings.redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(keys.reply_channel("*"))
    while not stop.is_set():
        message = pubsub.get_message(timeout=0.1)
        if message and message["type"] == "pmessage":
            seen[message["data"].partition(b"\n")[0].decode()] += 1
    pubsub.close()


def submit(client: httpx.Client, count: int) -> list[str]:
    return [
        client.post(SLOW, json={"n": SLOW_ROWS, "seed": s}, headers=ASYNC).json()["job_id"]
        for s in range(count)
    ]


def statuses(client: httpx.Client, job_ids: list[str]) -> Counter[str]:
    return Counter(client.get(f"/v1/jobs/{j}").json()["status"] for j in job_ids)


def running_jobs(settings: Settings, job_ids: list[str]) -> dict[str, int]:
    """job id -> pid of the worker running it, read in one pipeline (one instant)."""
    redis = sync_client(settings.redis_url)
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), "status", "worker")
        replies = pipe.execute()
    return {
        job_id: int(worker.decode().rsplit("-", 1)[1])
        for job_id, (status, worker) in zip(job_ids, replies, strict=True)
        if status == b"running"
    }


def wait_for_running(settings: Settings, job_ids: list[str]) -> dict[str, int]:
    """The jobs running at the first instant any is (job id -> its worker's pid)."""
    found: dict[str, int] = {}

    def any_running() -> bool:
        found.update(running_jobs(settings, job_ids))
        return bool(found)

    wait_until(any_running, 30, 0.01)
    return found


def test_worker_killed_mid_batch_loses_no_job(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"visibility_timeout_ms": 3000})
    register_directory(settings, slow_sampler(tmp_path / "slow", width=SLOW_WIDTH), "production")
    workers = [start_worker_process(settings) for _ in range(2)]
    stop, seen = threading.Event(), Counter[str]()
    listener = threading.Thread(target=count_replies, args=(settings, stop, seen))
    listener.start()
    try:
        with live_api(settings) as client:
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s=60)
            job_ids = submit(client, 40)
            victims: list[int] = []
            wait_until(
                lambda: bool(victims.extend(running_jobs(settings, job_ids).values()) or victims),
                30,
            )
            os.kill(victims[0], signal.SIGKILL)
            wait_until(lambda: statuses(client, job_ids)["done"] == len(job_ids), 120, 0.2)
            results = [client.get(f"/v1/jobs/{j}").json()["result"] for j in job_ids]
    finally:
        stop.set()
        listener.join()
        for process in workers:
            process.terminate()
            process.wait(timeout=30)
    assert all(r is not None and len(r["samples"]) == SLOW_ROWS for r in results)
    assert {j: seen[j] for j in job_ids} == dict.fromkeys(job_ids, 1)  # one answer each


def test_sigterm_finishes_the_batch_then_exits(settings: Settings, tmp_path: Path) -> None:
    register_directory(settings, slow_sampler(tmp_path / "slow", width=SLOW_WIDTH), "production")
    worker = start_worker_process(settings)
    try:
        with live_api(settings) as client:
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s=60)
            job_ids = submit(client, 20)
            running = list(wait_for_running(settings, job_ids))  # the batch in hand
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
            after = {j: client.get(f"/v1/jobs/{j}").json()["status"] for j in job_ids}
    finally:
        if worker.poll() is None:
            worker.kill()
    assert running
    assert all(after[j] == "done" for j in running)
    assert set(after.values()) <= {"done", "queued"}  # nothing half-done is left behind


def deliver_to_ghosts(redis: Redis, stream: str, idle_ms: int) -> None:
    """Deliver the stream's first entry three times, to consumers that die before answering,
    and wait until it has been idle long enough for a live worker to look at it."""
    redis.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    entry_id = redis.xreadgroup(keys.GROUP, "ghost-1", {stream: ">"})[0][1][0][0]
    for ghost in ("ghost-2", "ghost-3"):
        redis.xclaim(stream, keys.GROUP, ghost, 0, [entry_id])
    wait_until(lambda: redis.xpending_range(stream, keys.GROUP, "-", "+", 1, idle=idle_ms), 5)


def test_job_delivered_too_often_is_dead_lettered(tiny: Settings) -> None:
    redis = sync_client(tiny.redis_url)
    stream = keys.stream("tiny-sampler", 1)
    with live_api(tiny) as client:
        job_id = client.post(
            "/v1/models/tiny-sampler/sample", json={"seed": 1}, headers=ASYNC
        ).json()["job_id"]
        deliver_to_ghosts(redis, stream, tiny.visibility_timeout_ms)
        with worker_thread(tiny) as worker:
            wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "failed")
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert "delivered 3 times" in job["problem"]["detail"]
    assert redis.xlen(keys.DEAD_LETTER) == 1
    assert redis.xpending(stream, keys.GROUP)["pending"] == 0
    assert next(iter(worker.models.values())).stats["rows"] == 0


def test_dead_lettering_a_job_whose_record_expired_leaves_no_immortal_key(
    tiny: Settings,
) -> None:
    redis = sync_client(tiny.redis_url)
    stream = keys.stream("tiny-sampler", 1)
    with live_api(tiny) as client:
        job_id = client.post(
            "/v1/models/tiny-sampler/sample", json={"seed": 1}, headers=ASYNC
        ).json()["job_id"]
    redis.delete(keys.job(job_id))  # the job's record expired while it kept failing
    deliver_to_ghosts(redis, stream, tiny.visibility_timeout_ms)
    with worker_thread(tiny):
        wait_until(lambda: redis.exists(keys.result(job_id)) == 1)
    assert redis.exists(keys.job(job_id)) == 0  # not recreated without a TTL
    assert 0 < redis.ttl(keys.result(job_id)) <= tiny.result_ttl_s

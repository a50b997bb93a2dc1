"""Fast recovery from a dead worker (issue 46, item 5): its entries are claimed as soon as its
heartbeat expires, not after the visibility timeout; it leaves the consumer group; worker ids
never collide; and the pool backs off from a slot that keeps crashing.

Waits are on events (job states, log lines, group members); the time limits are safety nets,
except the one the behaviour is about: a synchronous request's own 20 s deadline."""

from __future__ import annotations

import os
import re
import signal
import threading
from datetime import datetime
from pathlib import Path

import httpx
from redis import Redis

from app.queue import keys
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from app.worker.pool import Slot, restart_delay_s
from tests.helpers import live_api, slow_sampler, wait_until, worker_thread
from tests.worker.processes import WorkerProcess, worker_processes
from tests.worker.test_recovery import (
    SLOW,
    SLOW_KEY,
    SLOW_ROWS,
    SLOW_STREAM,
    STALL_S,
    answered_by,
    catch_worker_holding,
    wait_ready,
)

DEFAULTS = Settings.model_fields
DEADLINE_MS = 20_000


def consumers(redis: Redis, stream: str) -> list[str]:
    return [c["name"].decode() for c in redis.xinfo_consumers(stream, keys.GROUP)]


def the_job_id(redis: Redis) -> list[str]:
    """The id of the one job in this test's (flushed) Redis, once the api has enqueued it."""
    return [k.decode().rpartition(":")[2] for k in redis.scan_iter(match=keys.job("*"))]


def test_sync_request_survives_its_worker_killed(settings: Settings, tmp_path: Path) -> None:
    # Production's timings: before heartbeat-driven reclaim, the orphaned job waited out the
    # 30 s visibility timeout and this request ended in 504 at its 20 s deadline.
    settings = settings.model_copy(
        update={
            name: DEFAULTS[name].default
            for name in ("visibility_timeout_ms", "heartbeat_s", "heartbeat_ttl_s")
        }
        | {"keep_sync_results": True}  # the test reads each delivered job's stored result
    )
    register_directory(settings, slow_sampler(tmp_path / "slow", width=1024), "production")
    redis = sync_client(settings.redis_url)
    answers: list[httpx.Response] = []
    with worker_processes(settings, 2) as workers, live_api(settings) as client:
        for worker in workers:
            worker.log.wait_for(f"worker.loaded version={SLOW_KEY}")
        wait_ready(client)
        body = {"n": SLOW_ROWS, "seed": 1, "timeout_ms": DEADLINE_MS}
        request = threading.Thread(
            target=lambda: answers.append(client.post(SLOW, json=body, timeout=STALL_S))
        )
        request.start()
        wait_until(lambda: the_job_id(redis), STALL_S, 0.001, awaiting="the job to be enqueued")
        job_ids = the_job_id(redis)
        victim = catch_worker_holding(redis, job_ids, more_than=0)
        os.kill(victim.pid, signal.SIGKILL)
        request.join(STALL_S)
        wait_until(
            lambda: victim.worker_id not in consumers(redis, SLOW_STREAM),
            STALL_S,
            awaiting=f"the dead worker {victim.worker_id} to leave the consumer group",
            seen=lambda: consumers(redis, SLOW_STREAM),
        )
    assert [r.status_code for r in answers] == [200], [r.text for r in answers]
    assert answered_by(redis, job_ids[0]) != victim.worker_id


def test_dead_consumers_leave_the_group_and_their_entries_are_answered(tiny: Settings) -> None:
    # The visibility timeout is an hour: only the missing heartbeats can explain a claim.
    tiny = tiny.model_copy(update={"visibility_timeout_ms": 3_600_000})
    redis = sync_client(tiny.redis_url)
    stream = keys.stream("tiny-sampler", 1)
    with live_api(tiny) as client:
        job_id = client.post(
            "/v1/models/tiny-sampler/sample", json={"seed": 1}, headers={"Prefer": "respond-async"}
        ).json()["job_id"]
        redis.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
        redis.xreadgroup(keys.GROUP, "dead-holding", {stream: ">"})
        redis.xreadgroup(keys.GROUP, "dead-idle", {stream: ">"})
        with worker_thread(tiny) as worker:
            wait_until(
                lambda: consumers(redis, stream) == [worker.id],
                STALL_S,
                awaiting="the dead consumers to leave the group",
                seen=lambda: consumers(redis, stream),
            )
            wait_until(lambda: redis.exists(keys.result(job_id)), STALL_S, awaiting="the answer")
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "done"


def test_worker_ids_made_on_one_host_with_one_pid_differ() -> None:
    slot = Slot("cuda:0", 0, 1)
    first, second = slot.worker_id(1), slot.worker_id(1)  # two containers, each its pid 1
    assert first != second
    assert first.rsplit("-", 2)[1] == "1"  # still readable: <host>-cuda0-0-<pid>-<random>
    assert "-cuda0-0-1-" in first


def test_restart_delays_grow_to_their_cap() -> None:
    delays = [restart_delay_s(crashes, 0.5, 4.0) for crashes in range(1, 8)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert restart_delay_s(10_000, 0.5, 4.0) == 4.0  # no overflow after a long crash loop


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def logged_at(line: str) -> datetime:
    found = LOG_TIME.match(line)
    assert found, f"no time on {line!r}"
    return datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f")


def test_a_crash_looping_slot_is_restarted_with_growing_delays(settings: Settings) -> None:
    # A registry URL no driver serves: each slot process exits as it starts.
    settings = settings.model_copy(
        update={
            "database_url": "nodriver://nowhere",
            "restart_backoff_s": 0.4,
            "restart_backoff_max_s": 1.6,
        }
    )
    crashes = 5
    pool = WorkerProcess(settings)
    try:
        died = pool.log.wait_for("worker.died", count=crashes)
        restarts = pool.log.wait_for("worker.restart ", count=crashes)
    finally:
        pool.stop()
    delays = [float(line.rpartition("restart_in_s=")[2]) for line in died]
    assert delays == [restart_delay_s(n, 0.4, 1.6) for n in range(1, crashes + 1)]
    assert delays == [0.0, 0.4, 0.8, 1.6, 1.6]
    waited = [
        (logged_at(r) - logged_at(d)).total_seconds() for d, r in zip(died, restarts, strict=True)
    ]
    assert all(w >= d - 0.002 for w, d in zip(waited, delays, strict=True)), (waited, delays)

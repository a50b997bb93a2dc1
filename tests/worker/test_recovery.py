"""At-least-once delivery with one answer per job: workers killed mid-batch, stopped
gracefully, and jobs that keep killing their workers.

Every wait is on an event (a worker's log line, job states and pending entries in Redis, a
process's exit), never on how long something should take: a slow machine makes these tests
slower, not red. Worker processes are stopped with their whole session (tests/worker/
processes.py), whatever the outcome."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis import Redis

from app.queue import keys
from app.queue.results import unpack
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import (
    live_api,
    slow_sampler,
    wait_for_progress,
    wait_until,
    worker_thread,
)
from tests.worker.processes import is_stopped, worker_processes

SLOW = "/v1/models/slow-sampler/sample"
SLOW_KEY = "slow-sampler:1"
SLOW_STREAM = keys.stream("slow-sampler", 1)
SLOW_WIDTH, SLOW_ROWS = 1024, 32
BATCH_ROWS = 2 * SLOW_ROWS  # two jobs a batch
ASYNC = {"Prefer": "respond-async"}
STALL_S = 120.0  # how long nothing may change before a wait fails (a safety net)
JobStates = dict[str, tuple[str, str]]  # job id -> (status, the worker that last admitted it)


class ReplyCounter:
    """Counts every answer published on any api's reply channel, per job, on a thread."""

    def __init__(self, redis_url: str) -> None:
        # A plain client: no socket timeout and no health-check PING, so a quiet spell while a
        # killed worker is replaced (CI once saw 10 s) cannot kill this listener mid-test.
        self.redis = sync_client(redis_url, quiet_ok=True)
        self.pubsub = self.redis.pubsub()
        self.seen = Counter[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def __enter__(self) -> ReplyCounter:
        self.pubsub.psubscribe(keys.reply_channel("*"))
        # Redis confirms the subscription before it sends any message that matches it
        wait_until(self._confirmed, 60, 0, awaiting="Redis to confirm the reply subscription")
        self._thread.start()
        return self

    def _confirmed(self) -> bool:
        message = self.pubsub.get_message(timeout=1.0)
        return message is not None and message["type"] == "psubscribe"

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                self.seen[message["data"].partition(b"\n")[0].decode()] += 1

    def drain(self) -> Counter[str]:
        """Every answer published so far, counted: one connection receives what is published
        in the order Redis published it, so a marker published now arrives after them all."""
        marker = f"marker-{uuid.uuid4().hex}"
        self.redis.publish(keys.reply_channel("test-marker"), f"{marker}\n")
        wait_until(
            lambda: self.seen[marker] == 1,
            60,
            awaiting="the reply listener to receive the marker published after every answer",
        )
        del self.seen[marker]
        return self.seen

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.pubsub.close()
        self.redis.close()


@dataclass(frozen=True, slots=True)
class Caught:
    """A worker process stopped (SIGSTOP) while it held running jobs."""

    pid: int
    worker_id: str
    jobs: list[str]


def submit(client: httpx.Client, count: int) -> list[str]:
    return [
        client.post(SLOW, json={"n": SLOW_ROWS, "seed": s}, headers=ASYNC).json()["job_id"]
        for s in range(count)
    ]


def job_states(redis: Redis, job_ids: list[str]) -> JobStates:
    """Every job's status and worker, read in one pipeline (one instant)."""
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), "status", "worker")
        replies = pipe.execute()
    return {
        job_id: ((status or b"").decode(), (worker or b"").decode())
        for job_id, (status, worker) in zip(job_ids, replies, strict=True)
    }


def running_on(states: JobStates) -> dict[str, list[str]]:
    """worker id -> the jobs it is running."""
    held: dict[str, list[str]] = {}
    for job_id, (status, worker) in states.items():
        if status == "running":
            held.setdefault(worker, []).append(job_id)
    return held


def worker_pid(worker_id: str) -> int:
    return int(worker_id.rsplit("-", 2)[1])  # a slot's id ends with its pid, then a random part


def progress(redis: Redis, job_ids: list[str]) -> tuple[JobStates, int]:
    """What a wait watches: the jobs' states and the stream's pending (unacked) entries."""
    return job_states(redis, job_ids), redis.xpending(SLOW_STREAM, keys.GROUP)["pending"]


def all_done(seen: tuple[JobStates, int]) -> bool:
    states, _ = seen
    failed = {j: s for j, s in states.items() if s[0] not in ("queued", "running", "done")}
    assert not failed, f"jobs ended other than done: {failed}"
    return all(status == "done" for status, _ in states.values())


def catch_worker_holding(redis: Redis, job_ids: list[str], more_than: int) -> Caught:
    """SIGSTOP a worker seen running more than `more_than` jobs. Stopped, it changes nothing;
    one that turns out to hold fewer by then is resumed (SIGCONT) and the watch goes on."""
    caught: list[Caught] = []

    def try_catch(seen: tuple[JobStates, int]) -> bool:
        assert not all_done(seen), f"every job finished before a worker held {more_than + 1}"
        for worker_id, held in running_on(seen[0]).items():
            if len(held) <= more_than:
                continue
            found = stop_if_holding(redis, job_ids, worker_id, more_than)
            if found is not None:
                caught.append(found)
                return True
        return False

    wait_for_progress(
        f"a worker running more than {more_than} jobs",
        lambda: progress(redis, job_ids),
        try_catch,
        STALL_S,
        interval_s=0.005,
    )
    return caught[0]


def stop_if_holding(
    redis: Redis, job_ids: list[str], worker_id: str, more_than: int
) -> Caught | None:
    """Stop the worker; keep it stopped if it still holds more than `more_than` jobs."""
    pid = worker_pid(worker_id)
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: is_stopped(pid), 60, 0.001, awaiting=f"worker pid {pid} to stop")
    held = running_on(job_states(redis, job_ids)).get(worker_id, [])
    if len(held) > more_than:
        return Caught(pid, worker_id, held)
    os.kill(pid, signal.SIGCONT)
    return None


def answered_by(redis: Redis, job_id: str) -> str:
    """The worker whose result was stored (the one answer a job gets)."""
    blob = redis.get(keys.result(job_id))
    assert isinstance(blob, bytes), f"job {job_id} has no stored result"
    return str(unpack(blob).info["worker"])


def wait_ready(client: httpx.Client) -> None:
    wait_until(
        lambda: client.get("/readyz").status_code == 200,
        STALL_S,
        awaiting="/readyz to answer 200",
        seen=lambda: client.get("/readyz").json(),
    )


def test_worker_killed_mid_batch_loses_no_job(settings: Settings, tmp_path: Path) -> None:
    # Deliveries never run out here: on a slow machine a live worker's batch can outlast the
    # visibility timeout and be delivered again (allowed; FINISH answers a job once), and
    # this test is about the kill; dead-lettering has tests of its own below.
    settings = settings.model_copy(
        update={"visibility_timeout_ms": 3000, "max_batch_rows": BATCH_ROWS, "max_deliveries": 1000}
    )
    register_directory(settings, slow_sampler(tmp_path / "slow", width=SLOW_WIDTH), "production")
    redis = sync_client(settings.redis_url)
    with ReplyCounter(settings.redis_url) as replies:
        with worker_processes(settings, 2) as workers, live_api(settings) as client:
            for worker in workers:
                worker.log.wait_for(f"worker.loaded version={SLOW_KEY}")
            wait_ready(client)
            job_ids = submit(client, 16)
            # A worker holding a whole batch (two jobs) in progress. Reads are bounded by rows
            # (issue 46): a worker takes about one batch of rows at a time, so it never holds
            # jobs it has not started (before, it read 64 entries here: four batches).
            victim = catch_worker_holding(redis, job_ids, more_than=BATCH_ROWS // SLOW_ROWS - 1)
            os.kill(victim.pid, signal.SIGKILL)
            wait_for_progress(
                "every job to be done", lambda: progress(redis, job_ids), all_done, STALL_S
            )
            results = [client.get(f"/v1/jobs/{j}").json()["result"] for j in job_ids]
        answers = replies.drain()  # every worker has stopped: no answer can come after this
    assert all(r is not None and len(r["samples"]) == SLOW_ROWS for r in results)
    assert {j: answers[j] for j in job_ids} == dict.fromkeys(job_ids, 1)  # one answer each
    recovered = [j for j in victim.jobs if answered_by(redis, j) != victim.worker_id]
    assert recovered, f"no job of the killed worker {victim.worker_id} was run by another"


def test_sigterm_finishes_the_batch_then_exits(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"max_batch_rows": BATCH_ROWS})
    register_directory(settings, slow_sampler(tmp_path / "slow", width=SLOW_WIDTH), "production")
    redis = sync_client(settings.redis_url)
    with worker_processes(settings, 1) as (worker,), live_api(settings) as client:
        worker.log.wait_for(f"worker.loaded version={SLOW_KEY}")
        wait_ready(client)
        job_ids = submit(client, 8)
        seen = wait_for_progress(
            "a job to run",
            lambda: progress(redis, job_ids),
            lambda seen: bool(running_on(seen[0])),
            STALL_S,
            interval_s=0.01,
        )
        running = [j for held in running_on(seen[0]).values() for j in held]  # the batch in hand
        worker.popen.send_signal(signal.SIGTERM)  # to the pool, which passes it to its slot
        # the pool gives its slot a bounded time, so wait for the slot's own last line too
        wait_for_progress(
            "the worker to log worker.stop and its pool to exit",
            lambda: (worker.popen.poll(), len(worker.log.lines), progress(redis, job_ids)),
            lambda seen: seen[0] is not None and bool(worker.log.matching("worker.stop")),
            STALL_S,
        )
        after = {j: status for j, (status, _) in job_states(redis, job_ids).items()}
    assert worker.popen.returncode == 0
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
    wait_until(
        lambda: redis.xpending_range(stream, keys.GROUP, "-", "+", 1, idle=idle_ms),
        60,
        awaiting=f"the ghosts' entry to be idle {idle_ms} ms",
        seen=lambda: redis.xpending_range(stream, keys.GROUP, "-", "+", 1),
    )


def job_status(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/v1/jobs/{job_id}").json()["status"])


def test_job_delivered_too_often_is_dead_lettered(tiny: Settings) -> None:
    redis = sync_client(tiny.redis_url)
    stream = keys.stream("tiny-sampler", 1)
    with live_api(tiny) as client:
        job_id = client.post(
            "/v1/models/tiny-sampler/sample", json={"seed": 1}, headers=ASYNC
        ).json()["job_id"]
        deliver_to_ghosts(redis, stream, tiny.visibility_timeout_ms)
        with worker_thread(tiny) as worker:
            wait_until(
                lambda: job_status(client, job_id) == "failed",
                STALL_S,
                awaiting=f"job {job_id} to be failed",
                seen=lambda: job_status(client, job_id),
            )
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
        wait_until(
            lambda: redis.exists(keys.result(job_id)) == 1,
            STALL_S,
            awaiting=f"job {job_id}'s result to be stored",
            seen=lambda: redis.xpending(stream, keys.GROUP),
        )
    assert redis.exists(keys.job(job_id)) == 0  # not recreated without a TTL
    assert 0 < redis.ttl(keys.result(job_id)) <= tiny.result_ttl_s

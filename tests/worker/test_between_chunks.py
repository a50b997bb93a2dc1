"""A long batch runs in chunks (the card's `max_batch_rows`), and between chunks the worker
answers the jobs waiting on its other streams, and stops a batch whose every client has gone
(issue 46: a style flood's 256-glyph batches held a one-row sample for seconds, and ran on for
seconds after their clients gave up)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx

from app.queue import keys
from app.queue.results import unpack
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, slow_sampler, wait_until, worker_thread

SLOW = "/v1/models/slow-sampler/sample"
TINY = "/v1/models/tiny-sampler/sample"
ASYNC = {"Prefer": "respond-async"}
ROWS = 48  # one graph call a row (max_batch_rows 1 on the card): 48 chunks


def _slow_in_chunks(settings: Settings, tmp_path: Path) -> None:
    directory = slow_sampler(tmp_path / "slow", max_batch_rows=1)  # one row a graph call
    register_directory(settings, directory, "production")


def test_other_streams_are_answered_between_chunks(tiny: Settings, tmp_path: Path) -> None:
    """A one-row sample sent while a 48-chunk batch runs is answered before that batch ends."""
    _slow_in_chunks(tiny, tmp_path)
    redis = sync_client(tiny.redis_url)
    with worker_thread(tiny), live_api(tiny) as client:
        wait_until(lambda: client.post(TINY, json={"seed": 1}).status_code == 200)
        slow = client.post(SLOW, json={"n": ROWS, "seed": 1}, headers=ASYNC).json()["job_id"]
        wait_until(lambda: redis.hget(keys.job(slow), "status") == b"running")
        answer = client.post(TINY, json={"seed": 2})
        status_then = redis.hget(keys.job(slow), "status")
        wait_until(lambda: client.get(f"/v1/jobs/{slow}").json()["status"] == "done")
    assert answer.status_code == 200
    assert status_then == b"running"  # answered between two of the slow batch's chunks


def test_a_batch_whose_clients_all_left_stops_between_chunks(
    settings: Settings, tmp_path: Path
) -> None:
    """A synchronous client that gives up while its job runs: the api marks the job
    abandoned, the worker stops the batch at the next chunk and answers it 499 client-gone
    (a job cancelled before it ran is a 409 instead)."""
    _slow_in_chunks(settings, tmp_path)
    redis = sync_client(settings.redis_url)
    kept = settings.model_copy(update={"keep_sync_results": True})
    with worker_thread(kept) as worker, live_api(kept) as client:
        body = json.dumps({"n": ROWS, "seed": 1}).encode()
        request = (
            f"POST {SLOW} HTTP/1.1\r\nHost: hanmo\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        url = httpx.URL(str(client.base_url))
        with socket.create_connection((url.host, url.port)) as raw:
            raw.sendall(request)  # a synchronous request, then no reading: the client waits
            job_id = _running_job(redis, keys.stream("slow-sampler", 1))
        # the connection is closed while the job runs: the client has gone
        wait_until(lambda: redis.hget(keys.job(job_id), "status") == b"failed")
        problem = unpack(redis.get(keys.result(job_id)) or b"").problem
        stats = next(iter(worker.models.values())).stats
    assert problem is not None
    assert (problem["status"], problem["title"]) == (499, "Client closed request")
    assert stats["batches"] == 0  # the batch never finished: it stopped between chunks


def test_a_batch_that_cannot_finish_by_its_deadline_is_answered_429_between_chunks(
    settings: Settings, tmp_path: Path
) -> None:
    """A job admitted (no pace measured yet, as when the machine slows after admission) whose
    batch, at the pace its first chunks kept, would end after the request's deadline: the
    worker answers it 429 overloaded with Retry-After between two chunks and stops the batch,
    instead of running on while its client waits for a 504 at the deadline (bench.overload
    flood). 48 rows of a 1,024-wide slow sampler, one row a chunk, against a 0.5 s deadline."""
    directory = slow_sampler(tmp_path / "slow", width=1024, max_batch_rows=1)
    register_directory(settings, directory, "production")
    with worker_thread(settings) as worker, live_api(settings) as client:
        answer = client.post(SLOW, json={"n": ROWS, "seed": 1, "timeout_ms": 500})
        stats = next(iter(worker.models.values())).stats
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "https://hanmo.dev/problems/overloaded"
    assert int(answer.headers["Retry-After"]) >= 1
    assert stats["batches"] == 0  # stopped between chunks, not run to its end


def _running_job(redis: Any, stream: str) -> str:
    """The id of the stream's one job, once a worker runs it."""
    found: list[str] = []

    def running() -> bool:
        entries = redis.xrange(stream)
        found[:] = [fields[b"job"].decode() for _, fields in entries]
        return len(found) == 1 and redis.hget(keys.job(found[0]), "status") == b"running"

    wait_until(running)
    return found[0]


def test_a_worker_whose_group_vanished_makes_it_again(tiny: Settings) -> None:
    """A stream's group gone under a running worker (a Sentinel failover to a replica that
    lacked it, as one CI run saw): the worker creates it again and keeps answering, instead of
    its slot dying on NOGROUP."""
    redis = sync_client(tiny.redis_url)
    stream = keys.stream("tiny-sampler", 1)
    with worker_thread(tiny) as worker, live_api(tiny) as client:
        assert client.post(TINY, json={"seed": 1}).status_code == 200
        redis.delete(stream)  # the stream and its group
        wait_until(lambda: redis.exists(stream) == 1)  # made again by the running worker
        answer = client.post(TINY, json={"seed": 2})
        alive = worker.stopping.is_set() is False
    assert answer.status_code == 200
    assert alive

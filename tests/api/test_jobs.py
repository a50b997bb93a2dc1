"""Async jobs: 202 + Location, polling, cancelling, Idempotency-Key."""

from __future__ import annotations

from app.queue import keys
from app.queue.client import FORGET_AFTER_S
from app.redis_conn import sync_client
from app.settings import Settings
from tests.helpers import live_api, wait_until, worker_thread

SAMPLE = "/v1/models/tiny-sampler/sample"
ASYNC = {"Prefer": "respond-async"}


def test_respond_async_gives_202_and_a_job_to_poll(tiny: Settings) -> None:
    with live_api(tiny) as client:
        accepted = client.post(SAMPLE, json={"n": 2, "seed": 5, "format": "array"}, headers=ASYNC)
        assert accepted.status_code == 202
        location = accepted.headers["location"]
        assert location == f"/v1/jobs/{accepted.json()['job_id']}"
        queued = client.get(location).json()
        assert queued["status"] == "queued"
        assert queued["result"] is None
        with worker_thread(tiny):
            wait_until(lambda: client.get(location).json()["status"] == "done")
        done = client.get(location).json()
        direct = None
        with worker_thread(tiny):
            direct = client.post(SAMPLE, json={"n": 2, "seed": 5, "format": "array"}).json()
    assert done["result"]["samples"] == direct["samples"]
    assert done["result"]["seed"] == 5
    assert done["model"] == "tiny-sampler"


def test_cancel_before_it_runs(tiny: Settings) -> None:
    with live_api(tiny) as client:
        job = client.post(SAMPLE, json={"seed": 1}, headers=ASYNC).json()
        assert client.delete(f"/v1/jobs/{job['job_id']}").status_code == 204
        again = client.delete(f"/v1/jobs/{job['job_id']}")
        with worker_thread(tiny) as worker:
            probe = client.post(SAMPLE, json={"seed": 2})  # the worker is live and serving
        state = client.get(f"/v1/jobs/{job['job_id']}").json()
    assert again.status_code == 409
    assert probe.status_code == 200
    assert state["status"] == "cancelled"
    assert state["problem"]["status"] == 409
    assert next(iter(worker.models.values())).stats["rows"] == 1  # the cancelled job never ran


def test_cancel_after_done_is_409(tiny: Settings) -> None:
    kept = tiny.model_copy(update={"keep_sync_results": True})
    with worker_thread(kept), live_api(kept) as client:
        job_id = client.post(SAMPLE, json={"seed": 1}).headers["x-hanmo-job"]
        response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


def test_a_delivered_synchronous_answer_is_not_kept(tiny: Settings) -> None:
    """Redis holds the work in flight, not the last hour's answers (issue 47): a synchronous
    job expires FORGET_AFTER_S after it finished (FINISH sets it; the api deletes nothing),
    unless a retry may name it (Idempotency-Key); async jobs keep their result for
    HANMO_RESULT_TTL_S."""
    redis = sync_client(tiny.redis_url)
    with worker_thread(tiny), live_api(tiny) as client:
        plain = client.post(SAMPLE, json={"seed": 1}).headers["x-hanmo-job"]
        keyed = client.post(SAMPLE, json={"seed": 1}, headers={"Idempotency-Key": "k-1"})
        queued = client.post(SAMPLE, json={"seed": 1}, headers=ASYNC).json()["job_id"]
        wait_until(lambda: client.get(f"/v1/jobs/{queued}").json()["status"] == "done")
        again = client.post(SAMPLE, json={"seed": 1}, headers={"Idempotency-Key": "k-1"})
    kept = keyed.headers["x-hanmo-job"]
    for key in (keys.job(plain), keys.result(plain)):
        assert 0 < redis.ttl(key) <= FORGET_AFTER_S
    for key in (keys.job(queued), keys.result(queued), keys.job(kept), keys.result(kept)):
        assert redis.ttl(key) > FORGET_AFTER_S
    assert again.headers["x-hanmo-job"] == kept
    assert again.json() == keyed.json()  # the keyed answer is still there for its retry


def test_idempotency_key_maps_to_one_job(tiny: Settings) -> None:
    headers = {**ASYNC, "Idempotency-Key": "order-42"}
    with live_api(tiny) as client:
        first = client.post(SAMPLE, json={"seed": 1}, headers=headers).json()
        second = client.post(SAMPLE, json={"seed": 1}, headers=headers).json()
        with worker_thread(tiny) as worker:
            synced = client.post(SAMPLE, json={"seed": 1}, headers={"Idempotency-Key": "order-42"})
    assert first["job_id"] == second["job_id"] == synced.headers["x-hanmo-job"]
    assert synced.status_code == 200
    assert next(iter(worker.models.values())).stats["rows"] == 1

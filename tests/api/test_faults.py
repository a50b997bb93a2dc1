"""Faults: Redis going away, no worker, a deadline that passes. Each test owns the server it
stops (an embedded Redis on its own port), never the machine's shared services."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.redis_conn import EmbeddedRedis
from app.settings import Settings
from tests.helpers import free_port, live_api, wait_until, worker_thread

SAMPLE = "/v1/models/tiny-sampler/sample"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "own-redis", port=free_port())
    server.start()
    yield server
    server.stop()


def test_redis_outage_is_503_and_recovers_without_restart(
    tiny: Settings, own_redis: EmbeddedRedis
) -> None:
    settings = tiny.model_copy(update={"redis_url": own_redis.url})
    with worker_thread(settings), live_api(settings) as client:
        assert client.post(SAMPLE, json={"seed": 1}).status_code == 200
        own_redis.stop()
        down = client.post(SAMPLE, json={"seed": 2})
        alive = client.get("/livez")
        not_ready = client.get("/readyz")
        own_redis.start()
        back_at = time.monotonic()
        wait_until(
            lambda: client.post(SAMPLE, json={"seed": 3, "timeout_ms": 2000}).status_code == 200,
            timeout_s=15,
        )
        time.monotonic() - back_at
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["title"] == "Queue unavailable"
    assert alive.status_code == 200
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["redis"] is False


def test_no_worker_means_504_at_the_deadline_not_a_hang(tiny: Settings) -> None:
    with live_api(tiny) as client:
        response = client.post(SAMPLE, json={"seed": 1, "timeout_ms": 300})
        problem = response.json()
        with worker_thread(tiny):  # the late worker drops the expired job, answering 504
            wait_until(
                lambda: client.get(f"/v1/jobs/{problem['job_id']}").json()["status"] == "failed"
            )
            job = client.get(f"/v1/jobs/{problem['job_id']}").json()
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert job["problem"]["status"] == 504


def test_job_expired_in_queue_is_dropped_not_run(tiny: Settings) -> None:
    with live_api(tiny) as client:
        job_id = client.post(
            SAMPLE, json={"seed": 1, "timeout_ms": 100}, headers={"Prefer": "respond-async"}
        ).json()["job_id"]
        time.sleep(0.3)
        with worker_thread(tiny) as worker:
            wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "failed")
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["problem"]["title"] == "Deadline exceeded"
    assert next(iter(worker.models.values())).stats["rows"] == 0

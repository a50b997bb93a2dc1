"""Autoregressive sampling batched per step across requests (issue 50, item 4): a real worker
thread, a live uvicorn, real Redis and ONNX Runtime, tiny masked-linear step graphs
(tests/ar_models.py). 50 concurrent requests give the very bytes each gives alone and a plain
NumPy + ONNX Runtime loop gives; a short request joins a long one's steps and leaves first
(and, batching whole requests, waits for it); other models are served between steps; a
deadline drops a job's rows; a job whose worker stopped mid-loop is run again elsewhere."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.queue import keys
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_autoregressive import P, V, reference
from tests.ar_models import save_ar
from tests.helpers import live_api, slow_sampler, wait_until, worker_thread

FAST, SLOW = "/v1/models/tiny-ar/sample", "/v1/models/slow-ar/sample"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ar-models")
    return {
        "tiny-ar": save_ar(root / "tiny-ar"),
        "slow-ar": save_ar(root / "slow-ar", name="slow-ar", hidden=16, seed=2),
        "sampler": slow_sampler(root / "sampler", name="quick-sampler", layers=1),
    }


@pytest.fixture
def served(settings: Settings, models: dict[str, Path]) -> Settings:
    for directory in models.values():
        register_directory(settings, directory, "production")
    return settings


def request_body(i: int) -> dict[str, Any]:
    """Request i of the 50: its own seed, n 1-4 and a prefix of 0-43 positions."""
    rng = np.random.default_rng(i)
    body: dict[str, Any] = {"seed": 1000 + i, "n": int(rng.integers(1, 5)), "format": "array"}
    if i % 3:
        k = int(rng.integers(1, 44))
        flat = rng.integers(0, V, k).tolist()
        body["prefix"] = [flat[r : r + 8] for r in range(0, k, 8)]
    return body


def flat_prefix(body: dict[str, Any]) -> list[int]:
    return [v for row in body.get("prefix", []) for v in row]


def test_fifty_concurrent_requests_give_the_bytes_each_gives_alone(
    served: Settings, models: dict[str, Path]
) -> None:
    bodies = [request_body(i) for i in range(50)]
    with worker_thread(served) as worker, live_api(served) as client:
        alone = [client.post(FAST, json=body).json()["levels"] for body in bodies]
        assert worker.steps.widest <= 4  # one request at a time: never more than its rows
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda body: client.post(FAST, json=body), bodies))
        widest = worker.steps.widest
    assert [a.status_code for a in answers] == [200] * 50
    together = [a.json()["levels"] for a in answers]
    assert widest > 4  # rows of several requests shared steps
    assert together == alone
    for body, got in zip(bodies, together, strict=True):
        want = reference(models["tiny-ar"], body["seed"], body["n"], flat_prefix(body))
        assert np.array_equal(np.asarray(got).reshape(body["n"], P), want)


@pytest.mark.parametrize("mode", ["step", "request"])
def test_a_short_request_joins_a_running_one_and_leaves_first(served: Settings, mode: str) -> None:
    """A 64-step request runs; a 1-step one sent meanwhile joins at the next step and is
    answered while the long one still runs, and a sampler request is served between steps.
    Batching whole requests (the baseline), the short one waits for the long one's end."""
    settings = served.model_copy(update={"ar_batching": mode})
    short = {"seed": 2, "prefix": [[1] * 8] * 7 + [[1] * 7]}
    redis = sync_client(settings.redis_url)
    with worker_thread(settings), live_api(settings) as client:
        long = client.post(SLOW, json={"seed": 1}, headers={"Prefer": "respond-async"}).json()
        wait_until(
            lambda: redis.hget(keys.job(long["job_id"]), "status") == b"running",
            awaiting="the long request to run",
        )
        answer = client.post(SLOW, json=short)
        long_then = redis.hget(keys.job(long["job_id"]), "status")
        sampled = client.post("/v1/models/quick-sampler/sample", json={"seed": 1})
        sampler_then = redis.hget(keys.job(long["job_id"]), "status")
        wait_until(lambda: client.get(long["href"]).json()["status"] == "done", timeout_s=60)
    assert answer.status_code == 200
    assert sampled.status_code == 200
    assert answer.json()["steps"] == 1
    if mode == "step":
        assert long_then == b"running"
        assert sampler_then == b"running"  # served between the long request's steps
    else:
        assert long_then == b"done"


def test_a_deadline_drops_the_rows_of_its_job(served: Settings) -> None:
    with worker_thread(served) as worker, live_api(served) as client:
        started = time.monotonic()
        late = client.post(SLOW, json={"n": 64, "seed": 3, "timeout_ms": 300})
        wait_until(lambda: not worker.steps.busy, timeout_s=5, awaiting="the lane to empty")
        emptied_s = time.monotonic() - started
    assert late.status_code == 504
    assert late.headers["content-type"] == "application/problem+json"
    assert emptied_s < 3.0  # 64 rows x 64 steps of this graph take ~10 s


def test_a_job_whose_worker_stopped_mid_loop_runs_again_elsewhere(
    served: Settings, models: dict[str, Path]
) -> None:
    body = {"n": 8, "seed": 4, "format": "array"}
    redis = sync_client(served.redis_url)
    with live_api(served) as client:
        with worker_thread(served, "first") as first:
            job = client.post(SLOW, json=body, headers={"Prefer": "respond-async"}).json()
            wait_until(lambda: first.steps.widest > 0, awaiting="the first worker to step")
        assert redis.hget(keys.job(job["job_id"]), "status") == b"running"  # left mid-loop
        with worker_thread(served, "second"):
            wait_until(
                lambda: client.get(job["href"]).json()["status"] == "done",
                timeout_s=60,
                awaiting="the job to be reclaimed and answered",
            )
        result = client.get(job["href"]).json()["result"]
    want = reference(models["slow-ar"], 4, 8)
    assert np.array_equal(np.asarray(result["levels"]).reshape(8, P), want)
    assert redis.hget(keys.job(job["job_id"]), "worker") == b"second"


def test_a_client_that_leaves_drops_the_rows_of_its_job(served: Settings) -> None:
    body = {"n": 64, "seed": 5}  # ~10 s of steps for this graph
    with worker_thread(served) as worker, live_api(served) as client:
        headers = {"Accept": "text/event-stream"}
        with client.stream("POST", SLOW, json=body, headers=headers) as response:
            wait_until(lambda: worker.steps.busy, awaiting="the job's rows to fly")
            job_id = response.headers["X-Hanmo-Job"]
        left = time.monotonic()  # the connection is closed here
        wait_until(lambda: not worker.steps.busy, timeout_s=5, awaiting="the lane to empty")
        emptied_s = time.monotonic() - left
        status = sync_client(served.redis_url).hget(keys.job(job_id), "status")
    assert emptied_s < 3.0
    assert status == b"failed"  # answered 499 client-gone, its rows dropped


def test_steps_run_between_the_chunks_of_another_models_batch(
    served: Settings, tmp_path: Path
) -> None:
    """A sampler batch of 100 one-row chunks runs; an autoregressive request sent meanwhile
    takes a step between chunks and is answered before that batch ends."""
    heavy = slow_sampler(tmp_path / "heavy", name="heavy-sampler", max_batch_rows=1)
    register_directory(served, heavy, "production")
    redis = sync_client(served.redis_url)
    with worker_thread(served), live_api(served) as client:
        batch = client.post(
            "/v1/models/heavy-sampler/sample",
            json={"n": 100, "seed": 1},
            headers={"Prefer": "respond-async"},
        ).json()
        wait_until(
            lambda: redis.hget(keys.job(batch["job_id"]), "status") == b"running",
            awaiting="the sampler batch to run",
        )
        answer = client.post(FAST, json={"seed": 3})
        batch_then = redis.hget(keys.job(batch["job_id"]), "status")
    assert answer.status_code == 200
    assert batch_then == b"running"

"""Faults: Redis going away, no worker, a deadline that passes. Each test owns the server it
stops (an embedded Redis on its own port), never the machine's shared services."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.queue import keys
from app.redis_conn import EmbeddedRedis, sync_client
from app.settings import Settings
from tests.helpers import free_port, live_api, wait_until, worker_thread
from tests.worker.processes import install_leftover_guard

SAMPLE = "/v1/models/tiny-sampler/sample"
RECOVER_S = 120.0  # a safety net for a recovery that is awaited, not timed


@pytest.fixture(scope="session", autouse=True)
def leftover_process_guard(request: pytest.FixtureRequest) -> None:
    """At the session's end, any process the tests left alive is killed and fails the run."""
    install_leftover_guard(request.config)


def job_status(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/v1/jobs/{job_id}").json()["status"])


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
        wait_until(
            lambda: client.post(SAMPLE, json={"seed": 3, "timeout_ms": 2000}).status_code == 200,
            RECOVER_S,
            awaiting="a sample to be answered again after Redis came back",
            seen=lambda: client.get("/readyz").json(),
        )
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["title"] == "Queue unavailable"
    assert alive.status_code == 200
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["redis"] is False


def test_a_request_waiting_when_redis_goes_away_is_503_not_504(
    tiny: Settings, own_redis: EmbeddedRedis
) -> None:
    """A synchronous request whose job is queued when Redis stops: at its deadline the api
    cannot read whether the job finished, and says so (503 Queue unavailable) rather than a
    504 that blames the model's pace (bench.chaos redis saw one such 504). The job's worker is
    a live heartbeat that reads nothing, so the job is still queued when Redis goes."""
    settings = tiny.model_copy(update={"redis_url": own_redis.url})
    sync_client(settings.redis_url).zadd(keys.WORKERS, {"reads-nothing": time.time() + 3600})
    with live_api(settings) as client:
        waiting: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: waiting.append(client.post(SAMPLE, json={"seed": 1, "timeout_ms": 3000}))
        )
        thread.start()
        wait_until(
            lambda: sync_client(settings.redis_url).xlen(keys.stream("tiny-sampler", 1)) == 1,
            RECOVER_S,
            awaiting="the request's job in the queue",
        )
        own_redis.stop()
        thread.join(RECOVER_S)
        own_redis.start()
    (answer,) = waiting
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Queue unavailable"


def test_no_worker_means_503_at_once_and_async_jobs_wait_for_one(tiny: Settings) -> None:
    """With no worker alive, a synchronous request is refused at once (503 no-worker, with
    Retry-After; before issue 46 it waited its whole deadline for a 504) and queues nothing;
    an asynchronous one is accepted and answered once a worker comes."""
    redis = sync_client(tiny.redis_url)
    with live_api(tiny) as client:
        refused = client.post(SAMPLE, json={"seed": 1, "timeout_ms": 30_000})
        assert redis.xlen(keys.stream("tiny-sampler", 1)) == 0
        accepted = client.post(SAMPLE, json={"seed": 1}, headers={"Prefer": "respond-async"})
        job_id = accepted.json()["job_id"]
        with worker_thread(tiny):
            wait_until(
                lambda: job_status(client, job_id) == "done",
                RECOVER_S,
                awaiting=f"job {job_id} to be done",
                seen=lambda: job_status(client, job_id),
            )
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("no-worker")
    assert int(refused.headers["Retry-After"]) >= 1
    assert accepted.status_code == 202


def test_job_expired_in_queue_is_dropped_not_run(tiny: Settings) -> None:
    with live_api(tiny) as client:
        job_id = client.post(
            SAMPLE, json={"seed": 1, "timeout_ms": 100}, headers={"Prefer": "respond-async"}
        ).json()["job_id"]
        deadline = sync_client(tiny.redis_url).hget(keys.job(job_id), "deadline_ms")
        assert isinstance(deadline, bytes)
        deadline_ms = int(deadline)
        # past the deadline by the worker's clock (whole ms of time.time()), not after a guess
        wait_until(lambda: int(time.time() * 1000) > deadline_ms, RECOVER_S)
        with worker_thread(tiny) as worker:
            wait_until(
                lambda: job_status(client, job_id) == "failed",
                RECOVER_S,
                awaiting=f"job {job_id} to be failed",
                seen=lambda: job_status(client, job_id),
            )
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["problem"]["title"] == "Deadline exceeded"
    assert next(iter(worker.models.values())).stats["rows"] == 0


def test_postgres_outage_serves_from_cache_refuses_admin_writes_and_recovers(
    settings: Settings, tmp_path: Path
) -> None:
    """A throwaway cluster the test owns is stopped under a live api and worker: inference
    keeps answering (registry cache, loaded models), readiness says `degraded` (200: a load
    balancer keeps the replica) while a replica with nothing cached is not ready, admin
    writes answer 503, and all recover by themselves when the database is back."""
    from app.registry.db import upgrade
    from app.services.registration import register_directory
    from tests.api.test_admin import new_key
    from tests.helpers import ThrowawayPostgres
    from training import tiny_sampler

    postgres = ThrowawayPostgres()
    try:
        postgres.start()
        upgrade(postgres.url)
        own = settings.model_copy(update={"database_url": postgres.url})
        register_directory(own, tiny_sampler.build(tmp_path / "tiny"), "production")
        key = {"Authorization": f"Bearer {new_key(own, 'admin')}"}
        with worker_thread(own), live_api(own) as client:
            assert client.post(SAMPLE, json={"seed": 1}).status_code == 200
            assert client.get("/admin/models", headers=key).status_code == 200
            postgres.stop()
            during = [client.post(SAMPLE, json={"seed": s}) for s in range(20)]
            write = client.post("/admin/models", json={"name": "x", "kind": "sampler"}, headers=key)
            ready = client.get("/readyz")
            with live_api(own) as cold_client:  # a replica that has routed nothing yet
                cold = cold_client.get("/readyz")
            postgres.start()
            wait_until(
                lambda: client.post("/admin/models", json={"name": "y", "kind": "sampler"},
                                    headers=key).status_code == 201,
                timeout_s=RECOVER_S,
                interval_s=0.2,
                awaiting="an admin write to succeed after Postgres came back",
                seen=lambda: client.get("/readyz").json(),
            )  # fmt: skip
            after = client.post(SAMPLE, json={"seed": 99})
            recovered = client.get("/readyz")
    finally:
        postgres.remove()
    assert [r.status_code for r in during] == [200] * 20
    assert write.status_code == 503
    assert write.headers["content-type"] == "application/problem+json"
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["database"] is False
    assert cold.status_code == 503
    assert cold.headers["content-type"] == "application/problem+json"
    assert "no cached route" in cold.json()["detail"]
    assert after.status_code == 200
    assert recovered.json()["status"] == "ready"


def raising_sampler(directory: Path, **signature: object) -> Path:
    """A sampler whose graph runs for fewer than 32 rows and raises for more (a Gather out of
    bounds), so it passes the contract check and fails only at serving time."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from tests.helpers import save_sampler

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((16, 784)).astype(np.float32), "w")
    table = numpy_helper.from_array(np.zeros(32, np.float32), "table")
    shape = numpy_helper.from_array(np.array([-1, 28, 28], np.int64), "shape")
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    nodes = [
        helper.make_node("MatMul", ["z", "w"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["img"]),
        helper.make_node("Shape", ["z"], ["zshape"]),
        helper.make_node("Gather", ["zshape", "zero"], ["rows"]),
        helper.make_node("Gather", ["table", "rows"], ["offset"]),  # raises for rows >= 32
        helper.make_node("Add", ["img", "offset"], ["x"]),
    ]
    graph = helper.make_graph(
        nodes,
        "raising",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 28, 28])],
        [weights, table, shape, zero],
    )
    return save_sampler(graph, directory, "raising-sampler", **signature)


def test_a_graph_that_raises_fails_its_jobs_and_nothing_else(
    tiny: Settings, tmp_path: Path
) -> None:
    from app.services.registration import register_directory

    register_directory(tiny, raising_sampler(tmp_path / "raising"), "production")
    with worker_thread(tiny) as worker, live_api(tiny) as client:
        wait_until(
            lambda: len(worker.models) == 2,
            RECOVER_S,
            awaiting="the worker to load both models",
            seen=lambda: (list(worker.models), worker.failed_loads),
        )
        small = client.post("/v1/models/raising-sampler/sample", json={"n": 4, "seed": 1})
        broken = client.post("/v1/models/raising-sampler/sample", json={"n": 40, "seed": 1})
        other = client.post(SAMPLE, json={"n": 40, "seed": 1})
        again = client.post("/v1/models/raising-sampler/sample", json={"n": 4, "seed": 2})
        alive = worker.heartbeat.last_error
    assert small.status_code == 200
    assert broken.status_code == 500
    assert broken.headers["content-type"] == "application/problem+json"
    problem = broken.json()
    assert problem["type"].endswith("/job-failed")
    assert "raised" in problem["detail"]
    assert "Traceback" not in broken.text
    assert (other.status_code, again.status_code) == (200, 200)
    assert "raising-sampler:1" in alive

"""Sampling end to end: HTTP -> Redis stream -> worker -> ONNX Runtime -> HTTP."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from app.settings import Settings
from tests.helpers import live_api, worker_thread


def sample(client, **body):  # type: ignore[no-untyped-def]
    response = client.post("/v1/models/tiny-sampler/sample", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_sample_same_seed_is_byte_identical(tiny: Settings) -> None:
    with worker_thread(tiny), live_api(tiny) as client:
        first = client.post("/v1/models/tiny-sampler/sample", json={"n": 4, "seed": 7})
        second = client.post("/v1/models/tiny-sampler/sample", json={"n": 4, "seed": 7})
        other = sample(client, n=4, seed=8)
    assert first.status_code == second.status_code == 200
    a, b = first.json(), second.json()
    assert a["samples"] == b["samples"]
    assert a["samples"] != other["samples"]
    assert (a["seed"], a["version"], a["model"]) == (7, 1, "tiny-sampler")
    assert len(a["sha256"]) == 64
    assert a["provider"] == "CPUExecutionProvider"
    assert a["runtime"].startswith("onnxruntime ")
    image = Image.open(io.BytesIO(base64.b64decode(a["samples"][0])))
    assert image.size == (28, 28)
    assert image.mode == "L"


def test_sample_i_does_not_depend_on_n(tiny: Settings) -> None:
    with worker_thread(tiny), live_api(tiny) as client:
        small = sample(client, n=8, seed=3, format="array")
        large = sample(client, n=64, seed=3, format="array")
    assert np.array_equal(np.array(small["samples"]), np.array(large["samples"][:8]))


def test_sample_batched_with_concurrent_requests_is_identical(tiny: Settings) -> None:
    with worker_thread(tiny) as worker, live_api(tiny) as client:
        alone = sample(client, n=2, seed=11, format="array")["samples"]
        with ThreadPoolExecutor(16) as pool:
            futures = [
                pool.submit(sample, client, n=2, seed=s, format="array") for s in range(100, 150)
            ]
            mine = pool.submit(sample, client, n=2, seed=11, format="array")
            results = [f.result() for f in futures]
        batched = mine.result()["samples"]
        batches = next(iter(worker.models.values())).stats
    assert batched == alone
    assert len({r["seed"] for r in results}) == 50
    assert batches["rows"] > batches["batches"]  # some batches held several jobs


def test_more_requests_in_flight_than_redis_connections_all_answer(tiny: Settings) -> None:
    """Past `redis_max_connections` commands in flight, requests wait for a connection; they
    are not turned away with 503 "the job queue cannot be reached" (as at 256+ clients)."""
    small_pool = tiny.model_copy(update={"redis_max_connections": 4})
    with worker_thread(small_pool), live_api(small_pool) as client:
        with ThreadPoolExecutor(48) as pool:
            answers = list(
                pool.map(
                    lambda seed: client.post(
                        "/v1/models/tiny-sampler/sample", json={"seed": seed, "format": "array"}
                    ),
                    range(96),
                )
            )
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * 96, {s: statuses.count(s) for s in set(statuses)}


def test_sample_without_seed_chooses_and_echoes_one(tiny: Settings) -> None:
    with worker_thread(tiny), live_api(tiny) as client:
        chosen = sample(client, n=1, format="array")
        again = sample(client, n=1, seed=chosen["seed"], format="array")
    assert isinstance(chosen["seed"], int)
    assert again["samples"] == chosen["samples"]


def test_sample_grid_and_raw_png(tiny: Settings) -> None:
    with worker_thread(tiny), live_api(tiny) as client:
        grid = sample(client, n=9, seed=1, format="grid")
        raw = client.post(
            "/v1/models/tiny-sampler/sample",
            json={"n": 9, "seed": 1},
            headers={"Accept": "image/png"},
        )
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "image/png"
    assert raw.headers["x-hanmo-seed"] == "1"
    assert raw.headers["x-hanmo-version"] == "1"
    assert base64.b64decode(grid["grid"]) == raw.content
    assert Image.open(io.BytesIO(raw.content)).size == (3 * 30 + 2, 3 * 30 + 2)

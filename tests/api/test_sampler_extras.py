"""Interpolation and log-density endpoints of the sampler kind, on a real worker."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, wait_until, worker_thread
from training.tiny_sampler import build_density

BASE = "/v1/models/tiny-density"


@pytest.fixture(scope="module")
def density_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_density(tmp_path_factory.mktemp("density") / "tiny-density")


@pytest.fixture
def density(settings: Settings, density_dir: Path) -> Settings:
    register_directory(settings, density_dir, "production")
    return settings


def digits_rows(count: int) -> list[list[float]]:
    return load_digits().data[:count].tolist()


def test_log_prob_matches_the_graph_and_reports_bits_per_dim(
    density: Settings, density_dir: Path
) -> None:
    rows = digits_rows(5)
    with worker_thread(density), live_api(density) as client:
        response = client.post(f"{BASE}/log-prob", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    session = ort.InferenceSession(str(density_dir / "log_prob.onnx"))
    (expected,) = session.run(["log_prob"], {"x": np.asarray(rows, dtype=np.float32)})
    assert body["log_prob"] == expected.astype(np.float64).tolist()
    assert body["bits_per_dim"] == pytest.approx([-lp / (64 * math.log(2)) for lp in expected])
    assert (body["n"], body["input_dim"], body["levels"]) == (5, 64, 17)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rows": [[1.0] * 63]}, "rows"),
        ({"rows": [[float("nan")] * 64]}, "body.rows.0.0"),
        ({"rows": [[17.0] * 64]}, "rows"),
        ({"rows": [[-1.0] * 64]}, "rows"),
        ({"rows": []}, "body.rows"),
        ({"rows": [[1.0] * 64] * 1025}, "body.rows"),
    ],
)
def test_bad_log_prob_rows_are_422(density: Settings, body: dict, field: str) -> None:  # type: ignore[type-arg]
    raw = json.dumps(body).encode()  # allows the NaN literal, as a careless client would send
    with live_api(density) as client:
        response = client.post(
            f"{BASE}/log-prob", content=raw, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json().get("errors", [])}


def test_log_prob_on_a_model_without_a_density_is_422(tiny: Settings) -> None:
    with live_api(tiny) as client:
        response = client.post("/v1/models/tiny-sampler/log-prob", json={"rows": [[0.0]]})
    assert response.status_code == 422
    assert "no log_prob graph" in response.json()["detail"]


def test_interpolation_ends_are_the_seeds_first_samples(density: Settings) -> None:
    with worker_thread(density), live_api(density) as client:
        path = client.post(
            f"{BASE}/interpolate", json={"seeds": [3, 9], "steps": 5, "format": "array"}
        ).json()
        start = client.post(f"{BASE}/sample", json={"seed": 3, "format": "array"}).json()
        end = client.post(f"{BASE}/sample", json={"seed": 9, "format": "array"}).json()
        linear = client.post(
            f"{BASE}/interpolate",
            json={"seeds": [3, 9], "steps": 5, "method": "linear", "format": "array"},
        ).json()
    assert len(path["frames"]) == 5
    assert path["frames"][0] == start["samples"][0]
    assert path["frames"][-1] == end["samples"][0]
    assert linear["frames"][0] == start["samples"][0]
    assert linear["frames"][2] != path["frames"][2]  # slerp and lerp differ in the middle


def test_interpolation_as_png_frames_and_gif(density: Settings) -> None:
    request = {"seeds": [1, 2], "steps": 4}
    with worker_thread(density), live_api(density) as client:
        frames = client.post(f"{BASE}/interpolate", json=request).json()["frames"]
        gif = client.post(f"{BASE}/interpolate", json=request, headers={"Accept": "image/gif"})
        animation = client.post(f"{BASE}/interpolate", json={**request, "format": "gif"}).json()
    sizes = {Image.open(io.BytesIO(base64.b64decode(f))).size for f in frames}
    assert sizes == {(32, 32)}  # 8x8 samples shown at the card's display_scale 4
    assert gif.status_code == 200
    assert gif.headers["content-type"] == "image/gif"
    assert base64.b64decode(animation["animation"]) == gif.content
    assert Image.open(io.BytesIO(gif.content)).n_frames == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seeds": [1, 2], "steps": 1}, "body.steps"),
        ({"seeds": [1, 2], "steps": 65}, "body.steps"),
        ({"seeds": [1]}, "body.seeds"),
        ({"seeds": [1, -2]}, "body.seeds.1"),
        ({"seeds": [1, 2], "latents": [[0.0] * 64, [1.0] * 64]}, "seeds"),
        ({}, "seeds"),
        ({"latents": [[0.0] * 3, [1.0] * 3]}, "latents"),
        ({"seeds": [1, 2], "labels": 1}, "labels"),
        ({"seeds": [1, 2], "method": "cubic"}, "body.method"),
    ],
)
def test_bad_interpolation_is_422(density: Settings, body: dict, field: str) -> None:  # type: ignore[type-arg]
    with live_api(density) as client:
        response = client.post(f"{BASE}/interpolate", json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json().get("errors", [])}


def test_sampling_and_scoring_jobs_share_a_stream(density: Settings) -> None:
    async_ = {"Prefer": "respond-async"}
    with live_api(density) as client:
        jobs = [
            client.post(f"{BASE}/sample", json={"seed": 1, "n": 2}, headers=async_),
            client.post(f"{BASE}/log-prob", json={"rows": digits_rows(3)}, headers=async_),
            client.post(f"{BASE}/sample", json={"seed": 2}, headers=async_),
        ]
        hrefs = [job.json()["href"] for job in jobs]
        with worker_thread(density) as worker:  # one read holds all three entries
            for href in hrefs:
                wait_until(lambda href=href: client.get(href).json()["status"] == "done")
        results = [client.get(href).json()["result"] for href in hrefs]
        stats = dict(next(iter(worker.models.values())).stats)
    assert [
        len(results[0]["samples"]),
        len(results[1]["log_prob"]),
        len(results[2]["samples"]),
    ] == [2, 3, 1]
    assert stats == {"batches": 2, "rows": 6}  # the two sampling jobs ran together

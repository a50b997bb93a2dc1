"""POST /v1/models/{name}/predict on real workers: the posterior predictive per row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from app.kinds.predictive.summaries import summarize_regression
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, worker_thread
from training import tiny_predictive

REGRESSION = "/v1/models/tiny-regression/predict"
CLASSIFICATION = "/v1/models/tiny-classifier/predict"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predictive")
    return {
        "regression": tiny_predictive.build(root / "reg", "regression", "tiny-regression"),
        "classification": tiny_predictive.build(root / "cls", "classification", "tiny-classifier"),
    }


@pytest.fixture
def served(settings: Settings, model_dirs: dict[str, Path]) -> Settings:
    for directory in model_dirs.values():
        register_directory(settings, directory, "production")
    return settings


def test_regression_rows_get_mixture_summaries(
    served: Settings, model_dirs: dict[str, Path]
) -> None:
    rows = [[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]]
    with worker_thread(served), live_api(served) as client:
        response = client.post(REGRESSION, json={"inputs": rows, "interval": [0.5, 0.9]})
        named = client.post(REGRESSION, json={"inputs": [{"a": 0.1, "b": -0.2, "c": 0.3}]})
        one = client.post(REGRESSION, json={"inputs": rows, "draws": 1, "return_draws": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["draws_total"], body["draws"], body["method"]) == (8, 8, "seeded")
    session = ort.InferenceSession(str(model_dirs["regression"] / "model.onnx"))
    mean, var = session.run(["mean", "var"], {"x": np.asarray(rows, dtype=np.float32)})
    expected = summarize_regression(mean.transpose(1, 0, 2), var.transpose(1, 0, 2), [0.5, 0.9])
    first = body["predictions"][0]
    assert first["mean"] == pytest.approx(expected.mean[0, 0])
    assert first["std"] == pytest.approx(expected.std[0, 0])
    assert first["epistemic_std"] > 0
    assert first["aleatoric_std"] > 0
    assert first["interval"]["0.9"] == pytest.approx(expected.interval[1, 0, 0].tolist())
    inner, outer = first["interval"]["0.5"], first["interval"]["0.9"]
    assert outer[0] < inner[0] < first["mean"] < inner[1] < outer[1]
    assert named.json()["predictions"][0]["mean"] == pytest.approx(first["mean"])
    single = one.json()["predictions"][1]
    assert single["epistemic_std"] == 0.0
    assert single["draws"]["mean"] == [[pytest.approx(float(mean[0, 1, 0]))]]


def test_classification_rows_get_entropy_and_information(served: Settings) -> None:
    rows = [[1.0, 2.0, 3.0, 4.0], [16.0, 0.0, 16.0, 0.0]]
    with worker_thread(served), live_api(served) as client:
        body = client.post(CLASSIFICATION, json={"inputs": rows}).json()
    for row in body["predictions"]:
        assert sum(row["probs"]) == pytest.approx(1.0)
        assert row["class"] in ("red", "green", "blue")
        assert row["max_prob"] == max(row["probs"])
        assert row["mutual_information"] >= 0
        assert row["entropy"] == pytest.approx(row["expected_entropy"] + row["mutual_information"])
    assert body["prediction_id"] == body["job_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": [[1.0, 2.0]]}, "inputs.0"),
        ({"inputs": [[float("nan"), 1.0, 2.0]]}, "body.inputs"),
        ({"inputs": [[float("inf"), 1.0, 2.0]]}, "body.inputs"),
        ({"inputs": [[1.0, 1e300, 2.0]]}, "inputs.0"),  # beyond float32 (schemathesis)
        ({"inputs": [[1.0, 2.0, 3.0]] * 4097}, "body.inputs"),
        ({"inputs": []}, "body.inputs"),
        ({"inputs": [[1.0, 2.0, 3.0]], "interval": 0}, "body.interval"),
        ({"inputs": [[1.0, 2.0, 3.0]], "interval": [0.5, 1.0]}, "body.interval"),
        ({"inputs": [[1.0, 2.0, 3.0]], "draws": 0}, "body.draws"),
        ({"inputs": [[1.0, 2.0, 3.0]], "draws": 9}, "draws"),
        ({"inputs": [{"a": 1.0, "b": 2.0, "z": 3.0}]}, "inputs.0"),
    ],
)
def test_bad_predict_input_is_422(served: Settings, body: dict, field: str) -> None:  # type: ignore[type-arg]
    with live_api(served) as client:
        response = client.post(
            REGRESSION,
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"].startswith(field) for e in response.json()["errors"])


def test_endpoints_refuse_the_wrong_kind(served: Settings, tiny_dir: Path) -> None:
    register_directory(served, tiny_dir, "production")
    with live_api(served) as client:
        predict = client.post("/v1/models/tiny-sampler/predict", json={"inputs": [[1.0]]})
        sample = client.post("/v1/models/tiny-regression/sample", json={})
    assert predict.status_code == sample.status_code == 422
    assert "not a predictive model" in predict.json()["detail"]
    assert "not a sampler" in sample.json()["detail"]

"""Calibration feedback end to end: predict, feed back outcomes, read running calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.kinds.predictive.mixture import mixture_cdf
from app.queue import keys
from app.redis_conn import sync_client
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, worker_thread
from training import tiny_predictive

BASE = "/v1/models/tiny-regression"
CLS = "/v1/models/tiny-classifier"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("feedback")
    return [
        tiny_predictive.build(root / "reg", "regression", "tiny-regression"),
        tiny_predictive.build(root / "cls", "classification", "tiny-classifier"),
    ]


@pytest.fixture
def served(settings: Settings, model_dirs: list[Path]) -> Settings:
    for directory in model_dirs:
        register_directory(settings, directory, "production")
    return settings


def predict(client, url: str, rows: list[list[float]]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = client.post(f"{url}/predict", json={"inputs": rows, "return_draws": True})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def draw_from_predictive(prediction: dict, rng: np.random.Generator) -> list[float]:  # type: ignore[type-arg]
    """One outcome per row from the row's own predictive mixture: calibrated by construction."""
    values = []
    for row in prediction["predictions"]:
        means = np.array(row["draws"]["mean"])[:, 0]
        stds = np.sqrt(np.array(row["draws"]["var"])[:, 0])
        s = rng.integers(len(means))
        values.append(float(rng.normal(means[s], stds[s])))
    return values


def test_regression_feedback_scores_rows_and_tracks_calibration(served: Settings) -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(400, 3)).round(3).tolist()
    with worker_thread(served), live_api(served) as client:
        prediction = predict(client, BASE, rows)
        values = draw_from_predictive(prediction, rng)
        observations = [
            {"prediction_id": prediction["prediction_id"], "row": i, "value": v}
            for i, v in enumerate(values)
        ]
        stored = client.post(f"{BASE}/feedback", json={"observations": observations}).json()
        again = client.post(f"{BASE}/feedback", json={"observations": observations[:5]}).json()
        calibration = client.get(f"{BASE}/calibration").json()
        metrics = client.get("/metrics").text
    assert (stored["accepted"], stored["duplicates"]) == (400, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    first = prediction["predictions"][0]["draws"]
    expected_pit = mixture_cdf(
        np.array(values[0]), np.array(first["mean"])[:, 0], np.sqrt(np.array(first["var"])[:, 0])
    )
    assert stored["scores"][0]["pit"] == pytest.approx(float(expected_pit), abs=1e-6)
    assert calibration["count"] == 400
    assert calibration["warnings"] == []
    for level, coverage in calibration["coverage"].items():
        assert coverage["ok"], (level, coverage)
    assert sum(calibration["pit_histogram"]) == 400
    assert 'hanmo_calibration_coverage{level="0.9",model="tiny-regression",version="1"}' in metrics


def test_miscalibrated_outcomes_raise_a_coverage_warning(served: Settings) -> None:
    with worker_thread(served), live_api(served) as client:
        prediction = predict(client, BASE, [[0.0, 0.0, 0.0]] * 50)
        far = [
            {
                "prediction_id": prediction["prediction_id"],
                "row": i,
                "value": row["mean"] + 10 * row["std"],
            }
            for i, row in enumerate(prediction["predictions"])
        ]
        client.post(f"{BASE}/feedback", json={"observations": far})
        calibration = client.get(f"{BASE}/calibration", params={"version": 1}).json()
    assert calibration["coverage"]["0.9"]["observed"] == 0.0
    assert not calibration["coverage"]["0.9"]["ok"]
    assert any("coverage at 0.9" in w for w in calibration["warnings"])


def test_classification_feedback_by_class_name_or_index(served: Settings) -> None:
    with worker_thread(served), live_api(served) as client:
        prediction = predict(client, CLS, [[1.0, 2.0, 3.0, 4.0], [16.0, 0.0, 16.0, 0.0]])
        predicted = [row["class"] for row in prediction["predictions"]]
        stored = client.post(
            f"{CLS}/feedback",
            json={
                "observations": [
                    {"prediction_id": prediction["prediction_id"], "row": 0, "label": predicted[0]},
                    {"prediction_id": prediction["prediction_id"], "row": 1, "label": 2},
                ]
            },
        )
        calibration = client.get(f"{CLS}/calibration").json()
    assert stored.status_code == 200, stored.text
    assert calibration["count"] == 2
    assert calibration["ece"] is not None
    assert 0 <= calibration["ece"] <= 1
    assert calibration["accuracy"] == pytest.approx((1 + (predicted[1] == "blue")) / 2)


def test_bad_feedback_is_refused_and_changes_nothing(served: Settings) -> None:
    with worker_thread(served), live_api(served) as client:
        prediction = predict(client, BASE, [[0.0, 0.0, 0.0]] * 2)
        pid = prediction["prediction_id"]
        good = {"prediction_id": pid, "row": 0, "value": 20.0}
        cases = {
            "unknown": ({"prediction_id": "0" * 24, "row": 0, "value": 1.0}, 404),
            "row": ({"prediction_id": pid, "row": 2, "value": 1.0}, 422),
            "value": ({"prediction_id": pid, "row": 1}, 422),
            "label": ({"prediction_id": pid, "row": 1, "label": "red"}, 422),
        }
        answers = {
            name: client.post(f"{BASE}/feedback", json={"observations": [good, bad]})
            for name, (bad, _) in cases.items()
        }
        other_model = client.post(
            f"{CLS}/feedback", json={"observations": [{"prediction_id": pid, "row": 0, "label": 0}]}
        )
        count = client.get(f"{BASE}/calibration").json()["count"]
        redis = sync_client(served.redis_url)
        redis.delete(keys.job(pid), keys.result(pid))  # the retention ran out
        expired = client.post(f"{BASE}/feedback", json={"observations": [good]})
    for name, (_, status) in cases.items():
        assert answers[name].status_code == status, (name, answers[name].text)
        assert answers[name].headers["content-type"] == "application/problem+json"
    assert other_model.status_code == 404
    assert count == 0  # the good observation in each refused batch was not stored
    assert expired.status_code == 404


def test_predictions_are_kept_for_the_retention_period(served: Settings) -> None:
    with worker_thread(served), live_api(served) as client:
        prediction = predict(client, BASE, [[0.0, 0.0, 0.0]])
    ttl = sync_client(served.redis_url).ttl(keys.result(prediction["prediction_id"]))
    assert served.result_ttl_s < ttl <= served.prediction_retention_s

"""The sampling properties, on every sampler shipped in models/ (what `make up` serves):
the same request twice is byte-identical; sample i does not depend on n; a request's result
does not depend on what else was in its batch."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.services.registration import register_directory, shipped_model_dirs
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

SHIPPED = [versions[-1] for versions in shipped_model_dirs(ROOT / "models")]


def kind_of(directory: Path) -> str:
    return str(json.loads((directory / "card.json").read_text())["kind"])


SAMPLERS = [d for d in SHIPPED if kind_of(d) == "sampler"]
PREDICTIVE = [d for d in SHIPPED if kind_of(d) == "predictive"]
AUTOENCODERS = [d for d in SHIPPED if kind_of(d) == "autoencoder"]


def request_for(card: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"format": "array", **extra}
    if card["signature"].get("num_labels"):
        body["labels"] = 3
    return body


@pytest.mark.parametrize("directory", SAMPLERS, ids=[d.parent.name for d in SAMPLERS])
def test_shipped_sampler_is_reproducible(settings: Settings, directory: Path) -> None:
    card = json.loads((directory / "card.json").read_text())
    register_directory(settings, directory, "production")
    url = f"/v1/models/{card['name']}/sample"
    with worker_thread(settings), live_api(settings) as client:
        first = client.post(url, json=request_for(card, n=8, seed=21, format="png"))
        again = client.post(url, json=request_for(card, n=8, seed=21, format="png"))
        small = client.post(url, json=request_for(card, n=8, seed=5)).json()
        large = client.post(url, json=request_for(card, n=64, seed=5)).json()
        with ThreadPoolExecutor(16) as pool:
            others = [
                pool.submit(client.post, url, json=request_for(card, n=4, seed=s))
                for s in range(1000, 1050)
            ]
            batched = pool.submit(client.post, url, json=request_for(card, n=8, seed=5))
            assert all(f.result().status_code == 200 for f in others)
            batched_body = batched.result().json()
    assert first.status_code == 200, first.text
    assert first.json()["samples"] == again.json()["samples"]
    assert small["samples"] == large["samples"][:8]
    assert batched_body["samples"] == small["samples"]


CONCRETE_ROW = [300.0, 50.0, 50.0, 180.0, 5.0, 950.0, 750.0, 28.0]  # kg/m3 ..., age in days


def regression_case(name: str) -> tuple[list[float], tuple[float, float]]:
    """A real input row for a shipped regression model, and its target's plausible range."""
    if name.startswith("concrete"):
        return CONCRETE_ROW, (5.0, 90.0)  # MPa
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes(scaled=False)
    return diabetes.data[0].tolist(), (25.0, 346.0)  # the progression score's range


@pytest.mark.parametrize("directory", PREDICTIVE, ids=[d.parent.name for d in PREDICTIVE])
def test_shipped_predictive_model_answers_with_uncertainty(
    settings: Settings, directory: Path
) -> None:
    from sklearn.datasets import load_digits

    card = json.loads((directory / "card.json").read_text())
    register_directory(settings, directory, "production")
    digits = load_digits()
    regression = card["signature"]["task"] == "regression"
    row_in, (low, high) = regression_case(card["name"]) if regression else ([], (0.0, 0.0))
    rows = [row_in] if regression else digits.data[:20].tolist()
    with worker_thread(settings), live_api(settings) as client:
        response = client.post(
            f"/v1/models/{card['name']}/predict", json={"inputs": rows, "interval": [0.5, 0.9]}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["draws_total"] == card["signature"]["draws"]
    predictions = body["predictions"]
    if regression:
        row = predictions[0]
        assert low < row["mean"] < high
        assert row["interval"]["0.9"][0] < row["interval"]["0.5"][0] < row["mean"]
        assert row["epistemic_std"] > 0
        assert row["aleatoric_std"] > 0
    else:
        labels = [p["label"] for p in predictions]
        assert sum(int(a == b) for a, b in zip(labels, digits.target[:20], strict=True)) >= 19
        assert all(p["mutual_information"] >= 0 for p in predictions)


@pytest.mark.parametrize("directory", AUTOENCODERS, ids=[d.parent.name for d in AUTOENCODERS])
def test_shipped_autoencoder_scores_inverted_digits_as_anomalies(
    settings: Settings, directory: Path
) -> None:
    from sklearn.datasets import load_digits

    card = json.loads((directory / "card.json").read_text())
    register_directory(settings, directory, "production")
    digits = load_digits().data[:10].astype(int)
    rows = [*digits.tolist(), *(16 - digits).tolist()]
    with worker_thread(settings), live_api(settings) as client:
        response = client.post(f"/v1/models/{card['name']}/reconstruct", json={"inputs": rows})
    assert response.status_code == 200, response.text
    scores = [r["anomaly_score"] for r in response.json()["reconstructions"]]
    assert max(scores[:10]) < min(scores[10:])

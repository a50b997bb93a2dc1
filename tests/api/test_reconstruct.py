"""POST /v1/models/{name}/reconstruct on a real worker, Redis and ONNX Runtime, with the shipped
bae-digits: per row the reconstruction, per-pixel epistemic and aleatoric std, log p(x) and the
anomaly score agree with the graph's draws summarised here; PNGs in and heatmaps out; bad input
is a problem document."""

from __future__ import annotations

import base64
import io

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from app.images import png_bytes, to_uint8
from app.kinds.autoencoder.response import summarize
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

BAE = ROOT / "models" / "bae-digits" / "1"
OTHER = ROOT / "models" / "digits-sghmc" / "1"  # a predictive model
URL = "/v1/models/bae-digits/reconstruct"


@pytest.fixture
def served(settings: Settings) -> Settings:
    register_directory(settings, BAE, "production")
    register_directory(settings, OTHER, "production")
    return settings


def png_of(levels: np.ndarray) -> str:
    return base64.b64encode(png_bytes(to_uint8(levels.reshape(8, 8) / 16))).decode()


def test_rows_and_pngs_get_uncertainty_and_scores(served: Settings) -> None:
    digits = load_digits().data[:3]
    rows = np.concatenate([digits, 16 - digits[:1]])  # three digits and one inverted
    with worker_thread(served), live_api(served) as client:
        response = client.post(URL, json={"inputs": rows.astype(int).tolist(), "heatmaps": True})
        pngs = client.post(URL, json={"images": [png_of(r) for r in rows]})
        few = client.post(URL, json={"inputs": rows[:1].astype(int).tolist(), "draws": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    session = ort.InferenceSession(str(BAE / "model.onnx"))
    mean, var, log_lik = session.run(None, {"x": rows.astype(np.float32)})
    want = summarize(mean.transpose(1, 0, 2), var.transpose(1, 0, 2), log_lik.T)
    assert body["draws"] == body["draws_total"] == mean.shape[0]
    assert (body["levels"], body["image_shape"]) == (17, [8, 8])
    for i, row in enumerate(body["reconstructions"]):
        assert row["reconstruction"] == pytest.approx(want["reconstruction"][i].tolist(), abs=1e-4)
        assert row["epistemic_std"] == pytest.approx(want["epistemic_std"][i].tolist(), abs=1e-4)
        assert row["aleatoric_std"] == pytest.approx(want["aleatoric_std"][i].tolist(), abs=1e-4)
        assert row["log_likelihood"] == pytest.approx(float(want["log_likelihood"][i]), rel=1e-5)
        assert row["anomaly_score"] == -row["log_likelihood"]
        assert max(row["epistemic_std"]) > 0
        image = Image.open(io.BytesIO(base64.b64decode(row["heatmaps"]["epistemic_std"])))
        assert image.size == (8, 8)
    scores = [row["anomaly_score"] for row in body["reconstructions"]]
    assert scores[3] > max(scores[:3])  # the inverted digit is the anomaly
    digit = np.array(body["reconstructions"][0]["reconstruction"])
    assert np.corrcoef(digit, rows[0])[0, 1] > 0.8  # it reconstructs the digit
    assert pngs.status_code == 200, pngs.text
    assert [r["anomaly_score"] for r in pngs.json()["reconstructions"]] == pytest.approx(scores)
    single = few.json()["reconstructions"][0]
    assert few.json()["draws"] == 1
    assert max(single["epistemic_std"]) == 0.0
    assert "heatmaps" not in single or single["heatmaps"] is None


def test_bad_input_is_a_problem_document(served: Settings) -> None:
    row = [0] * 64
    cases = {
        "wrong width": (URL, {"inputs": [[0] * 63]}, 422, "the model takes 64"),
        "level too high": (URL, {"inputs": [[*row[:-1], 17]]}, 422, "levels are 0..16"),
        "negative level": (URL, {"inputs": [[*row[:-1], -1]]}, 422, ""),
        "float level": (URL, {"inputs": [[*row[:-1], 0.5]]}, 422, ""),
        "too many rows": (URL, {"inputs": [row] * 257}, 422, ""),
        "no rows": (URL, {"inputs": []}, 422, ""),
        "rows and images": (URL, {"inputs": [row], "images": [png_of(np.zeros(64))]}, 422, ""),
        "neither": (URL, {}, 422, "exactly one"),
        "too many draws": (URL, {"inputs": [row], "draws": 10_000}, 422, "at most S="),
        "png of another size": (
            URL,
            {"images": [base64.b64encode(png_bytes(np.zeros((8, 9), np.uint8))).decode()]},
            422,
            "the model takes 8x8",
        ),
        "not base64": (URL, {"images": ["not base64!"]}, 422, "image 0"),
        "not an image": (URL, {"images": [base64.b64encode(b"GIF89 no").decode()]}, 422, ""),
        "a predictive model": (
            "/v1/models/digits-sghmc/reconstruct",
            {"inputs": [row]},
            422,
            "not a Bayesian autoencoder",
        ),
        "no such model": ("/v1/models/no-such-model/reconstruct", {"inputs": [row]}, 404, ""),
    }
    with worker_thread(served), live_api(served) as client:
        listed = client.get("/v1/models")  # the model list names the kind (it was a 500 once)
        for label, (url, body, status, text) in cases.items():
            response = client.post(url, json=body)
            assert response.status_code == status, (label, response.text)
            assert response.headers["content-type"].startswith("application/problem+json"), label
            assert text in response.text, (label, response.text)
    assert listed.status_code == 200, listed.text
    assert {m["name"]: m["kind"] for m in listed.json()["models"]}["bae-digits"] == "autoencoder"

"""POST /v1/models/{name}/sample on an autoencoder (the shipped bae-digits and its decode graph)
through a real worker, Redis and ONNX Runtime: z from app/noise.py keyed by (seed, i), each
sample's mean image over the decoder draws and its per-pixel epistemic and aleatoric std equal
a NumPy + ONNX Runtime reference on the same z, byte-identical across calls and batches; the PNG
sheet; bad requests and an autoencoder without a decode graph are problem documents."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hanmo_client.schemas import SampleResponse
from PIL import Image

from app.images import grid, png_bytes, to_uint8
from app.noise import standard_normal_rows
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

BAE = ROOT / "models" / "bae-digits" / "1"
SAMPLER = ROOT / "models" / "dcgan-digits" / "1"
URL = "/v1/models/bae-digits/sample"


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Settings:
    """bae-digits, a sampler, and bae-digits' card without its decode graph (`bae-nodecode`)."""
    register_directory(settings, BAE, "production")
    register_directory(settings, SAMPLER, "production")
    old = tmp_path / "bae-nodecode"
    old.mkdir()
    shutil.copy(BAE / "model.onnx", old / "model.onnx")
    card = json.loads((BAE / "card.json").read_text())
    del card["graphs"]["decode"]
    card["name"] = "bae-nodecode"
    (old / "card.json").write_text(json.dumps(card))
    register_directory(settings, old, "production")
    return settings


def reference(seed: int, n: int, draws: int | None = None) -> dict[str, np.ndarray]:
    """The decode graph on the same z, summarised over its draws in NumPy: [n, 8, 8] each."""
    z = standard_normal_rows(seed, n, 8)
    mean, var = ort.InferenceSession(str(BAE / "decode.onnx")).run(["mean", "var"], {"z": z})
    mean, var = mean[:draws].astype(np.float64), var[:draws].astype(np.float64)
    return {
        "samples": mean.mean(0).reshape(n, 8, 8),
        "epistemic_std": mean.std(0).reshape(n, 8, 8),
        "aleatoric_std": np.sqrt(var.mean(0)).reshape(n, 8, 8),
    }


def test_seeded_samples_are_reproducible_and_equal_the_reference(served: Settings) -> None:
    ask = {"seed": 7, "n": 4, "format": "array"}
    with worker_thread(served), live_api(served) as client:
        first = client.post(URL, json=ask)
        again = client.post(URL, json=ask)
        alone = client.post(URL, json={**ask, "n": 1})
        one_draw = client.post(URL, json={**ask, "draws": 1})
        pngs = client.post(URL, json={"seed": 7, "n": 4})
        sheet = client.post(URL, json={"seed": 7, "n": 4}, headers={"Accept": "image/png"})
        versions = client.get("/v1/models/bae-digits").json()["versions"]
    assert first.status_code == 200, first.text
    body = first.json()
    assert {k: v for k, v in again.json().items() if k != "job_id"} == {
        k: v for k, v in body.items() if k != "job_id"
    }
    card = json.loads((BAE / "card.json").read_text())
    assert (body["seed"], body["n"], body["version"], body["sample_shape"]) == (7, 4, 1, [8, 8])
    assert body["sha256"] == versions[0]["sha256"]
    assert body["draws"] == body["draws_total"] == card["signature"]["draws"]
    want = reference(7, 4)
    for field in ("samples", "epistemic_std", "aleatoric_std"):
        np.testing.assert_allclose(np.array(body[field]), want[field], rtol=0, atol=1e-5)
        assert alone.json()[field][0] == body[field][0]  # a row alone equals it in a batch
    assert np.array(body["epistemic_std"]).min() > 0  # the draws differ everywhere
    assert float(np.std(np.array(body["samples"]).reshape(4, -1), axis=0).max()) > 1.0
    parsed = SampleResponse.model_validate(body)  # the client's schema keeps the new fields
    assert parsed.epistemic_std == body["epistemic_std"]
    assert parsed.draws_total == 48
    few = one_draw.json()
    assert few["draws"] == 1
    assert np.array(few["epistemic_std"]).max() == 0.0
    np.testing.assert_allclose(few["samples"], reference(7, 4, 1)["samples"], atol=1e-5)
    assert pngs.status_code == 200, pngs.text
    images = [Image.open(io.BytesIO(base64.b64decode(p))) for p in pngs.json()["samples"]]
    assert [image.size for image in images] == [(32, 32)] * 4  # display_scale 4
    assert sheet.headers["content-type"] == "image/png"
    levels = to_uint8(want["samples"] / 16).repeat(4, axis=1).repeat(4, axis=2)
    assert sheet.content == png_bytes(grid(levels))


def test_bad_sample_requests_are_problem_documents(served: Settings) -> None:
    cases = {
        "n zero": (URL, {"n": 0}, "n"),
        "n past the bound": (URL, {"n": 1025}, "n"),
        "too many draws": (URL, {"draws": 49}, "at most S=48"),
        "no draws": (URL, {"draws": 0}, "draws"),
        "labels": (URL, {"labels": 3}, "omit `labels`"),
        "prefix": (URL, {"prefix": [[0]]}, "omit `prefix`"),
        "draws on a sampler": ("/v1/models/dcgan-digits/sample", {"draws": 2}, "autoencoder"),
        "no decode graph": (
            "/v1/models/bae-nodecode/sample",
            {"n": 2},
            "without a decode graph",
        ),
    }
    with worker_thread(served), live_api(served) as client:
        for label, (url, body, text) in cases.items():
            response = client.post(url, json=body)
            assert response.status_code == 422, (label, response.text)
            assert response.headers["content-type"].startswith("application/problem+json"), label
            assert text in response.text, (label, response.text)
        still = client.post("/v1/models/bae-nodecode/reconstruct", json={"inputs": [[0] * 64]})
    assert still.status_code == 200, still.text  # an old card still reconstructs

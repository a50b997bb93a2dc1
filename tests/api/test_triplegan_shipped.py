"""The shipped Triple-GAN models (models/triplegan-digits/1, models/triplegan-digits-classifier/1)
served through the `sampler` and `predictive` kinds unchanged: HTTP -> Redis stream -> worker ->
ONNX Runtime -> HTTP. Seeded conditional samples are the graph on the api's own noise for that
seed, the classifier's probabilities are the graph's softmax and its test accuracy through the
api is the card's; both directories pass the artifact check and are small."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch

from app.noise import standard_normal_rows
from app.registry.cards import read_card
from app.runtime.models import check_artifact
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread
from training.generative import data

SAMPLER = ROOT / "models" / "triplegan-digits" / "1"
CLASSIFIER = ROOT / "models" / "triplegan-digits-classifier" / "1"


def test_shipped_directories_pass_the_check_are_small_and_the_sampler_has_no_random_op() -> None:
    for directory in (SAMPLER, CLASSIFIER):
        assert (directory / "card.json").exists(), f"{directory} missing: make train-triplegan"
        card = read_card(directory)
        check_artifact(directory, card)
        assert card.command == "make train-triplegan"
        assert sum(f.stat().st_size for f in directory.iterdir()) < 25 * 2**20
    ops = {node.op_type for node in onnx.load(str(SAMPLER / "sample.onnx")).graph.node}
    assert not any(op.startswith("Random") or op == "Multinomial" for op in ops), ops
    compared = read_card(SAMPLER).metrics["compared"]
    assert {"cvae-digits", "dcgan-digits"} <= set(compared)


def test_shipped_models_serve_through_their_kinds(settings: Settings) -> None:
    register_directory(settings, SAMPLER, "production")
    register_directory(settings, CLASSIFIER, "production")
    digits = data.load_split()
    labels = [0, 1, 2, 7, 7, 9]
    body = {"n": 6, "seed": 7, "labels": labels, "format": "array"}
    with worker_thread(settings), live_api(settings) as client:
        first = client.post("/v1/models/triplegan-digits/sample", json=body)
        second = client.post("/v1/models/triplegan-digits/sample", json=body)
        predict = client.post(
            "/v1/models/triplegan-digits-classifier/predict",
            json={"inputs": digits.x_test.tolist()},
        )
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["samples"] == second.json()["samples"]
    served = np.array(first.json()["samples"], np.float32)
    sampler = ort.InferenceSession(str(SAMPLER / "sample.onnx"), providers=["CPUExecutionProvider"])
    z = standard_normal_rows(7, 6, int(read_card(SAMPLER).signature.z_dim))  # type: ignore[attr-defined]
    (direct,) = sampler.run(["x"], {"z": z, "label": np.array(labels, np.int64)})
    np.testing.assert_allclose(served, direct, rtol=0, atol=1e-6)
    assert predict.status_code == 200, predict.text
    rows = predict.json()["predictions"]
    probs = np.array([row["probs"] for row in rows])
    classifier = ort.InferenceSession(
        str(CLASSIFIER / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (logits,) = classifier.run(["logits"], {"x": digits.x_test})
    want = torch.softmax(torch.from_numpy(logits[0]).double(), -1).numpy()
    np.testing.assert_allclose(probs, want, rtol=1e-5, atol=1e-6)
    accuracy = float((probs.argmax(1) == digits.y_test).mean())
    card = read_card(CLASSIFIER).metrics["this_model"]
    assert round(accuracy, 4) == card["accuracy"]

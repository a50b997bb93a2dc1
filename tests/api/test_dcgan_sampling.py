"""The shipped DCGAN (models/dcgan-digits/1) served through the `sampler` kind unchanged:
HTTP -> Redis stream -> worker -> ONNX Runtime -> HTTP. Seeded samples are byte-identical,
and they are the graph's output on the api's own noise for that seed. The directory passes
the artifact check, is small, and its card compares it with the VAE and the flow."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from app.noise import standard_normal_rows
from app.registry.cards import read_card
from app.runtime.models import check_artifact
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, worker_thread

SHIPPED = ROOT / "models" / "dcgan-digits" / "1"


def test_dcgan_sample_same_seed_is_byte_identical_and_is_the_graph_on_the_seeds_noise(
    settings: Settings,
) -> None:
    register_directory(settings, SHIPPED, "production")
    body = {"n": 6, "seed": 7, "format": "array"}
    with worker_thread(settings), live_api(settings) as client:
        first = client.post("/v1/models/dcgan-digits/sample", json=body)
        second = client.post("/v1/models/dcgan-digits/sample", json=body)
        other = client.post("/v1/models/dcgan-digits/sample", json={**body, "seed": 8})
        sheet = client.post(
            "/v1/models/dcgan-digits/sample",
            json={"n": 4, "seed": 7},
            headers={"Accept": "image/png"},
        )
    assert first.status_code == second.status_code == other.status_code == 200, first.text
    assert first.json()["samples"] == second.json()["samples"]
    a = first.json()
    assert (a["model"], a["seed"]) == ("dcgan-digits", 7)
    assert a["samples"] != other.json()["samples"]
    served = np.array(a["samples"], np.float32)
    session = ort.InferenceSession(str(SHIPPED / "sample.onnx"), providers=["CPUExecutionProvider"])
    (direct,) = session.run(["x"], {"z": standard_normal_rows(7, 6, 32)})
    assert served.shape == (6, 8, 8)
    np.testing.assert_allclose(served, direct, rtol=0, atol=1e-6)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"] == "image/png"


def test_shipped_dcgan_passes_the_check_is_small_and_has_no_random_op() -> None:
    assert (SHIPPED / "card.json").exists(), f"{SHIPPED} missing: make train-dcgan"
    card = read_card(SHIPPED)
    check_artifact(SHIPPED, card)
    assert (card.kind, card.command) == ("sampler", "make train-dcgan")
    assert sum(f.stat().st_size for f in SHIPPED.iterdir()) < 25 * 2**20
    ops = {node.op_type for node in onnx.load(str(SHIPPED / "sample.onnx")).graph.node}
    assert not any(op.startswith("Random") or op == "Multinomial" for op in ops), ops
    compared = set(card.metrics["verdict"]["frechet_distance"])
    assert compared >= {"dcgan-digits", "vae-digits", "flow-digits"}

"""The shipped tiny sampler: reproducible from its card's command, ONNX Runtime matching
PyTorch, batch axis symbolic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from app.registry.cards import sha256_file
from tests.helpers import ROOT
from training import tiny_sampler

SHIPPED = ROOT / "models" / "tiny-sampler" / "1"


def test_rebuild_reproduces_the_shipped_bytes(tiny_dir: Path) -> None:
    card = json.loads((SHIPPED / "card.json").read_text())
    assert card["command"] == "python -m training.tiny_sampler models/tiny-sampler/1 --format onnx"
    assert sha256_file(tiny_dir / "model.onnx") == card["graphs"]["sample"]["sha256"]
    assert sha256_file(SHIPPED / "model.onnx") == card["graphs"]["sample"]["sha256"]


def test_onnx_runtime_matches_pytorch_with_a_symbolic_batch_axis(tiny_dir: Path) -> None:
    session = ort.InferenceSession(str(tiny_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert isinstance(session.get_inputs()[0].shape[0], str)  # symbolic, not fixed
    torch.manual_seed(0)
    module = tiny_sampler.TinyDecoder().eval()
    for rows in (1, 257):
        z = np.random.default_rng(rows).standard_normal((rows, 16)).astype(np.float32)
        (got,) = session.run(["x"], {"z": z})
        with torch.no_grad():
            want = module(torch.from_numpy(z)).numpy()
        assert got.shape == (rows, 28, 28)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

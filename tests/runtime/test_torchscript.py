"""A TorchScript sampler served end to end (torch imported lazily by the worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.noise import standard_normal_rows
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, worker_thread
from training import tiny_sampler

SAMPLE = "/v1/models/tiny-cond/sample"


@pytest.fixture(scope="module")
def torchscript_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sampler.build(
        tmp_path_factory.mktemp("ts") / "tiny-cond",
        name="tiny-cond",
        fmt="torchscript",
        num_labels=10,
    )


def test_torchscript_conditional_sampler_end_to_end(
    settings: Settings, torchscript_dir: Path
) -> None:
    register_directory(settings, torchscript_dir, "production")
    with worker_thread(settings), live_api(settings) as client:
        response = client.post(
            SAMPLE, json={"n": 3, "seed": 4, "labels": [1, 2, 3], "format": "array"}
        )
        bad_label = client.post(SAMPLE, json={"n": 1, "labels": 10})
        missing = client.post(SAMPLE, json={"n": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider"] == "torchscript:cpu"
    assert body["runtime"].startswith("torch ")
    module = torch.jit.load(str(torchscript_dir / "model.pt"))
    expected = (
        module(torch.from_numpy(standard_normal_rows(4, 3, 16)), torch.tensor([1, 2, 3]))
        .detach()
        .numpy()
    )
    np.testing.assert_allclose(
        np.array(body["samples"], dtype=np.float32), expected, rtol=1e-6, atol=1e-6
    )
    assert bad_label.status_code == 422
    assert "labels" in bad_label.json()["detail"]
    assert missing.status_code == 422
    assert "needs `labels`" in missing.json()["detail"]

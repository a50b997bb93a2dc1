"""A served model that gives NaN or Inf for some request answers that request with a problem
(500 `non-finite-output`), never with `null` samples or black pixels; other requests in the
same batch are answered as usual. The graph passes the upload check (finite on the check's
random noise) and goes NaN only on a latent code the client chooses: x = log(z + 10)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, save_sampler, worker_thread


def log_sampler(directory: Path) -> Path:
    ten = numpy_helper.from_array(np.array(10.0, np.float32), "ten")
    shape = numpy_helper.from_array(np.array([-1, 4, 4], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["z", "ten"], ["shifted"]),
            helper.make_node("Log", ["shifted"], ["flat"]),
            helper.make_node("Reshape", ["flat", "shape"], ["x"]),
        ],
        "log",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 4])],
        [ten, shape],
    )
    return save_sampler(graph, directory, "log-sampler", sample_shape=[4, 4], image=False)


def test_nan_output_is_a_problem_and_spares_the_rest_of_the_batch(
    settings: Settings, tmp_path: Path
) -> None:
    register_directory(settings, log_sampler(tmp_path / "log"), "production")
    url = "/v1/models/log-sampler/interpolate"
    bad = {"latents": [[-20.0] * 16, [-30.0] * 16], "steps": 2, "format": "array"}
    good = {"latents": [[0.5] * 16, [1.0] * 16], "steps": 2, "format": "array"}
    with worker_thread(settings), live_api(settings) as client:
        base = str(client.base_url)

        async def both() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                return list(await asyncio.gather(*(http.post(url, json=b) for b in (bad, good))))

        refused, answered = asyncio.run(both())
    assert refused.status_code == 500, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("non-finite-output")
    assert "NaN/Inf values in `x`" in problem["detail"]
    assert answered.status_code == 200, answered.text
    frames = np.asarray(answered.json()["frames"])
    assert np.isfinite(frames).all()
    assert frames.shape == (2, 4, 4)

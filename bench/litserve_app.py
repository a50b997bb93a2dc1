"""The peer: LitServe serving the same ONNX sampler as hanmo, for bench/peer.py. Runs in its
own venv (.venv-peer: litserve, onnxruntime, numpy) with the repository on PYTHONPATH, so it
draws the request's noise with hanmo's own counter-based generator and answers byte-for-byte
the samples hanmo answers (checked before any timing).

    python bench/litserve_app.py MODEL.onnx PORT MAX_BATCH BATCH_TIMEOUT_S THREADS

A request is hanmo's sample body (`{"n": 1, "seed": S, "format": "array"}`, n = 1 only); the
response is `{"samples": [<28x28 floats>]}`, JSON floats like hanmo's `format=array`.
"""

from __future__ import annotations

import sys

import litserve as ls
import numpy as np
import onnxruntime as ort

from app.noise import standard_normal_rows

Z_DIM = 16


class Sampler(ls.LitAPI):
    def __init__(self, model: str, threads: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.threads = threads

    def setup(self, device: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])

    def decode_request(self, request: dict) -> np.ndarray:  # type: ignore[type-arg]
        return standard_normal_rows(int(request["seed"]), 1, Z_DIM)[0]

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, z: np.ndarray) -> np.ndarray:
        if z.ndim == 1:
            z = z[None]
        return self.session.run(None, {"z": z.astype(np.float32)})[0]

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, x: np.ndarray) -> dict:  # type: ignore[type-arg]
        if x.ndim == 3:
            x = x[0]
        return {"samples": [x.tolist()]}


if __name__ == "__main__":
    model, port, max_batch, timeout, threads = sys.argv[1:6]
    api = Sampler(
        model,
        int(threads),
        max_batch_size=int(max_batch),
        batch_timeout=float(timeout),
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(port=int(port), log_level="warning", generate_client_file=False)

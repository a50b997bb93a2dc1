"""The api half of the `sampler` kind: request -> seeded noise, result -> response body."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import numpy as np

from app.api.schemas import SampleRequest
from app.errors import InvalidInput
from app.images import grid, png_bytes, to_uint8
from app.noise import MAX_SEED, standard_normal_rows
from app.queue.results import Outcome
from app.registry.service import ServedVersion


def prepare(
    served: ServedVersion, request: SampleRequest, max_rows: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Validate against the model's signature, make the noise; return inputs and job meta."""
    signature = served.card.get("signature", {})
    if request.n > max_rows:
        raise InvalidInput(f"n must be at most {max_rows}", errors=[{"field": "n"}])
    image = bool(signature.get("image", False))
    if request.format != "array" and not image:
        raise InvalidInput(
            f"model {served.model!r} makes arrays, not images: use format=array",
            errors=[{"field": "format"}],
        )
    labels = _labels(signature, request)
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    z = standard_normal_rows(seed, request.n, int(signature["z_dim"]))
    if request.temperature != 1.0:
        z *= np.float32(request.temperature)
    inputs = {"z": z}
    if labels is not None:
        inputs["label"] = np.asarray(labels, dtype=np.int64)
    meta = {
        "kind": "sampler",
        "model": served.model,
        "version": served.version,
        "alias": None if request.version else (request.alias or "production"),
        "sha256": served.sha256,
        "seed": seed,
        "n": request.n,
        "temperature": request.temperature,
        "labels": labels,
        "format": request.format,
        "sample_shape": list(signature.get("sample_shape", [])),
    }
    return inputs, meta


def _labels(signature: dict[str, Any], request: SampleRequest) -> list[int] | None:
    classes = int(signature.get("num_labels") or 0)
    if request.labels is None:
        if classes:
            raise InvalidInput(
                "this conditional model needs `labels`", errors=[{"field": "labels"}]
            )
        return None
    if not classes:
        raise InvalidInput(
            "this model is unconditional: omit `labels`", errors=[{"field": "labels"}]
        )
    labels = [request.labels] * request.n if isinstance(request.labels, int) else request.labels
    if len(labels) != request.n:
        raise InvalidInput(
            f"give one label for all or exactly n={request.n} labels", errors=[{"field": "labels"}]
        )
    if any(not 0 <= label < classes for label in labels):
        raise InvalidInput(f"labels must be in [0, {classes - 1}]", errors=[{"field": "labels"}])
    return labels


def render(meta: dict[str, Any], job_id: str, outcome: Outcome) -> dict[str, Any]:
    """The JSON body for a finished sampling job."""
    assert outcome.tensors is not None
    x = outcome.tensors["x"]
    body: dict[str, Any] = {
        "job_id": job_id,
        **{
            k: meta[k]
            for k in (
                "model",
                "version",
                "alias",
                "sha256",
                "seed",
                "n",
                "temperature",
                "labels",
                "format",
                "sample_shape",
            )
        },
        "runtime": outcome.info.get("runtime", ""),
        "provider": outcome.info.get("provider", ""),
        "deterministic": outcome.info.get("provider", "").startswith(("CPU", "torchscript:cpu")),
        "samples": None,
        "grid": None,
    }
    if meta["format"] == "array":
        body["samples"] = x.tolist()
    elif meta["format"] == "png":
        body["samples"] = [_b64(png_bytes(to_uint8(row))) for row in x]
    else:
        body["grid"] = _b64(grid_png(x))
    return body


def grid_png(x: np.ndarray) -> bytes:
    """All samples of a result as one PNG sheet."""
    images = to_uint8(x).reshape(x.shape[0], *x.shape[-2:])
    return png_bytes(grid(images))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

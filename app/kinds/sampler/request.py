"""The request side of the `sampler` kind: requests become job inputs (seeded noise, latent
paths, rows to score) and a JobMeta. Pure: no web framework here."""

from __future__ import annotations

import math
import secrets
from typing import Any

import numpy as np
from hanmo_client.schemas import MAX_SEED, InterpolateRequest, LogProbRequest, SampleRequest

from app.errors import InvalidInput
from app.kinds.spec import Inputs, JobMeta, Served
from app.noise import standard_normal_rows


def _meta(served: Served, op: str, request: Any, **fields: Any) -> JobMeta:
    image = bool(_signature(served).get("image"))
    return JobMeta.of(served, op, request, image=image, **fields)


def _shown(signature: dict[str, Any]) -> dict[str, Any]:
    """How the response side draws images: one sample's shape and the display upscaling."""
    return {
        "sample_shape": list(signature.get("sample_shape", [])),
        "display_scale": int(signature.get("display_scale", 1)),
    }


def _signature(served: Served) -> dict[str, Any]:
    signature: dict[str, Any] = served.card.get("signature", {})
    return signature


def _check_image_format(served: Served, fmt: str) -> None:
    if fmt != "array" and not _signature(served).get("image"):
        raise InvalidInput(
            f"model {served.model!r} makes arrays, not images: use format=array",
            errors=[{"field": "format"}],
        )


# -- sample ----------------------------------------------------------------------------------


def prepare(served: Served, request: SampleRequest, max_rows: int) -> tuple[Inputs, JobMeta]:
    """Validate against the model's signature, make the noise; return inputs and job meta."""
    signature = _signature(served)
    labels = _checked_sample(served, request, max_rows)
    seed, z = seeded_noise(request, int(signature["z_dim"]))
    return _sample_job(served, request, z, labels, seed=seed)


def seeded_noise(request: SampleRequest, dim: int) -> tuple[int, np.ndarray]:
    """The request's seed (chosen when absent) and its noise z [n, dim]: row i from (seed, i)
    alone, scaled by the temperature."""
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    z = standard_normal_rows(seed, request.n, dim)
    if request.temperature != 1.0:
        z *= np.float32(request.temperature)
    return seed, z


def prepare_noise(
    served: Served, request: SampleRequest, z: np.ndarray, max_rows: int
) -> tuple[Inputs, JobMeta]:
    """A sample job on noise the caller gives (`z` [n, z_dim], used as is: no seed, no
    temperature), checked like `prepare`'s; the Open Inference Protocol's explicit `z`."""
    labels = _checked_sample(served, request, max_rows)
    z_dim = int(_signature(served)["z_dim"])
    if z.ndim != 2 or z.shape != (request.n, z_dim):
        raise InvalidInput(f"z must be [n, {z_dim}], is {list(z.shape)}", errors=[{"field": "z"}])
    if not np.isfinite(z).all():
        raise InvalidInput("z must be finite", errors=[{"field": "z"}])
    return _sample_job(served, request, z.astype(np.float32, copy=False), labels)


def _checked_sample(served: Served, request: SampleRequest, max_rows: int) -> list[int] | None:
    """A sample request's rows and format checked against the model; its labels, one per row."""
    if request.n > max_rows:
        raise InvalidInput(f"n must be at most {max_rows}", errors=[{"field": "n"}])
    _check_image_format(served, request.format)
    return _labels(_signature(served), request.labels, request.n)


def _sample_job(
    served: Served, request: SampleRequest, z: np.ndarray, labels: list[int] | None, **seed: int
) -> tuple[Inputs, JobMeta]:
    inputs = {"z": z}
    if labels is not None:
        inputs["label"] = np.asarray(labels, dtype=np.int64)
    meta = _meta(
        served,
        "sample",
        request,
        **seed,
        n=request.n,
        temperature=request.temperature,
        labels=labels,
        format=request.format,
        **_shown(_signature(served)),
    )
    return inputs, meta


def _labels(signature: dict[str, Any], given: int | list[int] | None, n: int) -> list[int] | None:
    classes = int(signature.get("num_labels") or 0)
    if given is None:
        if classes:
            raise InvalidInput(
                "this conditional model needs `labels`", errors=[{"field": "labels"}]
            )
        return None
    if not classes:
        raise InvalidInput(
            "this model is unconditional: omit `labels`", errors=[{"field": "labels"}]
        )
    labels = [given] * n if isinstance(given, int) else given
    if len(labels) != n:
        raise InvalidInput(
            f"give one label for all or exactly n={n} labels", errors=[{"field": "labels"}]
        )
    if any(not 0 <= label < classes for label in labels):
        raise InvalidInput(f"labels must be in [0, {classes - 1}]", errors=[{"field": "labels"}])
    return labels


# -- interpolate -----------------------------------------------------------------------------


def prepare_interpolation(served: Served, request: InterpolateRequest) -> tuple[Inputs, JobMeta]:
    """Latent codes along a path between two seeds' noise (sample 0 of each) or two codes."""
    signature = _signature(served)
    _check_image_format(served, request.format)
    ends = _ends(int(signature["z_dim"]), request)
    t = np.linspace(0.0, 1.0, request.steps)
    path = slerp(ends[0], ends[1], t) if request.method == "slerp" else linear(ends[0], ends[1], t)
    inputs: Inputs = {"z": path.astype(np.float32)}
    labels = _labels(signature, request.labels, request.steps)
    if labels is not None:
        inputs["label"] = np.asarray(labels, dtype=np.int64)
    meta = _meta(
        served,
        "interpolate",
        request,
        seeds=request.seeds,
        steps=request.steps,
        method=request.method,
        labels=request.labels,
        temperature=request.temperature,
        format=request.format,
        **_shown(signature),
    )
    return inputs, meta


def _ends(z_dim: int, request: InterpolateRequest) -> np.ndarray:
    if (request.seeds is None) == (request.latents is None):
        raise InvalidInput(
            "give exactly one of `seeds` or `latents`",
            errors=[{"field": "seeds"}, {"field": "latents"}],
        )
    if request.seeds is not None:
        ends = np.stack([standard_normal_rows(s, 1, z_dim)[0] for s in request.seeds])
        return ends.astype(np.float64) * request.temperature
    assert request.latents is not None
    if any(len(code) != z_dim for code in request.latents):
        raise InvalidInput(f"each latent code needs {z_dim} values", errors=[{"field": "latents"}])
    return np.asarray(request.latents, dtype=np.float64)


def linear(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    path: np.ndarray = (1.0 - t)[:, None] * a + t[:, None] * b
    return path


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (the path a Gaussian prior's typical set follows); the ends
    are exactly a and b; nearly parallel codes fall back to the straight line."""
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = math.acos(float(np.clip(cos, -1.0, 1.0)))
    if math.sin(omega) < 1e-6:
        return linear(a, b, t)
    wa = np.sin((1.0 - t) * omega) / math.sin(omega)
    wb = np.sin(t * omega) / math.sin(omega)
    path: np.ndarray = wa[:, None] * a + wb[:, None] * b
    path[0], path[-1] = a, b
    return path


# -- log-prob --------------------------------------------------------------------------------


def prepare_log_prob(served: Served, request: LogProbRequest) -> tuple[Inputs, JobMeta]:
    """Rows to score under the model's density, checked against its width and value range."""
    spec = _signature(served).get("log_prob")
    if not spec:
        raise InvalidInput(f"model {served.model!r} exports no log_prob graph")
    width, levels = int(spec["input_dim"]), spec.get("levels")
    if any(len(row) != width for row in request.rows):
        raise InvalidInput(f"each row needs {width} values", errors=[{"field": "rows"}])
    x = np.asarray(request.rows, dtype=np.float32)
    if levels is not None and (x.min() < 0 or x.max() > int(levels) - 1):
        raise InvalidInput(
            f"values must be pixel levels in [0, {int(levels) - 1}]", errors=[{"field": "rows"}]
        )
    meta = _meta(served, "log_prob", request, n=len(request.rows), input_dim=width, levels=levels)
    return {"x": x}, meta

"""The api half of the `sampler` kind: requests become job inputs (seeded noise, latent paths,
rows to score) and finished jobs become response bodies. Pure: no web framework here."""

from __future__ import annotations

import base64
import io
import math
import secrets
from typing import Any

import numpy as np
from hanmo_client.schemas import MAX_SEED, InterpolateRequest, LogProbRequest, SampleRequest
from PIL import Image

from app.errors import InvalidInput
from app.images import grid, png_bytes, to_uint8
from app.noise import standard_normal_rows
from app.queue.results import Outcome
from app.registry.service import ServedVersion

Inputs = dict[str, np.ndarray]
Raw = tuple[bytes, str]  # body, media type
HIDDEN_META = ("kind", "display_scale", "image")


def base_meta(
    served: ServedVersion, op: str, version_pinned: bool, alias: str | None
) -> dict[str, Any]:
    return {
        "kind": "sampler",
        "op": op,
        "model": served.model,
        "version": served.version,
        "alias": None if version_pinned else (alias or "production"),
        "sha256": served.sha256,
        "image": bool(_signature(served).get("image")),
    }


def _signature(served: ServedVersion) -> dict[str, Any]:
    signature: dict[str, Any] = served.card.get("signature", {})
    return signature


def _check_image_format(served: ServedVersion, fmt: str) -> None:
    if fmt != "array" and not _signature(served).get("image"):
        raise InvalidInput(
            f"model {served.model!r} makes arrays, not images: use format=array",
            errors=[{"field": "format"}],
        )


# -- sample ----------------------------------------------------------------------------------


def prepare(
    served: ServedVersion, request: SampleRequest, max_rows: int
) -> tuple[Inputs, dict[str, Any]]:
    """Validate against the model's signature, make the noise; return inputs and job meta."""
    signature = _signature(served)
    if request.n > max_rows:
        raise InvalidInput(f"n must be at most {max_rows}", errors=[{"field": "n"}])
    _check_image_format(served, request.format)
    labels = _labels(signature, request.labels, request.n)
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    z = standard_normal_rows(seed, request.n, int(signature["z_dim"]))
    if request.temperature != 1.0:
        z *= np.float32(request.temperature)
    inputs = {"z": z}
    if labels is not None:
        inputs["label"] = np.asarray(labels, dtype=np.int64)
    meta = base_meta(served, "sample", request.version is not None, request.alias)
    meta.update(
        seed=seed,
        n=request.n,
        temperature=request.temperature,
        labels=labels,
        format=request.format,
        sample_shape=list(signature.get("sample_shape", [])),
        display_scale=int(signature.get("display_scale", 1)),
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


def prepare_interpolation(
    served: ServedVersion, request: InterpolateRequest
) -> tuple[Inputs, dict[str, Any]]:
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
    meta = base_meta(served, "interpolate", request.version is not None, request.alias)
    meta.update(
        seeds=request.seeds,
        steps=request.steps,
        method=request.method,
        labels=request.labels,
        temperature=request.temperature,
        format=request.format,
        sample_shape=list(signature.get("sample_shape", [])),
        display_scale=int(signature.get("display_scale", 1)),
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


def prepare_log_prob(
    served: ServedVersion, request: LogProbRequest
) -> tuple[Inputs, dict[str, Any]]:
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
    meta = base_meta(served, "log_prob", request.version is not None, request.alias)
    meta.update(n=len(request.rows), input_dim=width, levels=levels)
    return {"x": x}, meta


# -- rendering -------------------------------------------------------------------------------


def render(
    meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> dict[str, Any] | Raw:
    """The JSON body (or raw image, when the client accepts one) for a finished job."""
    assert outcome.tensors is not None
    body: dict[str, Any] = {
        "job_id": job_id,
        **{k: v for k, v in meta.items() if k not in HIDDEN_META},
    }
    provider = outcome.info.get("provider", "")
    body.update(
        runtime=outcome.info.get("runtime", ""),
        provider=provider,
        deterministic=provider.startswith(("CPU", "torchscript:cpu")),
    )
    if meta["op"] == "log_prob":
        log_prob = outcome.tensors["log_prob"].astype(np.float64)
        bits = -log_prob / (meta["input_dim"] * math.log(2))
        return {**body, "log_prob": log_prob.tolist(), "bits_per_dim": bits.tolist()}
    images = _images(outcome.tensors["x"], meta)
    if meta["op"] == "interpolate":
        return _render_frames(body, outcome.tensors["x"], images, meta, accept)
    return _render_samples(body, outcome.tensors["x"], images, meta, accept)


def _render_samples(
    body: dict[str, Any],
    x: np.ndarray,
    images: np.ndarray | None,
    meta: dict[str, Any],
    accept: str | None,
) -> dict[str, Any] | Raw:
    if images is not None and accept and "image/png" in accept:
        return png_bytes(grid(images)), "image/png"
    body.update(samples=None, grid=None)
    if meta["format"] == "array" or images is None:
        body["samples"] = x.tolist()
    elif meta["format"] == "png":
        body["samples"] = [_b64(png_bytes(image)) for image in images]
    else:
        body["grid"] = _b64(png_bytes(grid(images)))
    return body


def _render_frames(
    body: dict[str, Any],
    x: np.ndarray,
    images: np.ndarray | None,
    meta: dict[str, Any],
    accept: str | None,
) -> dict[str, Any] | Raw:
    if images is not None and accept and "image/gif" in accept:
        return gif_bytes(images), "image/gif"
    body.update(frames=None, animation=None)
    if meta["format"] == "array" or images is None:
        body["frames"] = x.tolist()
    elif meta["format"] == "png":
        body["frames"] = [_b64(png_bytes(image)) for image in images]
    else:
        body["animation"] = _b64(gif_bytes(images))
    return body


def _images(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray | None:
    """[N, H, W] uint8, upscaled by the card's display_scale; None for non-image samples."""
    if not meta.get("image") or x.ndim < 3:
        return None
    images = to_uint8(x).reshape(x.shape[0], *x.shape[-2:])
    scale = int(meta.get("display_scale", 1))
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    return images


def gif_bytes(frames: np.ndarray, frame_ms: int = 120) -> bytes:
    """Frames [N, H, W] uint8 as a looping greyscale GIF."""
    pictures = [Image.fromarray(frame, mode="L") for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0
    )
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

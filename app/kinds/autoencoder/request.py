"""The request side of the `autoencoder` kind: rows of pixel levels (or PNGs of the card's
image shape) become `x` [N, D] float32 and a JobMeta naming the draws to summarise; a sample
request becomes seeded noise `z` [n, latent_dim] for the decode graph, made as the sampler
kind makes it."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from hanmo_client.schemas import SampleRequest
from hanmo_client.schemas.autoencoder import ReconstructRequest

from app import glyphs
from app.errors import InvalidInput
from app.kinds.sampler.request import seeded_noise
from app.kinds.spec import Inputs, JobMeta, Served


def prepare(served: Served, request: ReconstructRequest) -> tuple[Inputs, JobMeta]:
    """Validate rows against the card's width and levels, draws against S; return x and meta."""
    signature: dict[str, Any] = served.card.get("signature", {})
    width, levels = int(signature["input_dim"]), int(signature["levels"])
    shape = signature.get("image_shape")
    if request.images is not None:
        x = _images(request.images, shape, levels)
    else:
        assert request.inputs is not None
        x = _rows(request.inputs, width, levels)
    total, draws = _draws(signature, request.draws)
    meta = JobMeta.of(
        served,
        "reconstruct",
        request,
        method=signature.get("method"),
        likelihood=signature.get("likelihood"),
        levels=levels,
        image_shape=shape,
        n=len(x),
        draws_total=total,
        draws=draws,
        heatmaps=request.heatmaps,
    )
    return {"x": x}, meta


def prepare_sample(served: Served, request: SampleRequest, max_rows: int) -> tuple[Inputs, JobMeta]:
    """POST /sample on an autoencoder: z [n, latent_dim] from the request's seed (row i from
    (seed, i) alone) for the decode graph, which the card must have."""
    signature: dict[str, Any] = served.card.get("signature", {})
    if "decode" not in served.card.get("graphs", {}):
        raise InvalidInput(
            f"model {served.model!r} is an autoencoder without a decode graph (graphs.decode in "
            "its card): it reconstructs (POST /reconstruct) but cannot sample"
        )
    for field, value in (("labels", request.labels), ("prefix", request.prefix)):
        if value is not None:
            raise InvalidInput(
                f"model {served.model!r} is an autoencoder: omit `{field}`",
                errors=[{"field": field}],
            )
    if request.n > max_rows:
        raise InvalidInput(f"n must be at most {max_rows}", errors=[{"field": "n"}])
    shape = signature.get("image_shape")
    if shape is None and request.format != "array":
        raise InvalidInput(
            f"model {served.model!r} makes rows, not images: use format=array",
            errors=[{"field": "format"}],
        )
    total, draws = _draws(signature, request.draws)
    seed, z = seeded_noise(request, int(signature["latent_dim"]))
    meta = JobMeta.of(
        served,
        "sample",
        request,
        seed=seed,
        n=request.n,
        temperature=request.temperature,
        labels=None,
        format=request.format,
        sample_shape=list(shape or [signature["input_dim"]]),
        display_scale=int(signature.get("display_scale") or 1),
        image=shape is not None,
        levels=int(signature["levels"]),
        draws_total=total,
        draws=draws,
    )
    return {"z": z}, meta


def _draws(signature: dict[str, Any], asked: int | None) -> tuple[int, int]:
    """S, and the draws a request uses (all by default; more than S is refused)."""
    total = int(signature["draws"])
    draws = asked or total
    if draws > total:
        raise InvalidInput(f"draws must be at most S={total}", errors=[{"field": "draws"}])
    return total, draws


def _rows(inputs: list[list[int]], width: int, levels: int) -> np.ndarray:
    for i, row in enumerate(inputs):
        if len(row) != width:
            raise InvalidInput(
                f"row {i} has {len(row)} values; the model takes {width}",
                errors=[{"field": f"inputs.{i}"}],
            )
    x = np.asarray(inputs, dtype=np.int64)
    outside = np.argwhere(x >= levels)
    if outside.size:
        i, j = (int(v) for v in outside[0])
        raise InvalidInput(
            f"row {i}, value {j} is {int(x[i, j])}: pixel levels are 0..{levels - 1}",
            errors=[{"field": f"inputs.{i}"}],
        )
    return x.astype(np.float32)


def _images(images: list[str], shape: list[int] | None, levels: int) -> np.ndarray:
    if shape is None:
        raise InvalidInput(
            "this model's card gives no image_shape: send rows of levels as `inputs`",
            errors=[{"field": "images"}],
        )
    rows = []
    for i, text in enumerate(images):
        where = [{"field": f"images.{i}"}]
        if text.startswith("data:"):
            text = text.partition(",")[2]
        try:
            grey = glyphs.decode(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError) as exc:  # GlyphError is a ValueError
            raise InvalidInput(f"image {i}: {exc}", errors=where) from exc
        if list(grey.shape) != list(shape):
            raise InvalidInput(
                f"image {i} is {grey.shape[1]}x{grey.shape[0]} (W x H); the model takes "
                f"{shape[1]}x{shape[0]}",
                errors=where,
            )
        rows.append(np.floor(grey.reshape(-1) * (levels - 1) + 0.5))
    return np.stack(rows).astype(np.float32)

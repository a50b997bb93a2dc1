"""The response side of the `sampler` kind: a finished job becomes its JSON body, a PNG sheet
or a GIF. Pure: no web framework here."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from app.images import grid, png_bytes, to_uint8
from app.kinds.spec import Finished, Raw

HIDDEN_META = ("kind", "display_scale", "image")


def render(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
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
    images = display_images(outcome.tensors["x"], meta)
    if meta["op"] == "interpolate":  # frames of a path: arrays, PNGs, or one looping GIF
        fields, whole = ("frames", "animation"), GIF
    else:  # samples: arrays, PNGs, or one grid (a PNG sheet)
        fields, whole = ("samples", "grid"), SHEET
    return render_images(body, outcome.tensors["x"], images, meta, accept, fields, whole)


def render_images(
    body: dict[str, Any],
    x: np.ndarray,
    images: np.ndarray | None,
    meta: dict[str, Any],
    accept: str | None,
    fields: tuple[str, str],
    whole: tuple[str, Callable[[np.ndarray], bytes]],
) -> dict[str, Any] | Raw:
    """Rows as arrays (`format=array`, or not images), one PNG each (`png`), or all of them
    in one picture (the other format, or the raw picture when the client accepts its type)."""
    each, combined = fields
    media_type, encode = whole
    if images is not None and accept and media_type in accept:
        return encode(images), media_type
    body.update({each: None, combined: None})
    if meta["format"] == "array" or images is None:
        body[each] = x.tolist()
    elif meta["format"] == "png":
        body[each] = [_b64(png_bytes(image)) for image in images]
    else:
        body[combined] = _b64(encode(images))
    return body


def display_images(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray | None:
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


GIF: tuple[str, Callable[[np.ndarray], bytes]] = ("image/gif", gif_bytes)
SHEET: tuple[str, Callable[[np.ndarray], bytes]] = ("image/png", lambda imgs: png_bytes(grid(imgs)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

"""Arrays to PNG: pure, deterministic (same array -> same bytes)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to 8-bit grey levels (clipped, rounded half up)."""
    levels: np.ndarray = np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return levels


def png_bytes(image: np.ndarray) -> bytes:
    """A 2-D uint8 array (or [1, H, W] / [H, W, 1]) as a greyscale PNG."""
    plane = np.squeeze(image)
    if plane.ndim != 2:
        raise ValueError(f"an image must be 2-D after squeezing, got shape {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(plane, mode="L").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def grid(images: np.ndarray, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile [N, H, W] uint8 images into one near-square sheet."""
    n, height, width = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad), fill, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        sheet[top : top + height, left : left + width] = images[i]
    return sheet

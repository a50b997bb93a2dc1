"""How sharp a glyph image is, as issue 52 measures it: the edge width, grey pixels (ink
0.1-0.9) per pixel of the 0.5 contour's length. A sharp shape box-filtered onto pixels (a
font as FreeType draws it) measures about 1; the model's raw 64-px output about 3; a curve
steeper than the pixel grid (the logistic the served PNGs went through until issue 52) under
1, its steps aliased. Pure NumPy, for the bench and the tests."""

from __future__ import annotations

import numpy as np

from app.glyphs import trace

GREY = (0.1, 0.9)


def contour_length(image: np.ndarray, level: float = 0.5) -> float:
    """The length in pixels of the image's ``level`` contour (every loop, closed)."""
    return float(
        sum(np.hypot(*(loop - np.roll(loop, 1, axis=0)).T).sum() for loop in trace(image, level))
    )


def grey_pixels(image: np.ndarray) -> int:
    lo, hi = GREY
    return int(((image > lo) & (image < hi)).sum())


def edge_width(images: np.ndarray) -> float:
    """Grey pixels per pixel of 0.5 contour over ``images`` ([N, H, W] or [H, W] ink in
    [0, 1]), pooled: the total grey count over the total contour length."""
    stack = images.reshape(-1, *images.shape[-2:])
    length = sum(contour_length(image) for image in stack)
    return sum(grey_pixels(image) for image in stack) / max(length, 1e-9)


def grey_fraction(images: np.ndarray) -> float:
    """The share of pixels that are grey (neither paper nor ink)."""
    lo, hi = GREY
    return float(((images > lo) & (images < hi)).mean())

"""Glyph images: the one normalisation that training and serving share.

A glyph becomes a float32 [size, size] array with ink = 1 and paper = 0: greyscale, inverted
when the paper is dark, levels stretched between the paper and the darkest ink, cropped to
the ink's bounding box, scaled so that the box's longer side is ``EM_RATIO`` of the canvas
(aspect kept) and centred. Rendered font glyphs, scans and photos all pass through
``normalize`` so that the model sees the same thing at training and at serving time.
"""

from __future__ import annotations

import io
import warnings
from typing import cast

import numpy as np
from contourpy import LineType, contour_generator
from PIL import Image

EM_RATIO = 0.75  # the ink box's longer side, as a fraction of the canvas (0.84 until glyph-style
# was retrained in the frame its issue's baselines were measured in: docs/decisions.md)
INK_FLOOR = 0.12  # ink below this (after the level stretch) is paper: scan noise, JPEG ringing
MAX_PIXELS = 4096 * 4096  # a reference image with more pixels is refused (decompression bombs)
MAX_SIDE = 8192


class GlyphError(ValueError):
    """An image that cannot be a glyph: not an image, empty, blank, or too large."""


def decode(data: bytes) -> np.ndarray:
    """PNG/JPEG/... bytes to a greyscale float array in [0, 1] (1 = white). Refuses what is not
    an image, images over ``MAX_PIXELS`` before decoding them, and empty images."""
    if not data:
        raise GlyphError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                    raise GlyphError(
                        f"the image is {width}×{height}; at most {MAX_PIXELS:,} pixels and "
                        f"{MAX_SIDE} per side are accepted"
                    )
                if width == 0 or height == 0:
                    raise GlyphError("the image has no pixels")
                image.load()
                grey = _flatten(image)
    except GlyphError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise GlyphError("the image is too large to decode (decompression bomb refused)") from exc
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise GlyphError("the data is not an image Pillow can read (PNG, JPEG, WebP, …)") from exc
    return grey


def _flatten(image: Image.Image) -> np.ndarray:
    """Any mode to greyscale in [0, 1]; transparent pixels become white paper."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Greyscale (1 = white) to ink in [0, 1]: inverts a dark page, stretches levels between
    the paper (the border's median) and the darkest ink, and drops faint noise."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    ink = 1.0 - grey if paper >= 0.5 else grey.copy()
    paper_ink = 1.0 - paper if paper >= 0.5 else paper
    darkest = float(np.percentile(ink, 99.9))
    span = darkest - paper_ink
    if span < 0.2:
        raise GlyphError("the image is blank: no ink stands out from the paper")
    ink = np.clip((ink - paper_ink) / span, 0.0, 1.0)
    ink[ink < INK_FLOOR] = 0.0
    return ink


def fit(ink: np.ndarray, size: int, em_ratio: float | None = None) -> np.ndarray:
    """Crop ink to its bounding box, scale the box's longer side to ``em_ratio * size``
    (``EM_RATIO`` unless a model's card says otherwise; aspect kept, area-averaged) and centre
    it on a ``size`` square. Raises on an image with no ink."""
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    if rows.size == 0:
        raise GlyphError("the image is blank: no ink")
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = box.shape
    target = (EM_RATIO if em_ratio is None else em_ratio) * size
    scale = target / max(height, width)
    new_h = max(1, round(height * scale))
    new_w = max(1, round(width * scale))
    resized = Image.fromarray(box.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    )
    canvas = np.zeros((size, size), np.float32)
    top = (size - new_h) // 2
    left = (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = np.clip(np.asarray(resized), 0.0, 1.0)
    return canvas


def normalize(grey: np.ndarray, size: int, em_ratio: float | None = None) -> np.ndarray:
    """The shared normalisation: greyscale (1 = white) → ink-on-zero [size, size] float32."""
    return fit(ink_map(grey), size, em_ratio)


def normalize_bytes(data: bytes, size: int, em_ratio: float | None = None) -> np.ndarray:
    return normalize(decode(data), size, em_ratio)


def ink_to_png(ink: np.ndarray) -> bytes:
    """Ink in [0, 1] (1 = ink) to a black-on-white greyscale PNG."""
    from app.images import png_bytes, to_uint8

    return png_bytes(to_uint8(1.0 - ink))


# -- contours ------------------------------------------------------------------------------

# contourpy's serial marching squares finds the loops (in C++; the pure-Python table walk it
# replaced cost 14-19 ms a 128 px glyph, issue 48). Its loops are then put in the form the
# table walk gave (tests/test_glyphs.py compares; app.rendering fits curves to them): outer
# outlines anticlockwise on screen (y down) and holes clockwise (fonts.glyph_contours reverses
# them into TrueType's clockwise outers), each loop starting at the crossing its first cell in
# raster order leaves from, loops in that order, every crossing placed by the same linear
# interpolation. A pixel is ink where ink >= the level; a saddle cell is split by its mean.
_ON_GRID = 1e-9  # a crossing lies on a pixel edge: one coordinate is a whole number


def trace(ink: np.ndarray, level: float = 0.5) -> list[np.ndarray]:
    """Closed outlines of the region ink >= level, as [n, 2] (x, y) float arrays in pixel
    units (y down); edge crossings are placed by linear interpolation."""
    padded = np.pad(np.asarray(ink, np.float64), 1)
    generator = contour_generator(z=padded, name="serial", line_type=LineType.Separate)
    # contourpy's inside is z > level: the float just below the level makes it z >= level
    lines = generator.lines(np.nextafter(level, -np.inf))
    loops = []
    for line in cast("list[np.ndarray]", lines):  # LineType.Separate: one array a loop
        loop = _crossings(padded, line[-2::-1], level)  # reversed, the closing repeat dropped
        if len(loop) >= 3:
            loops.append(_from_first_cell(loop, padded.shape[1]))
    loops.sort(key=lambda ranked: ranked[0])
    return [loop - 1.0 for _, loop in loops]  # undo the padding


def _crossings(padded: np.ndarray, points: np.ndarray, level: float) -> np.ndarray:
    """Points on pixel edges, recomputed as the table walk placed them: the whole coordinate
    exact, the other one the edge's start plus clip((level - a) / (b - a), 0, 1)."""
    whole = np.rint(points)
    on_grid = np.abs(points - whole) < _ON_GRID
    out = np.where(on_grid, whole, points)
    for fixed_axis in (0, 1):  # 0: a vertical edge (x whole, y interpolated); 1: horizontal
        free = 1 - fixed_axis
        rows = on_grid[:, fixed_axis] & ~on_grid[:, free]
        fixed = whole[rows, fixed_axis].astype(np.intp)
        start = np.floor(points[rows, free]).astype(np.intp)
        if fixed_axis == 0:
            a, b = padded[start, fixed], padded[start + 1, fixed]
        else:
            a, b = padded[fixed, start], padded[fixed, start + 1]
        out[rows, free] = start + np.clip((level - a) / (b - a), 0.0, 1.0)
    return out


def _from_first_cell(loop: np.ndarray, width: int) -> tuple[int, np.ndarray]:
    """(the raster index of the loop's first cell, the loop rolled to start in it). A segment
    joins two edges of one cell, so its midpoint lies in that cell."""
    cells = np.floor((loop + np.roll(loop, -1, axis=0)) / 2.0).astype(np.int64)
    raster = cells[:, 1] * width + cells[:, 0]
    first = int(np.argmin(raster))
    return int(raster[first]), np.roll(loop, -first, axis=0)


def upscale(ink: np.ndarray, size: int) -> np.ndarray:
    """A glyph resized to ``size`` (bicubic, clipped to [0, 1])."""
    if ink.shape[0] == size:
        return ink.astype(np.float32)
    image = Image.fromarray(ink.astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BICUBIC
    )
    out: np.ndarray = np.clip(np.asarray(image), 0.0, 1.0)
    return out

"""The one rendering of a model's glyph (issue 52): every PNG, sheet, SVG, font and contact
sheet is drawn from the same shape, the region where the model's field is at least 0.5.

The field is the model's [n, n] output under PIL's bicubic (Keys, a = -0.5): one continuous
function of the canvas, whatever grid samples it. A PNG of ``size`` px is its 0.5 region
anti-aliased by supersampling ("contour anti-aliasing"): the field sampled on a grid
``supersampling`` times finer, thresholded at 0.5, box-filtered down. Edges come out one pixel
wide, as a rendered font's are, at every size: neither the raw field's soft grey (the model
hedges where it is unsure) nor the aliased steps of a steep contrast curve. Outlines (SVG,
TrueType) trace the same 0.5 level of the same field, sampled ``TRACE_FACTOR`` times finer than
the model's grid, and fit it with cubic Bézier curves (app.curves; quadratic in fonts) within
``CURVE_TOLERANCE_PX`` of the model's pixels, so a PNG and an outline of one glyph agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.curves import Segments, fit_loops, is_line
from app.glyphs import trace, upscale

MIN_SUPERSAMPLING = 4  # samples per output pixel, each way: 17 levels of edge coverage
MIN_FINE_PER_MODEL_PX = 8  # and at least 8 per model pixel each way (x8 of a 64-px glyph)
# but a fine grid of at most this many px a side: x4 of a 512 px glyph (a 2,048 px bicubic)
# cost 32 ms a glyph, 8 s for a 256-character sheet (bench.glyph_render); x2 there costs a
# quarter and its edges are still one pixel wide. The targets' sizes (64-256 px) keep x4-x8.
MAX_FINE_PX = 1024
TRACE_FACTOR = 4  # outlines trace the field sampled x4 of the model's grid, where the linear
# crossings lie within ~0.01 model px of the bicubic's level
CURVE_TOLERANCE_PX = 0.1  # the curves' furthest from the traced points, in model pixels
# (0.4 px of a 256-px glyph): on glyph-style's outputs the curves lie a median 0.02 and at
# most ~0.18 model px from the level; the 128-px polygon they replaced, 0.085 and 0.63
CORNER_REACH_PX = 0.5  # a corner turns sharply within this arc either side, in model pixels
LEVEL = 0.5


def supersampling(model_px: int, size: int) -> int:
    """Samples per output pixel (each way) for a glyph of ``model_px`` drawn at ``size``: at
    least MIN_SUPERSAMPLING and MIN_FINE_PER_MODEL_PX a model pixel, within MAX_FINE_PX a side
    (from 512 px up fewer; a glyph of 1,024 px or more is thresholded at its own size)."""
    wanted = max(MIN_SUPERSAMPLING, math.ceil(MIN_FINE_PER_MODEL_PX * model_px / size))
    return max(1, min(wanted, MAX_FINE_PX // size))


def render(ink: np.ndarray, size: int) -> np.ndarray:
    """The model's glyph ([n, n] ink in [0, 1]) drawn at ``size`` px: each pixel's coverage by
    the field's 0.5 region, float32 in [0, 1] (1 = ink)."""
    step = supersampling(ink.shape[0], size)
    inside = upscale(ink, size * step) >= LEVEL
    rows = inside.reshape(size, step, size * step).sum(axis=1, dtype=np.uint16)
    count = rows.reshape(size, size, step).sum(axis=2, dtype=np.uint16)
    coverage: np.ndarray = count.astype(np.float32) / np.float32(step * step)
    return coverage


def outline(ink: np.ndarray) -> list[Segments]:
    """The field's 0.5 level as closed cubic Bézier loops, in model pixels of the canvas
    (x right, y down, the canvas spans [0, n]): outer loops anticlockwise on screen, holes
    clockwise (app.glyphs.trace's orientation)."""
    return outlines([ink])[0]


def outlines(inks: Sequence[np.ndarray] | np.ndarray) -> list[list[Segments]]:
    """``outline`` of each glyph, fitted together (NumPy's per-call cost shared: a font job's
    16 glyphs a step fit in about a third of the time one at a time takes)."""
    traced = [[(loop + 0.5) / TRACE_FACTOR for loop in _level(ink)] for ink in inks]
    fitted = iter(
        fit_loops([loop for loops in traced for loop in loops], CURVE_TOLERANCE_PX, CORNER_REACH_PX)
    )
    return [[next(fitted) for _ in loops] for loops in traced]


def _level(ink: np.ndarray) -> list[np.ndarray]:
    return trace(upscale(ink, ink.shape[0] * TRACE_FACTOR), LEVEL)


def svg(ink: np.ndarray, size: int) -> str:
    """The glyph's outline as an SVG document of ``size`` px (black ink, nonzero fill)."""
    scale = size / ink.shape[0]
    path = "".join(_svg_loop(loop * scale) for loop in outline(ink))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}"><path fill="#000" fill-rule="nonzero" d="{path}"/></svg>'
    )


def _svg_loop(segments: Segments) -> str:
    def xy(p: np.ndarray) -> str:
        return f"{p[0]:.2f} {p[1]:.2f}"

    start = segments[-1, 2]
    parts = [f"M{xy(start)}"]
    for segment in segments:
        if is_line(start, segment):
            parts.append(f"L{xy(segment[2])}")
        else:
            parts.append(f"C{xy(segment[0])} {xy(segment[1])} {xy(segment[2])}")
        start = segment[2]
    return "".join(parts) + "Z"

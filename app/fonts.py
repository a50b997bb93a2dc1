"""TrueType fonts from generated glyphs: each glyph is traced into outlines (app.glyphs.trace)
and written with fontTools as straight-segment TrueType contours. Used by the worker's font
jobs (POST /v1/styles/{id}/font)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import numpy as np

from app.glyphs import outlines

UPM = 1000
ASCENT, DESCENT = 880, -120
TRACE_SIZE = 128  # glyphs are traced at this size (bicubic upscale of the model's output)


def glyph_contours(ink: np.ndarray, level: float = 0.5) -> list[list[tuple[int, int]]]:
    """Outlines in font units (y up), clockwise outer contours as TrueType wants."""
    traced = max(TRACE_SIZE, ink.shape[0])
    scale = UPM / traced
    contours = []
    for pts in outlines(ink, traced, level, tolerance=0.2):
        xs = np.rint(pts[:, 0] * scale).astype(int)
        ys = np.rint(ASCENT - pts[:, 1] * scale).astype(int)
        points = list(zip(xs.tolist(), ys.tolist(), strict=True))[::-1]  # y flip reverses turning
        deduped = [p for i, p in enumerate(points) if p != points[i - 1]]
        if len(deduped) >= 3:
            contours.append(deduped)
    return contours


def build_ttf(
    glyphs: np.ndarray,
    codepoints: np.ndarray,
    family: str,
    progress: Callable[[float], None] | None = None,
) -> bytes:
    """A TrueType font with one glyph per code point; glyphs are [N, H, W] ink in [0, 1]."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    family = re.sub(r"[^A-Za-z0-9 -]", "", family)[:48] or "hanmo"
    names = [".notdef", "space"] + [f"uni{int(cp):04X}" for cp in codepoints]
    fb = FontBuilder(UPM, isTTF=True)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap({0x20: "space", **{int(cp): f"uni{int(cp):04X}" for cp in codepoints}})
    outlines = {}
    empty = TTGlyphPen(None).glyph()
    notdef = TTGlyphPen(None)
    for x0, y0, x1, y1 in ((100, DESCENT + 50, 900, ASCENT - 50),):
        notdef.moveTo((x0, y0))
        notdef.lineTo((x0, y1))
        notdef.lineTo((x1, y1))
        notdef.lineTo((x1, y0))
        notdef.closePath()
    outlines[".notdef"] = notdef.glyph()
    outlines["space"] = empty
    for i, (ink, cp) in enumerate(zip(glyphs, codepoints, strict=True)):
        pen = TTGlyphPen(None)
        for contour in glyph_contours(ink):
            pen.moveTo(contour[0])
            for point in contour[1:]:
                pen.lineTo(point)
            pen.closePath()
        outlines[f"uni{int(cp):04X}"] = pen.glyph()
        if progress is not None and i % 64 == 0:
            progress(i / len(codepoints))
    fb.setupGlyf(outlines)
    metrics = {}
    glyf = fb.font["glyf"]
    for name in names:
        g = glyf[name]
        metrics[name] = (UPM, getattr(g, "xMin", 0) if g.numberOfContours else 0)
    fb.setupHorizontalMetrics(metrics)
    fb.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    fb.setupNameTable({"familyName": family, "styleName": "Regular"})
    fb.setupOS2(
        sTypoAscender=ASCENT, sTypoDescender=DESCENT, usWinAscent=ASCENT, usWinDescent=-DESCENT
    )
    fb.setupPost()
    buffer = io.BytesIO()
    fb.save(buffer)
    if progress is not None:
        progress(1.0)
    return buffer.getvalue()

"""TrueType fonts from generated glyphs: each glyph is traced into outlines (app.glyphs.trace)
and written with fontTools as straight-segment TrueType contours. Used by the worker's font
jobs (POST /v1/styles/{id}/font)."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable

import numpy as np

from app.glyphs import outlines

UPM = 1000
ASCENT, DESCENT = 880, -120
TRACE_SIZE = 128  # glyphs are traced at this size (bicubic upscale of the model's output)
FONT_TIMESTAMP = 0  # head.created/modified (seconds since 1904): a font's bytes are its glyphs'
Contours = list[list[tuple[int, int]]]


def glyph_contours(ink: np.ndarray, level: float = 0.5) -> Contours:
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
    traced = []
    for i, ink in enumerate(glyphs):
        traced.append(glyph_contours(ink))
        if progress is not None and i % 64 == 0:
            progress(i / len(codepoints))
    data = font_from_contours(traced, codepoints, family)
    if progress is not None:
        progress(1.0)
    return data


def font_from_contours(traced: list[Contours], codepoints: np.ndarray, family: str) -> bytes:
    """The font of glyphs already traced (glyph_contours of each). The same contours give the
    same bytes: the head table's dates are fixed, not the time of the build."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    family = re.sub(r"[^A-Za-z0-9 -]", "", family)[:48] or "hanmo"
    names = [".notdef", "space"] + [f"uni{int(cp):04X}" for cp in codepoints]
    fb = FontBuilder(UPM, isTTF=True)
    fb.font["head"].created = fb.font["head"].modified = FONT_TIMESTAMP
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
    for contours, cp in zip(traced, codepoints, strict=True):
        pen = TTGlyphPen(None)
        for contour in contours:
            pen.moveTo(contour[0])
            for point in contour[1:]:
                pen.lineTo(point)
            pen.closePath()
        outlines[f"uni{int(cp):04X}"] = pen.glyph()
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
    return buffer.getvalue()


def pack_contours(traced: list[Contours]) -> bytes:
    """Glyphs' contours as compact bytes (zlib of int32 counts and int16 points): what a font
    job keeps of each finished chunk, so a restarted job need not trace it again."""
    per_glyph = np.array([len(c) for c in traced], np.int32)
    lengths = np.array([len(contour) for c in traced for contour in c], np.int32)
    points = np.array([p for c in traced for contour in c for p in contour], np.int16)
    header = np.array([len(per_glyph), len(lengths), len(points)], np.int32)
    body = header.tobytes() + per_glyph.tobytes() + lengths.tobytes() + points.tobytes()
    return zlib.compress(body, 6)


def unpack_contours(data: bytes) -> list[Contours]:
    """The contours pack_contours packed."""
    body = zlib.decompress(data)
    n_glyphs, n_contours, n_points = (int(n) for n in np.frombuffer(body[:12], np.int32))
    per_glyph = np.frombuffer(body, np.int32, n_glyphs, 12).tolist()
    lengths = iter(np.frombuffer(body, np.int32, n_contours, 12 + 4 * n_glyphs).tolist())
    offset = 12 + 4 * (n_glyphs + n_contours)
    points = [
        (x, y)
        for x, y in np.frombuffer(body, np.int16, 2 * n_points, offset).reshape(-1, 2).tolist()
    ]
    traced, at = [], 0
    for count in per_glyph:
        glyph = []
        for _ in range(count):
            n = next(lengths)
            glyph.append(points[at : at + n])
            at += n
        traced.append(glyph)
    return traced

"""TrueType fonts from generated glyphs: each glyph's outline (app.rendering.outlines: the 0.5
level of the field its PNGs are drawn from, fitted with cubic Béziers) turned into TrueType's
quadratic curves by fontTools' cu2qu and written with fontTools. Used by the worker's font jobs
(POST /v1/styles/{id}/font)."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from app.curves import Segments, is_line
from app.rendering import outlines

UPM = 1000
ASCENT, DESCENT = 880, -120
QUAD_MAX_ERR = 1.0  # font units (0.064 px of a 64-px glyph): cu2qu's furthest from a cubic
FONT_TIMESTAMP = 0  # head.created/modified (seconds since 1904): a font's bytes are its glyphs'
PACK_VERSION = 2  # pack_contours' layout: 2 carries on-curve flags; 1 (no header) did not
Point = tuple[int, int, int]  # x, y in font units (y up), 1 on the curve or 0 a control point
Contours = list[list[Point]]


def glyph_contours(ink: np.ndarray) -> Contours:
    """A glyph's TrueType contours: font units (y up), clockwise outer contours, quadratic
    curves as TrueType holds them (two control points in a row imply an on-curve point
    midway)."""
    return contours_of([ink])[0]


def contours_of(inks: Sequence[np.ndarray] | np.ndarray) -> list[Contours]:
    """``glyph_contours`` of each glyph, their outlines fitted together."""
    return [_contours(loops, ink.shape[0]) for loops, ink in zip(outlines(inks), inks, strict=True)]


def _contours(loops: list[Segments], side: int) -> Contours:
    scale = np.array([UPM / side, -UPM / side])
    out = []
    for segments in loops:
        quadratic = _quadratic(segments * scale + np.array([0.0, ASCENT]))
        points = _distinct(quadratic[::-1])  # the y flip reverses turning
        if len(points) >= 3 and any(on for _, _, on in points):
            out.append(points)
    return out


def _quadratic(segments: Segments) -> list[Point]:
    """Cubic segments (font units) as TrueType points, rounded: each line its end, each curve
    cu2qu's control points and then its end."""
    from fontTools.cu2qu import curve_to_quadratic

    points: list[Point] = []
    start = segments[-1, 2]
    for segment in segments:
        if not is_line(start, segment):
            curve = [tuple(p) for p in (start, *segment)]
            points += [(*_rounded(p), 0) for p in curve_to_quadratic(curve, QUAD_MAX_ERR)[1:-1]]
        points.append((*_rounded(segment[2]), 1))
        start = segment[2]
    return points


def _rounded(p: Sequence[float]) -> tuple[int, int]:
    return int(np.rint(p[0])), int(np.rint(p[1]))


def _distinct(points: list[Point]) -> list[Point]:
    """The contour without points that repeat their predecessor's place (rounding makes
    some); where an on-curve point and a control point meet, the on-curve one stays."""
    out: list[Point] = []
    for p in points:
        if out and out[-1][:2] == p[:2]:
            out[-1] = p if p[2] else out[-1]
            continue
        out.append(p)
    while len(out) > 1 and out[-1][:2] == out[0][:2]:
        out[0] = out[-1] if out[-1][2] else out[0]
        out.pop()
    return out


def build_ttf(
    glyphs: np.ndarray,
    codepoints: np.ndarray,
    family: str,
    progress: Callable[[float], None] | None = None,
) -> bytes:
    """A TrueType font with one glyph per code point; glyphs are [N, H, W] ink in [0, 1]."""
    traced: list[Contours] = []
    for i in range(0, len(glyphs), 64):
        traced += contours_of(glyphs[i : i + 64])
        if progress is not None:
            progress(i / len(codepoints))
    data = font_from_contours(traced, codepoints, family)
    if progress is not None:
        progress(1.0)
    return data


def font_from_contours(traced: list[Contours], codepoints: np.ndarray, family: str) -> bytes:
    """The font of glyphs already traced (glyph_contours of each). The same contours give the
    same bytes: the head table's dates are fixed, not the time of the build."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen, TTGlyphPointPen

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
        pen = TTGlyphPointPen(None)
        for contour in contours:
            pen.beginPath()
            for i, (x, y, on) in enumerate(contour):
                pen.addPoint((x, y), None if not on else "line" if contour[i - 1][2] else "qcurve")
            pen.endPath()
        outlines[f"uni{int(cp):04X}"] = pen.glyph(dropImpliedOnCurves=True)
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
    """Glyphs' contours as compact bytes (zlib of int32 counts, int16 points and uint8 on-curve
    flags): what a font job keeps of each finished chunk, so a restarted job need not fit it
    again."""
    per_glyph = np.array([len(c) for c in traced], np.int32)
    lengths = np.array([len(contour) for c in traced for contour in c], np.int32)
    points = np.array([p for c in traced for contour in c for p in contour], np.int16)
    points = points.reshape(-1, 3)
    header = np.array([-PACK_VERSION, len(per_glyph), len(lengths), len(points)], np.int32)
    body = b"".join(
        [
            header.tobytes(),
            per_glyph.tobytes(),
            lengths.tobytes(),
            np.ascontiguousarray(points[:, :2]).tobytes(),
            points[:, 2].astype(np.uint8).tobytes(),
        ]
    )
    return zlib.compress(body, 6)


def unpack_contours(data: bytes) -> list[Contours]:
    """The contours pack_contours packed (a chunk packed before PACK_VERSION 2, by a worker
    of the polygon outlines, reads as on-curve points)."""
    body = zlib.decompress(data)
    flagged = int(np.frombuffer(body[:4], np.int32)[0]) < 0
    at = 4 if flagged else 0
    n_glyphs, n_contours, n_points = (int(n) for n in np.frombuffer(body, np.int32, 3, at))
    at += 12
    per_glyph = np.frombuffer(body, np.int32, n_glyphs, at).tolist()
    at += 4 * n_glyphs
    lengths = iter(np.frombuffer(body, np.int32, n_contours, at).tolist())
    at += 4 * n_contours
    xy = np.frombuffer(body, np.int16, 2 * n_points, at).reshape(-1, 2)
    on = np.frombuffer(body, np.uint8, n_points, at + 4 * n_points) if flagged else None
    flags = on.tolist() if on is not None else [1] * n_points
    points = [(x, y, f) for (x, y), f in zip(xy.tolist(), flags, strict=True)]
    traced, start = [], 0
    for count in per_glyph:
        glyph = []
        for _ in range(count):
            n = next(lengths)
            glyph.append(points[start : start + n])
            start += n
        traced.append(glyph)
    return traced

"""Glyph outlines (app.glyphs.trace): contourpy's loops, put in the form of the pure-Python
table walk they replaced (issue 48), against a copy of that walk on real glyphs: CJK characters
from the fonts the tests install and the README's example references, sharp and softened as the
model's output is, traced at 128 px. The curves fitted to them and the renderings that share
their level are tested in tests/test_rendering.py."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app import glyphs
from app.registry.cards import read_card
from tests.helpers import ROOT

MODEL = ROOT / "models" / "glyph-style" / "1"
EXAMPLES = ROOT / "docs" / "examples"
REFERENCE_PNGS = sorted(EXAMPLES.rglob("*.png"))  # the four references and a sheet of a name
CJK_FONTS = [  # training/data/fetch_fonts.sh --minimal installs them for `make test`
    Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Light.ttf"),
]
CHARS_PER_FONT = 24
TRACE_PX = 128
MAX_DISTANCE_PX = 0.05  # Hausdorff distance between a loop and its reference
MIN_FILL_AGREEMENT = 0.999


# -- the table walk the tracer replaced (app/glyphs.py until issue 48), for comparison ---------

_SEGMENTS: dict[int, list[tuple[int, int]]] = {
    1: [(2, 3)], 2: [(1, 2)], 3: [(1, 3)], 4: [(0, 1)], 6: [(0, 2)], 7: [(0, 3)],
    8: [(3, 0)], 9: [(2, 0)], 11: [(1, 0)], 12: [(3, 1)], 13: [(2, 1)], 14: [(3, 2)],
}  # fmt: skip
Key = tuple[int, int, int]


def reference_trace(ink: np.ndarray, level: float = 0.5) -> list[np.ndarray]:
    """Marching squares in Python: segments keyed by the pixel edge they cross, then walked."""
    padded = np.pad(np.asarray(ink, np.float64), 1)
    above = padded >= level
    code = above[:-1, :-1] * 8 + above[:-1, 1:] * 4 + above[1:, 1:] * 2 + above[1:, :-1] * 1
    nxt: dict[Key, Key] = {}
    where: dict[Key, tuple[float, float]] = {}
    ys, xs = np.nonzero((code != 0) & (code != 15))
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        for a, b in _cell_segments(padded, y, x, int(code[y, x]), level):
            ka, kb = _edge_key(y, x, a), _edge_key(y, x, b)
            where.setdefault(ka, _edge_point(padded, y, x, a, level))
            where.setdefault(kb, _edge_point(padded, y, x, b, level))
            nxt[ka] = kb
    return _walk(nxt, where)


def _cell_segments(
    padded: np.ndarray, y: int, x: int, c: int, level: float
) -> list[tuple[int, int]]:
    if c not in (5, 10):
        return _SEGMENTS[c]
    centre = padded[y : y + 2, x : x + 2].mean() >= level
    if c == 5:
        return [(2, 3), (0, 1)] if not centre else [(2, 1), (0, 3)]
    return [(3, 0), (1, 2)] if not centre else [(1, 0), (3, 2)]


def _edge_point(padded: np.ndarray, y: int, x: int, edge: int, level: float) -> tuple[float, float]:
    if edge == 0:
        return (x + _t(padded[y, x], padded[y, x + 1], level), float(y))
    if edge == 1:
        return (x + 1.0, y + _t(padded[y, x + 1], padded[y + 1, x + 1], level))
    if edge == 2:
        return (x + _t(padded[y + 1, x], padded[y + 1, x + 1], level), y + 1.0)
    return (float(x), y + _t(padded[y, x], padded[y + 1, x], level))


def _edge_key(y: int, x: int, edge: int) -> Key:
    return {0: (y, x, 0), 1: (y, x + 1, 1), 2: (y + 1, x, 0), 3: (y, x, 1)}[edge]


def _t(a: float, b: float, level: float) -> float:
    return float(np.clip((level - a) / (b - a), 0.0, 1.0)) if a != b else 0.5


def _walk(nxt: dict[Key, Key], where: dict[Key, tuple[float, float]]) -> list[np.ndarray]:
    outlines, seen = [], set()
    for start in nxt:
        loop, key = [], start
        while key not in seen and key in nxt:
            seen.add(key)
            loop.append(where[key])
            key = nxt[key]
        if len(loop) >= 3:
            outlines.append(np.asarray(loop) - 1.0)
    return outlines


def reference_simplify(points: np.ndarray, tolerance: float = 0.15) -> np.ndarray:
    if len(points) <= 4:
        return points
    keep = [0]
    for i in range(1, len(points)):
        a, b, p = points[keep[-1]], points[(i + 1) % len(points)], points[i]
        ab = b - a
        norm = float(np.hypot(*ab))
        dist = abs(ab[0] * (p[1] - a[1]) - ab[1] * (p[0] - a[0])) / norm if norm else 0.0
        if dist > tolerance:
            keep.append(i)
    return points[keep] if len(keep) >= 3 else points


# -- glyphs ------------------------------------------------------------------------------------


@cache
def model_glyphs() -> list[np.ndarray]:
    """Ink [64, 64] as the model sees and writes it: font characters and the README's
    references, normalised; each also softened (a 1 px blur), like the model's output."""
    size = read_card(MODEL).signature.size
    chars = read_card(MODEL).signature.chars
    picked = chars[:: max(1, len(chars) // CHARS_PER_FONT)][:CHARS_PER_FONT]
    greys = [_rendered(font, ch) for font in CJK_FONTS if font.exists() for ch in picked]
    greys += [_grey(Image.open(path)) for path in REFERENCE_PNGS]
    sharp = [glyphs.normalize(grey, size) for grey in greys]
    return sharp + [_softened(ink) for ink in sharp]


def _rendered(font_path: Path, char: str) -> np.ndarray:
    image = Image.new("L", (160, 160), 255)
    font = ImageFont.truetype(str(font_path), 120)
    ImageDraw.Draw(image).text((80, 80), char, font=font, fill=0, anchor="mm")
    return _grey(image)


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), np.float32) / 255.0


def _softened(ink: np.ndarray, sigma_px: float = 1.0) -> np.ndarray:
    taps = np.exp(-0.5 * (np.arange(-3, 4) / sigma_px) ** 2)
    taps /= taps.sum()
    rows = np.apply_along_axis(np.convolve, 1, ink, taps, mode="same")
    blurred: np.ndarray = np.apply_along_axis(np.convolve, 0, rows, taps, mode="same")
    return blurred.astype(np.float32)


@cache
def traced_pairs() -> list[tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]]:
    """(the glyph at 128 px, its loops, the table walk's loops) for every model glyph."""
    out = []
    for ink in model_glyphs():
        big = glyphs.upscale(ink, TRACE_PX)
        out.append((big, glyphs.trace(big), reference_trace(big)))
    return out


# -- geometry ----------------------------------------------------------------------------------


def signed_area(loop: np.ndarray) -> float:
    """Shoelace area in image coordinates (y down): < 0 for a loop anticlockwise on screen,
    as outer outlines run (fonts.glyph_contours reverses them: TrueType's outers are
    clockwise), > 0 for a hole."""
    x, y = loop[:, 0], loop[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def nonzero_fill(loops: list[np.ndarray], size: int) -> np.ndarray:
    """Whether each pixel centre (x, y), where the tracer's grid has its vertices, lies inside
    the loops by the nonzero rule, as an SVG path's fill and a TrueType rasteriser take them:
    scanlines through the centres, each crossing adding its direction to the pixels left of it."""
    edges = np.concatenate([np.stack([loop, np.roll(loop, -1, axis=0)], axis=1) for loop in loops])
    (x0, y0), (x1, y1) = edges[:, 0].T, edges[:, 1].T
    row = np.arange(size)[:, None]
    crossing = ((y0 <= row) & (row < y1)) | ((y1 <= row) & (row < y0))
    rows, which = np.nonzero(crossing)
    t = (rows - y0[which]) / (y1[which] - y0[which])
    right = np.clip(np.ceil(x0[which] + t * (x1[which] - x0[which])), 0, size).astype(int)
    step = np.where(y1[which] > y0[which], 1, -1)
    winding = np.zeros((size, size + 1), np.int64)
    np.add.at(winding, (rows, 0), step)
    np.add.at(winding, (rows, right), -step)
    inside: np.ndarray = np.cumsum(winding, axis=1)[:, :size] != 0
    return inside


def canonical(loops: list[np.ndarray]) -> list[frozenset[tuple[float, float]]]:
    """Loops as the sets of points they visit: what stays when the start and repeats do not."""
    return sorted((frozenset(map(tuple, loop.tolist())) for loop in loops), key=sorted)


# -- tests -------------------------------------------------------------------------------------


def test_there_are_real_glyphs_with_holes_to_compare() -> None:
    pairs = traced_pairs()
    assert len(pairs) >= 2 * len(REFERENCE_PNGS)
    assert sum(signed_area(loop) > 0 for _, new, _ in pairs for loop in new) >= 20  # holes


def test_loops_holes_and_orientation_match_the_table_walk() -> None:
    for _, new, old in traced_pairs():
        assert len(new) == len(old)
        assert [signed_area(n) > 0 for n in new] == [signed_area(o) > 0 for o in old]


def test_loops_lie_within_tolerance_of_the_table_walks() -> None:
    worst = max(
        hausdorff(n, o) for _, new, old in traced_pairs() for n, o in zip(new, old, strict=True)
    )
    assert worst <= MAX_DISTANCE_PX


def test_fills_agree_with_the_table_walks_and_with_the_bitmap() -> None:
    for big, new, old in traced_pairs():
        fill = nonzero_fill(new, TRACE_PX)
        assert np.mean(fill == nonzero_fill(old, TRACE_PX)) >= MIN_FILL_AGREEMENT
        assert np.mean(fill == (big >= 0.5)) >= MIN_FILL_AGREEMENT  # holes turn against outers


def test_points_are_the_table_walks_exactly() -> None:
    """Stronger than the issue asked (geometry within tolerance): the same loops, in the same
    order, from the same first point, every coordinate equal."""
    for _, new, old in traced_pairs():
        assert [n.tolist() for n in new] == [o.tolist() for o in old]


def test_a_level_met_exactly_is_ink_as_before() -> None:
    """contourpy's inside is z > level, the table walk's z >= level: pixels at exactly 0.5 and
    a saddle whose mean is exactly 0.5 still count as ink. Where a crossing falls on a pixel
    centre the two may repeat it a different number of times, or start its loop elsewhere."""
    ink = np.zeros((6, 6))
    ink[2:4, 2:4] = 0.5
    ink[1, 1] = ink[4, 4] = 1.0
    ink[1, 4], ink[2, 5], ink[1, 5] = 0.5, 0.5, 0.0  # a saddle of mean 0.5
    new, old = glyphs.trace(ink), reference_trace(ink)
    assert canonical(new) == canonical(old)
    assert {(2.0, 2.0), (3.0, 3.0), (5.0, 2.0)} <= set().union(*canonical(new))


def test_no_ink_no_loops_and_ink_at_the_border_is_closed() -> None:
    assert glyphs.trace(np.zeros((8, 8))) == []
    (loop,) = glyphs.trace(np.ones((4, 4)))
    assert signed_area(loop) < 0
    assert [p.tolist() for p in reference_trace(np.ones((4, 4)))] == [loop.tolist()]

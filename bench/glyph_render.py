"""Glyph rendering (issue 52, item 1): the served PNG, SVG and font before and after.

The shipped glyph-style model writes GLYPHS characters (spread over its charset) in each of the
five held-out fonts (never trained on) from four references of that font (永和书法, drawn and
normalised at 64 px as the bank draws them). Each output is drawn

* before: the PNG through a bicubic upscale and a logistic of gain 40 (`crisp`), the SVG and
  the font from the 0.5 level of a bicubic 128-px upscale traced into a polygon (simplified at
  0.2 px) — copies of the code it replaced, below;
* after: `app.rendering.render` (contour anti-aliasing) and the Bézier outlines of
  `app.rendering.outline` (fonts: `app.fonts`, quadratic through cu2qu).

Printed: CPU ms a glyph (process time, the median of REPEATS runs: the machine is shared) for
the PNG at 64-512 px, the SVG at 128 px and a font's contours (16 glyphs a call, as a font job's
step); the edge width (grey pixels per pixel of 0.5 contour, training.evaluate.edges) of the
raw output (bicubic), before and after, as a ratio to the truth's (the font's own glyph drawn
at twice the size and normalised at each size, as the bank draws it) at 64, 128 and 256 px;
font bytes, TrueType points and SVG bytes a glyph before and after.

Run: `nice -n 19 .venv/bin/python -m bench.glyph_render` (~2 min; needs the held-out fonts of
training/data/fetch_fonts.sh). Not part of `make bench`."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from app import fonts, glyphs, rendering
from app.kinds.style_transfer.graph import Atlas
from app.registry.cards import read_card
from app.runtime.sessions import OnnxGraph
from bench.glyph_paths import median_s
from bench.serving import ROOT
from tests.test_glyphs import reference_simplify
from training.data import fonts as fontlib
from training.evaluate.edges import edge_width

MODEL = ROOT / "models" / "glyph-style" / "1"
HELD_OUT = ("ma-shan-zheng", "zhi-mang-xing", "zcool-qingke-huangyou", "lxgw-wenkai", "smiley-sans")
REFERENCES = "永和书法"
GLYPHS = 24
REPEATS = 5
SIZES = (64, 128, 256)


# -- what the service drew before issue 52 (app/glyphs.py and app/fonts.py until then) --------


def crisp(ink: np.ndarray, size: int) -> np.ndarray:
    big = glyphs.upscale(ink, size).astype(np.float64)

    def curve(x: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-40.0 * (np.asarray(x, np.float64) - 0.5)))

    lo, hi = curve(0.0), curve(1.0)
    out: np.ndarray = ((curve(big) - lo) / (hi - lo)).astype(np.float32)
    return out


def polygon(ink: np.ndarray, traced: int, tolerance: float) -> list[np.ndarray]:
    return [reference_simplify(o, tolerance) for o in glyphs.trace(glyphs.upscale(ink, traced))]


def polygon_svg(ink: np.ndarray, size: int) -> str:
    traced = max(size, 2 * ink.shape[0])
    parts = []
    for outline in polygon(ink, traced, 0.15):
        pts = outline * (size / traced)
        parts.append("M" + "L".join(f"{x:.2f} {y:.2f}" for x, y in pts) + "Z")
    return f'<svg><path d="{"".join(parts)}"/></svg>'


def polygon_contours(ink: np.ndarray) -> fonts.Contours:
    scale = fonts.UPM / 128
    contours = []
    for pts in polygon(ink, 128, 0.2):
        xs = np.rint(pts[:, 0] * scale).astype(int).tolist()
        ys = np.rint(fonts.ASCENT - pts[:, 1] * scale).astype(int).tolist()
        points = [(x, y, 1) for x, y in zip(xs, ys, strict=True)][::-1]
        deduped = [p for i, p in enumerate(points) if p != points[i - 1]]
        if len(deduped) >= 3:
            contours.append(deduped)
    return contours


# -- the model's outputs and the truths --------------------------------------------------------


def written() -> dict[str, tuple[list[str], np.ndarray]]:
    """Per held-out font: the characters written and the model's [N, 64, 64] outputs."""
    card = read_card(MODEL)
    targets = [c for c in card.signature.chars[:3755:150] if c not in REFERENCES][:GLYPHS]
    atlas = Atlas(MODEL / "atlas.npz")
    encoder = OnnxGraph(MODEL / "encoder.onnx", "cpu", 1)
    generator = OnnxGraph(MODEL / "generator.onnx", "cpu", 1)
    out = {}
    for name in HELD_OUT:
        font = fontlib.open_font(name, 128)
        refs = np.stack([font.render(c, 64) for c in REFERENCES])[None].astype(np.float32)
        codes = np.array([[ord(c) for c in REFERENCES]], np.int64)
        content = atlas.run({"codepoint": codes})["content"]
        style = encoder.run({"refs": refs, "ref_content": content})["style"]
        chars = [c for c in targets if font.render(c, 64) is not None]
        looked = atlas.run({"codepoint": np.array([ord(c) for c in chars], np.int64)})
        feeds = {**looked, "style": np.repeat(style, len(chars), axis=0)}
        out[name] = (chars, generator.run(feeds)["glyph"])
    return out


def truths(name: str, chars: list[str], size: int) -> np.ndarray:
    font = fontlib.open_font(name, 2 * size)  # drawn at twice the size, as the bank draws
    return np.stack([font.render(c, size) for c in chars])


# -- measures ----------------------------------------------------------------------------------


def cpu_ms(run: Callable[[], object], count: int) -> float:
    return 1e3 * median_s(run, REPEATS, time.process_time) / count


def costs(inks: np.ndarray) -> None:
    n = len(inks)
    print(f"CPU ms a glyph ({n} glyphs, median of {REPEATS}):   before     after")
    for size in (*SIZES, 512):
        before = cpu_ms(lambda: [crisp(i, size) for i in inks], n)  # noqa: B023
        after = cpu_ms(lambda: [rendering.render(i, size) for i in inks], n)  # noqa: B023
        _row(f"PNG field at {size:3d} px", before, after)
    before = cpu_ms(lambda: [polygon_svg(i, 128) for i in inks], n)
    after = cpu_ms(lambda: [rendering.svg(i, 128) for i in inks], n)
    _row("SVG at 128 px (one glyph a call)", before, after)
    before = cpu_ms(lambda: [polygon_contours(i) for i in inks], n)
    after = cpu_ms(lambda: [fonts.contours_of(inks[i : i + 16]) for i in range(0, n, 16)], n)
    _row("font contours (16 glyphs a call)", before, after)


def _row(label: str, before: float, after: float) -> None:
    print(f"  {label:<40s} {before:8.2f} {after:8.2f}")


def edges(outputs: dict[str, tuple[list[str], np.ndarray]]) -> None:
    print("edge width / truth's:   raw (bicubic) · before (crisp) · after (render); truth px")
    for name, (chars, inks) in outputs.items():
        cells = []
        for size in SIZES:
            truth = edge_width(truths(name, chars, size))
            raw = edge_width(np.stack([glyphs.upscale(i, size) for i in inks])) / truth
            before = edge_width(np.stack([crisp(i, size) for i in inks])) / truth
            after = edge_width(np.stack([rendering.render(i, size) for i in inks])) / truth
            cells.append(f"{size}: {raw:.2f} · {before:.2f} · {after:.2f}; {truth:.2f}")
        print(f"  {name:22s} " + " | ".join(cells), flush=True)


def sizes(inks: np.ndarray) -> None:
    codepoints = np.arange(0x4E00, 0x4E00 + len(inks))
    old = [polygon_contours(i) for i in inks]
    new = fonts.contours_of(inks)
    old_ttf = fonts.font_from_contours(old, codepoints, "Before")
    new_ttf = fonts.font_from_contours(new, codepoints, "After")
    n = len(inks)
    print(f"font of {n} glyphs: {len(old_ttf):,} bytes before, {len(new_ttf):,} after")
    print(
        f"  TrueType points a glyph: {_points(old) / n:.1f} before (all on the curve), "
        f"{_points(new) / n:.1f} after ({_off(new) / n:.1f} off the curve)"
    )
    old_svg = sum(len(polygon_svg(i, 128)) for i in inks) / n
    new_svg = sum(len(rendering.svg(i, 128)) for i in inks) / n
    segments = sum(len(loop) for i in inks for loop in rendering.outline(i)) / n
    print(f"  SVG path at 128 px: {old_svg:,.0f} bytes before, {new_svg:,.0f} after")
    print(f"  curves a glyph: {segments:.1f} cubic segments")


def _points(traced: list[fonts.Contours]) -> int:
    return sum(len(c) for glyph in traced for c in glyph)


def _off(traced: list[fonts.Contours]) -> int:
    return sum(1 for glyph in traced for c in glyph for _, _, on in c if not on)


def main() -> None:
    outputs = written()
    inks = np.concatenate([g for _, g in outputs.values()])
    print(f"glyph-style, {len(inks)} glyphs: {GLYPHS} characters in each of {len(outputs)} fonts")
    costs(inks[::2])
    sizes(inks)
    edges(outputs)


if __name__ == "__main__":
    main()

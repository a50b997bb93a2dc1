"""Glyph paths (issue 48, item 3): outlines and sampling noise, before and after.

Outlines: the pure-Python table walk (a copy kept in tests/test_glyphs.py) against
app.glyphs.trace (contourpy), per glyph, on GLYPHS characters of the model's charset drawn from
a CJK font the tests use and normalised to the model's 64 px, upscaled to 128 px as font jobs
and SVG answers traced them until issue 52; `outline` adds the simplification the outlines got
(the tests' copy of it since issue 52 replaced the polygons with curves: bench/glyph_render.py).
Both are checked equal on every glyph first.

Noise: the per-row Philox construction (a copy kept in tests/test_noise.py) against
app.noise.standard_normal_rows, for 1,024 × 16 (issue 48's figure), the largest request
(1,024 rows × 64, the widest shipped z_dim) and small requests; checked byte-identical first.

Every figure is the median of REPEATS timed runs. Run: `.venv/bin/python -m bench.glyph_paths`."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app import glyphs
from app.noise import standard_normal_rows
from app.registry.cards import read_card
from bench.serving import ROOT
from tests.test_glyphs import CJK_FONTS, reference_simplify, reference_trace
from tests.test_noise import reference_rows

GLYPHS = 200
TRACE_PX = 128
REPEATS = 3
NOISE_REPEATS = 21
NOISE_SHAPES = ((1, 16), (16, 16), (64, 16), (1024, 16), (1024, 64))
SEED = 2**63 - 7


def median_s(
    run: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def model_glyphs() -> list[np.ndarray]:
    """GLYPHS characters, spread over the charset, from the first CJK font installed."""
    card = read_card(ROOT / "models" / "glyph-style" / "1")
    chars = card.signature.chars[:: max(1, len(card.signature.chars) // GLYPHS)][:GLYPHS]
    font_path = next(path for path in CJK_FONTS if path.exists())
    return [glyphs.normalize(_drawn(font_path, ch), card.signature.size) for ch in chars]


def _drawn(font_path: Path, char: str) -> np.ndarray:
    image = Image.new("L", (160, 160), 255)
    font = ImageFont.truetype(str(font_path), 120)
    ImageDraw.Draw(image).text((80, 80), char, font=font, fill=0, anchor="mm")
    return np.asarray(image, np.float32) / 255.0


def trace_rows(inks: list[np.ndarray]) -> list[tuple[str, float, float]]:
    """(step, old ms a glyph, new ms a glyph)."""
    big = [glyphs.upscale(ink, TRACE_PX) for ink in inks]
    for image in big:
        old, new = reference_trace(image), glyphs.trace(image)
        assert [o.tolist() for o in old] == [n.tolist() for n in new], "traces differ"

    def old_outline(image: np.ndarray) -> list[np.ndarray]:
        return [reference_simplify(o, 0.2) for o in reference_trace(image)]

    def new_outline(image: np.ndarray) -> list[np.ndarray]:
        return [reference_simplify(o, 0.2) for o in glyphs.trace(image)]

    return [
        ("trace", per_glyph_ms(reference_trace, big), per_glyph_ms(glyphs.trace, big)),
        (
            "outline (trace + simplify)",
            per_glyph_ms(old_outline, big),
            per_glyph_ms(new_outline, big),
        ),
    ]


def per_glyph_ms(outline: Callable[[np.ndarray], list[np.ndarray]], big: list[np.ndarray]) -> float:
    return 1e3 * median_s(lambda: [outline(image) for image in big], REPEATS) / len(big)


def noise_rows() -> list[tuple[str, float, float]]:
    rows = []
    for n, dim in NOISE_SHAPES:
        old = reference_rows(SEED, n, dim)
        assert old.tobytes() == standard_normal_rows(SEED, n, dim).tobytes(), "noise differs"
        rows.append(
            (
                f"noise {n} × {dim}",
                noise_ms(reference_rows, n, dim),
                noise_ms(standard_normal_rows, n, dim),
            )
        )
    return rows


def noise_ms(noise: Callable[[int, int, int], np.ndarray], n: int, dim: int) -> float:
    return 1e3 * median_s(lambda: noise(SEED, n, dim), NOISE_REPEATS)


def main() -> None:
    inks = model_glyphs()
    print(f"{len(inks)} glyphs at {TRACE_PX} px; median of {REPEATS} runs (ms a glyph)")
    report(trace_rows(inks))
    print(f"noise, median of {NOISE_REPEATS} runs (ms a request)")
    report(noise_rows())


def report(rows: list[tuple[str, float, float]]) -> None:
    for name, old_ms, new_ms in rows:
        print(f"  {name:<28} old {old_ms:8.3f} ms   new {new_ms:8.3f} ms   {old_ms / new_ms:5.1f}×")


if __name__ == "__main__":
    main()

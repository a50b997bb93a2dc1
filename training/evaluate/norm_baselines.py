"""The content-copy and oracle-font baselines of the style grid under other glyph
normalisations, to compare with the figures issue 5 quotes (see its closing notes).

    .venv/bin/python -m training.evaluate.norm_baselines box 0.75   # ours (app.glyphs)
    .venv/bin/python -m training.evaluate.norm_baselines em 0.84    # the font's em scaled instead

`box R`: the ink box's longer side scaled to R of the canvas (app.glyphs.fit). `em R`: the
glyph rendered with the font's em at R of the canvas, cropped to its ink box and centred at
that size (relative glyph sizes kept). Held-out fonts × 150 held-out characters, 64 px; needs
the fonts of training/data/fetch_fonts.sh. A measurement, not part of the training job.

Measured on 2026-11-30 (content copy / oracle font, L1 and SSIM), against issue 5's
0.198 / 0.24 and 0.152 / 0.375: box 0.84 gives 0.254 / 0.169 and 0.207 / 0.268; box 0.75
gives 0.201 / 0.239 and 0.163 / 0.348; box 0.7 gives 0.176 / 0.306 and 0.143 / 0.408; em 0.84
gives 0.221 / 0.197 and 0.169 / 0.340. The issue's targets were set in a frame close to box
0.75, which app.glyphs.EM_RATIO has been since (0.84 before)."""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

from app import glyphs
from training.data import chars as charsets
from training.data import fonts as fontlib
from training.evaluate.style import metrics

SIZE = 64


def normalise(font: fontlib.Font, ch: str, variant: str, ratio: float) -> np.ndarray | None:
    if not font.has(ch):
        return None
    try:
        ink = glyphs.ink_map(font.raw(ch))
    except (glyphs.GlyphError, KeyError):
        return None
    if variant == "box":
        return glyphs.fit(ink, SIZE, ratio)
    rows, cols = np.flatnonzero(ink.max(1) > 0), np.flatnonzero(ink.max(0) > 0)
    if rows.size == 0:
        return None
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = ratio * SIZE / font.em
    height, width = (max(1, round(d * scale)) for d in box.shape)
    if max(height, width) > SIZE:  # a glyph wider than the em: fit it
        shrink = SIZE / max(height, width)
        height, width = max(1, round(height * shrink)), max(1, round(width * shrink))
    resized = Image.fromarray(box.astype(np.float32), "F").resize(
        (width, height), Image.Resampling.BOX
    )
    out = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - height) // 2, (SIZE - width) // 2
    out[top : top + height, left : left + width] = np.clip(np.asarray(resized), 0, 1)
    return out


def main(variant: str, ratio: float, n_chars: int = 150) -> None:
    available = fontlib.available()
    held = [fontlib.open_font(s.name) for s in available if s.side == "heldout"]
    train = [fontlib.open_font(s.name) for s in available if s.side == "train"]
    eligible = {c for c in charsets.gb2312((1,)) if all(f.has(c) for f in held)}
    _, heldout_chars = charsets.split(2000, 400, 0, eligible)
    chars = heldout_chars[:n_chars]
    content = fontlib.open_font(fontlib.CONTENT)
    copy = {c: normalise(content, c, variant, ratio) for c in chars}
    copies, truths, oracles = [], [], []
    for font in held:
        pairs = [(c, normalise(font, c, variant, ratio)) for c in chars]
        pairs = [(c, g) for c, g in pairs if g is not None and copy[c] is not None]
        truth = np.stack([g for _, g in pairs])
        best: tuple[float, np.ndarray] | None = None
        for other in train:
            if not all(other.has(c) for c, _ in pairs):
                continue
            rendered = [normalise(other, c, variant, ratio) for c, _ in pairs]
            if any(g is None for g in rendered):
                continue
            candidate = np.stack(rendered)  # type: ignore[arg-type]
            l1 = float(np.abs(candidate - truth).mean())
            if best is None or l1 < best[0]:
                best = (l1, candidate)
        assert best is not None
        copies.append(np.stack([copy[c] for c, _ in pairs]))
        truths.append(truth)
        oracles.append(best[1])
    truth = np.concatenate(truths)
    for name, pred in (("content copy", copies), ("oracle font", oracles)):
        figures = metrics(np.concatenate(pred), truth)
        print(f"{variant} {ratio}: {name}", {k: round(v, 3) for k, v in figures.items()})


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))

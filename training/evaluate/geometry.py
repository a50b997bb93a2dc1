"""Each font's global geometry against the primary content font: the rise (horizontals
climbing to the right, a vertical shear) and the slant (a horizontal shear) that best map the
content font's glyphs onto the font's, over the same training characters. The restyled
episodes (``training.style.augment``) draw slant but no rise; this says whether the held-out
hands rise or lean further than the training fonts already do.

    .venv/bin/python -m training.evaluate.geometry --chars 120

Scored by soft IoU after a 5 × 5 box blur, so a stroke a pixel off still overlaps. Needs the
fonts of training/data/fetch_fonts.sh (the glyph bank is rendered or read from .cache/). A
measurement, not part of the training job."""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from training.data import bank as banklib

RISES = np.round(np.linspace(-0.3, 0.3, 13), 3)
SLANTS = np.round(np.linspace(-0.4, 0.4, 9), 3)


def shear(glyphs: torch.Tensor, rise: float, slant: float) -> torch.Tensor:
    """glyphs [N, H, W] on [0, 1] sheared about the centre, in normalised coordinates (x right,
    y down): the ink at (x, y) moves to (x - slant·y, y - rise·x), so rise > 0 lifts the
    right-hand side and slant > 0 leans the top to the right."""
    n, h, w = glyphs.shape
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx + slant * gy, gy + rise * gx], -1)[None].expand(n, h, w, 2)
    return F.grid_sample(glyphs[:, None], grid, align_corners=False)[:, 0]


def soft_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = (F.avg_pool2d(t[:, None], 5, 1, 2)[:, 0] for t in (a, b))
    return float((a * b).sum() / ((a + b - a * b).sum() + 1e-6))


def fit(content: torch.Tensor, glyphs: torch.Tensor) -> tuple[float, float, float]:
    """The (rise, slant) on the RISES × SLANTS grid whose shear of ``content`` best overlaps
    ``glyphs`` (both [N, H, W], the same characters), and that overlap."""
    best = (-1.0, 0.0, 0.0)
    for rise in RISES:
        for slant in SLANTS:
            score = soft_iou(shear(content, float(rise), float(slant)), glyphs)
            if score > best[0]:
                best = (score, float(rise), float(slant))
    return best[1], best[2], best[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.geometry")
    p.add_argument("--chars", type=int, default=120, help="the first N training characters")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bank = banklib.shipped(args.threads)
    chars = bank.train_chars[: args.chars]
    content = torch.from_numpy(bank.content[chars, 0].astype(np.float32) / 255.0)
    rows = []
    for f, name in enumerate(bank.fonts):
        have = bank.have[f, chars]
        glyphs = torch.from_numpy(bank.glyphs[f, chars[have]].astype(np.float32) / 255.0)
        rows.append((bank.sides[f], name, *fit(content[have], glyphs)))
    print(f"{'side':8s} {'font':26s} {'rise':>6s} {'slant':>6s} {'soft IoU':>8s}")
    for side, name, rise, slant, score in sorted(rows, key=lambda r: (r[2], r[3], r[0])):
        print(f"{side:8s} {name:26s} {rise:+6.2f} {slant:+6.2f} {score:8.3f}")
    for side in ("train", "heldout"):
        rises = [r[2] for r in rows if r[0] == side]
        print(f"{side}: rise {min(rises):+.2f} … {max(rises):+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

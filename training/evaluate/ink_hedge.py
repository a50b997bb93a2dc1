"""Is a held-out hand's L1 lost to stroke weight or to where its strokes go? Writes the card's
headline cell (held-out fonts × held-out characters, k = 4, the card's reference draw) and
prints, per held-out font, the output's ink mass against the truth's, L1 and ink IoU of the
output thickened or thinned (``thicken``: the restyle's partial 3 × 3 dilation or erosion by
``--amounts``), and L1 through a monotone map of the output fitted on that font's own truths
(an oracle: fitted on the first half of its characters, scored on the second half;
``ref_draws.fit_calibration``).

    .venv/bin/python -m training.evaluate.ink_hedge models/glyph-style/1

If a font's output carries less ink than its truth and thickening it raises L1, the model is
hedging: where it is unsure of a stroke's place, leaving it faint costs less L1 than drawing it
in the wrong place, and no map of the output, per pixel or per stroke, buys that L1 back. Needs
the fonts of training/data/fetch_fonts.sh (the glyph bank is rendered or read from .cache/). A
measurement, not part of the training job."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from training.data import bank as banklib
from training.evaluate.ref_draws import fit_calibration, frame, load
from training.evaluate.style import metrics, write_cell
from training.style.augment import stroke_weight


def thicken(glyphs: np.ndarray, amount: float) -> np.ndarray:
    """``glyphs`` ([N, H, W] in [0, 1]) moved by ``amount`` (capped at ±1) towards their 3 × 3
    grey dilation (> 0) or erosion (< 0), the restyle's stroke weight
    (``augment.stroke_weight``); 0 leaves them as they are."""
    if amount == 0:
        return glyphs
    a = torch.tensor([max(-1.0, min(amount, 1.0))])
    out: np.ndarray = stroke_weight(torch.from_numpy(glyphs)[None], a)[0].numpy()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.ink_hedge")
    p.add_argument("dir", type=Path)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--amounts", type=float, nargs="+", default=[-0.25, 0.25, 0.5, 1.0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    bank = banklib.shipped(args.threads, frame(args.dir))
    generate = load(args.dir, bank, args.threads)
    fonts = bank.font_index("heldout")
    pred, truth, written = write_cell(bank, generate, fonts, bank.heldout_chars, args.k, 0)
    amounts = [0.0, *args.amounts]
    print("font: ink output/truth; L1 (IoU) at each thickening; L1 half, L1 oracle map")
    for f in fonts:
        mine = written == f
        p_, t_ = pred[mine], truth[mine]
        cells = []
        for a in amounts:
            m = metrics(thicken(p_, a), t_)
            cells.append(f"{a:+.2f} {m['l1']:.4f} ({m['iou']:.3f})")
        half = len(p_) // 2
        knots, values = fit_calibration(p_[:half], t_[:half])
        mapped = np.interp(p_[half:], knots, values).astype(np.float32)
        plain, oracle = metrics(p_[half:], t_[half:])["l1"], metrics(mapped, t_[half:])["l1"]
        print(
            f"{bank.fonts[f]}: ink {p_.mean() / t_.mean():.3f}; {'; '.join(cells)}; "
            f"second half {plain:.4f}, oracle map {oracle:.4f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

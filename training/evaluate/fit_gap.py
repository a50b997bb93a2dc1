"""Does a model underfit its training fonts, or fail to generalise to new characters? Scores
the card's seen fonts (every training font but the content fonts) at k = 4 on training
characters (every ``--stride``-th: glyphs the model was trained on) and on held-out characters
(the first ``--chars``), with the card's reference draw and group weighting, and prints each
font's SSIM on both.

    .venv/bin/python -m training.evaluate.fit_gap models/glyph-style/1

If a font's SSIM on its training characters is already under the card's seen-fonts target
(0.62), no better generalisation to new characters reaches the target for it: the network has
not fitted that style. Needs the fonts of training/data/fetch_fonts.sh (the glyph bank is
rendered or read from .cache/). A measurement, not part of the training job."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.data import bank as banklib
from training.evaluate.ref_draws import frame, load
from training.evaluate.style import group_weights, metrics, seen_fonts, write_cell


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.fit_gap")
    p.add_argument("dir", type=Path)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--stride", type=int, default=20, help="every Nth training character")
    p.add_argument("--chars", type=int, default=100, help="the first N held-out characters")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    bank = banklib.shipped(args.threads, frame(args.dir))
    generate = load(args.dir, bank, args.threads)
    fonts = seen_fonts(bank)
    cells = {
        "training chars": bank.train_chars[:: args.stride],
        "held-out chars": bank.heldout_chars[: args.chars],
    }
    per_font: dict[str, list[float]] = {bank.fonts[f]: [] for f in fonts}
    for label, chars in cells.items():
        pred, truth, written = write_cell(bank, generate, fonts, chars, args.k, 0)
        m = metrics(pred, truth, group_weights(bank, written))
        print(
            f"{label} ({len(chars)}), group-weighted: "
            + ", ".join(f"{key} {v:.4f}" for key, v in m.items()),
            flush=True,
        )
        for f in fonts:
            mine = written == f
            per_font[bank.fonts[f]].append(metrics(pred[mine], truth[mine])["ssim"])
    print(f"{'font':26s} {'SSIM training chars':>20s} {'held-out chars':>15s}")
    for name, (fit, new) in sorted(per_font.items(), key=lambda kv: kv[1][0]):
        print(f"{name:26s} {fit:20.3f} {new:15.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

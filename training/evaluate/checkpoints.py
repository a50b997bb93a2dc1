"""Score trained checkpoints on the card's headline cell (and with ``--seen`` the seen-fonts
cell) over reference draws, with PyTorch forward passes: ``training.evaluate.proxy``'s scoring
for runs trained elsewhere, without the job's export and full grid (11 minutes a run on 2
cores). A checkpoint is a file ``training.style.portable train`` wrote or one in the job's
cache (``.cache/style/<key>.pt``; ``python -m training.style.recover DIR`` writes a shipped
version's there). Draw 0 is the card's draw.

    .venv/bin/python -m training.evaluate.checkpoints .gpu/runs/e.pt .cache/style/KEY.pt --seen

A measurement, not part of the training job; it renders the glyph bank first unless
.cache/glyphs holds it."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from training.data import bank as banklib
from training.data.bank import GlyphBank
from training.evaluate.proxy import score
from training.style.train import load_checkpoint


def scores(
    paths: list[Path], bank: GlyphBank, draws: int, seen: bool
) -> dict[Path, dict[str, dict[str, float]]]:
    """Each checkpoint's cells (``proxy.score``: the headline, each held-out font, and with
    ``seen`` the seen-fonts cell), each the mean over ``draws`` reference draws at k = 4."""
    with torch.no_grad():
        return {path: score(load_checkpoint(path, bank), bank, draws, seen) for path in paths}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.checkpoints")
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--seen", action="store_true", help="also the seen-fonts cell")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    missing = [str(c) for c in args.checkpoints if not c.is_file()]
    if missing:
        p.error(f"no such checkpoint: {', '.join(missing)}")
    torch.set_num_threads(args.threads)
    bank = banklib.shipped(args.threads)
    for path in args.checkpoints:  # each printed as it is scored
        for name, m in scores([path], bank, args.draws, args.seen)[path].items():
            print(f"{path}: {name}: {m}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the synthetic-style augmentation cost the seen fonts, and does a plain ending win it
back? Fine-tunes a trained glyph-style checkpoint for a few steps on the bank's glyphs as
they are (``training.style.train.train`` with no restyle, at a low learning rate on its
warm-up and cosine), and scores k = 4 on the card's headline cell (held-out fonts × held-out
characters) and its seen-fonts cell (``training.evaluate.style.seen_fonts``, each
near-duplicate group weighing once), before and after, with PyTorch forward passes and the
card's reference draw.

    .venv/bin/python -m training.evaluate.plain_finetune .cache/style/<key>.pt --steps 400

The checkpoint is the one `make train-style` caches (its key is the card's
metrics.training.checkpoint). A measurement, not part of the training job.

On 2026-11-30, with 95b12c4's version of this tool (its own copy of the training step, no
warm-up; the card's seen cell was then a draw of five training fonts), the 0.75-frame
checkpoint (9a3ade3de1421f3c), --steps 400 --lr 2e-4 (340 s): the headline cell went from L1
0.1235 / SSIM 0.493 / IoU 0.501 to 0.1303 / 0.460 / 0.486, the five seen fonts from 0.1059 /
0.556 / 0.525 to 0.1042 / 0.563 / 0.531. A plain ending bought seen fonts 0.007 of SSIM for
0.033 on held-out fonts: not the way to the seen-font target."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from training.data import bank as banklib
from training.data.bank import GlyphBank
from training.evaluate import proxy
from training.style.model import StyleTransfer
from training.style.train import TrainConfig, default_bf16, load_checkpoint, train


def report(model: StyleTransfer, bank: GlyphBank, tag: str) -> None:
    """The headline and seen-fonts cells at k = 4, the card's reference draw (the encoder's
    code as it is; the card weighs the headline's glyphs equally and the seen fonts' groups)."""
    scores = proxy.score(model, bank, draws=1, seen=True)
    for name in ("headline", "seen fonts"):
        print(tag, name, scores[name], flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.plain_finetune")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bank = banklib.shipped(args.threads)
    model = load_checkpoint(args.checkpoint, bank)
    report(model, bank, "before")
    started = time.time()
    plain = TrainConfig(
        steps=args.steps,
        lr=args.lr,
        restyle=None,
        seed=123,
        log_every=100,
        bf16=default_bf16("cpu"),
    )
    train(model, bank, plain, log=lambda row: print(row, flush=True))
    print(f"fine-tuned {args.steps} steps in {time.time() - started:.0f}s", flush=True)
    report(model, bank, f"after {args.steps} plain steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

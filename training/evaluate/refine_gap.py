"""How far is the encoder's style code from the best code for the generator? For each font of
the card's headline cell (held-out fonts × held-out characters, k = 4, the card's reference
draw), starts from the encoder's code and descends the glyph loss of the generator's redraw of
the references with respect to the code alone (Adam, the generator frozen), then scores the
targets with the refined code. What it gains is the most a better encoder, or a learned
forward-only refinement of the code, could win with this generator; serving stays forward
passes only (ONNX Runtime computes no gradients), so this is a measurement, not a serving path.

    .venv/bin/python -m training.evaluate.refine_gap .cache/style/<key>.pt --steps 100

The checkpoint is the one `make train-style` caches (the card's metrics.training.checkpoint).
The targets are never seen by the refinement, so what it gains is style, not a fit to them.

On 2026-12-01, on the SSIM-1.0 checkpoint (aa9b53e0bfcf4528), --steps 100 --lr 0.05 (~3 min,
the same figures twice): the references' own L1 went from 0.1088 to 0.0981, the targets' from
0.1232 / SSIM 0.494 / IoU 0.503 to 0.1243 / 0.492 / 0.507 (Smiley Sans 0.1007 → 0.0969, LXGW
WenKai 0.0954 → 0.0991, Zhi Mang Xing 0.1445 → 0.1485). The best code for four references is
no better a code for the style: the encoder is not what holds the headline back, the
generator's use of one pooled code is, so a learned refinement pass was not built."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from training.data import bank as banklib
from training.data.bank import GlyphBank
from training.evaluate.style import metrics, write_cell
from training.style.losses import glyph_loss
from training.style.model import StyleTransfer
from training.style.train import TrainConfig, load_checkpoint, unit


def refined_writer(  # type: ignore[no-untyped-def]
    model: StyleTransfer, bank: GlyphBank, steps: int, lr: float, reference_l1: list[float]
):
    """A ``Generate`` whose code is the encoder's, refined ``steps`` times on the references;
    appends each call's final reference L1 to ``reference_l1``."""
    weights = TrainConfig().weights

    def generate(refs: np.ndarray, ref_chars: np.ndarray, targets: np.ndarray) -> np.ndarray:
        refs_t = torch.from_numpy(refs.astype(np.float32))
        ref_content = unit(bank.content[ref_chars])
        ref_struct = torch.from_numpy(bank.struct[ref_chars])
        with torch.no_grad():
            mu, _ = model.encoder(refs_t[None], ref_content[None])
        z = mu.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for step in range(steps + 1):
            redraw = model.generator(ref_content, ref_struct, z.expand(len(ref_chars), -1))
            loss, parts = glyph_loss(redraw, refs_t, weights)
            if step == steps:
                reference_l1.append(parts["l1"])
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return (
                model.generator(
                    unit(bank.content[targets]),
                    torch.from_numpy(bank.struct[targets]),
                    z.detach().expand(len(targets), -1),
                )
                .numpy()
                .astype(np.float32)
            )

    return generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.refine_gap")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bank = banklib.shipped(args.threads)
    model = load_checkpoint(args.checkpoint, bank)
    for p_ in model.parameters():
        p_.requires_grad_(False)
    for steps in (0, args.steps):
        ref_l1: list[float] = []
        writer = refined_writer(model, bank, steps, args.lr, ref_l1)
        heldout = bank.font_index("heldout")
        pred, truth, written = write_cell(bank, writer, heldout, bank.heldout_chars, args.k, 0)
        per_font = {
            bank.fonts[f]: round(metrics(pred[written == f], truth[written == f])["l1"], 4)
            for f in heldout
        }
        m = metrics(pred, truth)
        print(
            f"refined {steps} steps: references L1 {np.mean(ref_l1):.4f}; targets "
            f"{ {key: round(v, 4) for key, v in m.items()} }, per-font L1 {per_font}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

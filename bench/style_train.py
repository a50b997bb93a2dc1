"""Seconds per glyph-style training step, by generator width and precision, on this machine.

Times `training.style.train` itself (batch 32, the restyle augmentation, the real glyph bank of
`make train-style`'s split) for a few steps of each configuration and prints the median step,
the first one left out (it pays for allocation and oneDNN's kernel choice). bfloat16 autocast
is fast only where oneDNN has bfloat16 kernels (`training.style.train.native_bf16`: AVX-512 or
AMX); on an AVX2-only CPU each bfloat16 step takes tens of seconds, so keep `--steps` small.

Run: `make fonts` once, then `.venv/bin/python -m bench.style_train` (a few minutes; the glyph
bank renders first, ~2 min, unless .cache/glyphs holds it). Not part of `make bench`."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from training.data import bank as banklib
from training.style.train import TrainConfig, native_bf16, new_model, train


def step_seconds(bank: banklib.GlyphBank, width: int, bf16: bool, steps: int) -> list[float]:
    cfg = replace(TrainConfig(), steps=steps, width=width, bf16=bf16, log_every=1)
    torch.manual_seed(0)
    history = train(new_model(bank, cfg), bank, cfg, log=lambda row: None)
    ends = [row["seconds"] for row in history]
    return [b - a for a, b in zip([0.0, *ends[:-1]], ends, strict=True)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.style_train")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 48])
    p.add_argument("--steps", type=int, default=5, help="per configuration, the first dropped")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bank = banklib.shipped(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, cpu capability "
        f"{torch.backends.cpu.get_cpu_capability()}, native bfloat16: {native_bf16('cpu')}",
        flush=True,
    )
    print(f"{'width':>5}  {'precision':<9}  {'s/step':>7}  steps (s)", flush=True)
    for width in args.widths:
        for bf16 in (False, True):
            times = step_seconds(bank, width, bf16, args.steps)
            print(
                f"{width:>5}  {'bfloat16' if bf16 else 'float32':<9}  "
                f"{statistics.median(times[1:]):>7.2f}  {[round(t, 2) for t in times]}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

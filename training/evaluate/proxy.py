"""A screen for training options at a fraction of the job's cost. Trains a small glyph-style
network from scratch on `make train-style`'s glyph bank once per variant (same seed, same
steps; a variant differs from the default configuration only in the options it names), and
scores each at k = 4 on the card's headline cell (held-out fonts × held-out characters, glyphs
weighed equally, per font too) over reference draws, draw 0 being the card's, with PyTorch
forward passes (the exported graphs agree with them to ~1e-5). ``--seen`` also scores the
seen-fonts cell (each near-duplicate group weighed once, as the card's). ``--seeds N`` trains
each variant N times (seeds 0 … N − 1 added to its own) and also prints each figure's mean ±
standard deviation over them: one run's figures move by up to ~0.01 on the headline's L1 with
the seed or the float precision alone (docs/decisions.md), more than most options do.

    .venv/bin/python -m training.evaluate.proxy --width 32 --steps 3000 base blend=0.3

A variant is ``base`` or comma-separated ``option=value`` pairs of ``TrainConfig`` (``blend``,
``focus``, ``kl_weight``, ``lr``, ...) or of its ``Restyle`` (``restyle.p``, ``restyle.slant``,
...). A small, short run does not predict a full one's figures, only which way an option
moves them; what the screen finds wants the full job (docs/decisions.md). A measurement, not
part of the training job; it renders the glyph bank first unless .cache/glyphs holds it."""

from __future__ import annotations

import argparse
import time
from dataclasses import fields, replace
from typing import Any

import numpy as np
import torch

from training.data import bank as banklib
from training.data.bank import GlyphBank
from training.evaluate.refine_gap import refined_writer
from training.evaluate.style import group_weights, metrics, seen_fonts, write_cell
from training.style.augment import Restyle, with_options
from training.style.model import StyleTransfer
from training.style.train import TrainConfig, default_bf16, new_model, train


def variant(text: str, base: TrainConfig) -> TrainConfig:
    """``base`` with the options ``text`` names (``base`` alone: none)."""
    if text == "base":
        return base
    cfg = base
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            raise SystemExit(f"{pair!r}: want option=number") from None
        if key.startswith("restyle."):
            try:
                styled = with_options(cfg.restyle or Restyle(), pair.removeprefix("restyle."))
            except ValueError as bad:
                raise SystemExit(str(bad)) from None
            cfg = replace(cfg, restyle=styled)
            continue
        if key not in {f.name for f in fields(TrainConfig)} or key in ("restyle", "weights"):
            raise SystemExit(f"{key!r}: not a TrainConfig option this screen varies")
        kind = type(getattr(cfg, key))
        change: dict[str, Any] = {key: bool(number) if kind is bool else kind(number)}
        cfg = replace(cfg, **change)
    return cfg


def score(
    model: StyleTransfer, bank: GlyphBank, draws: int, seen: bool
) -> dict[str, dict[str, float]]:
    """The headline cell's metrics (and per held-out font; and with ``seen`` the seen-fonts
    cell's), each the mean over ``draws`` reference draws at k = 4."""
    model.eval()
    writer = refined_writer(model, bank, 0, 0.0, [])  # the encoder's own code
    cells = {"headline": bank.font_index("heldout")}
    if seen:
        cells["seen fonts"] = seen_fonts(bank)
    rows: dict[str, list[dict[str, float]]] = {}
    for draw in range(draws):
        for name, fonts in cells.items():
            pred, truth, written = write_cell(bank, writer, fonts, bank.heldout_chars, 4, draw)
            weights = group_weights(bank, written) if name == "seen fonts" else None
            rows.setdefault(name, []).append(metrics(pred, truth, weights))
            if name == "headline":
                for f in fonts:
                    mine = written == f
                    rows.setdefault(bank.fonts[f], []).append(metrics(pred[mine], truth[mine]))
    return {
        name: {key: round(float(np.mean([m[key] for m in ms])), 4) for key in ms[0]}
        for name, ms in rows.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.proxy")
    p.add_argument("variants", nargs="+", help="base, or option=value[,option=value...]")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--draws", type=int, default=2)
    p.add_argument("--seen", action="store_true", help="also the seen-fonts cell")
    p.add_argument("--seeds", type=int, default=1, help="runs per variant, each its own seed")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    base = TrainConfig(steps=args.steps, width=args.width, bf16=default_bf16("cpu"), log_every=250)
    configs = [variant(v, base) for v in args.variants]  # every variant parses before any trains
    torch.set_num_threads(args.threads)
    bank = banklib.shipped(args.threads)
    if args.seeds < 1:
        p.error("--seeds: at least 1")
    for text, base_cfg in zip(args.variants, configs, strict=True):
        runs = []
        for offset in range(args.seeds):
            cfg = replace(base_cfg, seed=base_cfg.seed + offset)
            tag = text if args.seeds == 1 else f"{text} (seed {cfg.seed})"
            torch.manual_seed(cfg.seed)
            started = time.time()
            model = new_model(bank, cfg)
            train(model, bank, cfg, log=lambda row, tag=tag: print(f"{tag}: {row}", flush=True))
            print(f"{tag}: {cfg.steps} steps in {time.time() - started:.0f} s", flush=True)
            runs.append(score(model, bank, args.draws, args.seen))
            for name, m in runs[-1].items():
                print(f"{tag}: {name}: {m}", flush=True)
        if args.seeds > 1:
            for name, spread in over_seeds(runs).items():
                print(f"{text} over {args.seeds} seeds: {name}: {spread}", flush=True)
    return 0


def over_seeds(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, str]]:
    """Each cell's (and font's) metrics as mean ± standard deviation over runs of different
    seeds (``score``'s output, one per run)."""
    return {
        name: {
            key: f"{np.mean([r[name][key] for r in runs]):.4f} ± "
            f"{np.std([r[name][key] for r in runs]):.4f}"
            for key in cell
        }
        for name, cell in runs[0].items()
    }


if __name__ == "__main__":
    raise SystemExit(main())

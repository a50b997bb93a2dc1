"""Why more references barely help glyph-style (issue 52, item 4): how its style encoder pools
references, and what other poolings of the same per-reference codes would give, at inference,
without retraining.

The encoder writes one code per reference (convolutions, a spatial mean, a linear head) and
averages them over K; nothing in it depends on K (no normalisation by K, no attention), so the
code of K references is the mean of the K one-reference codes (printed: the largest difference
between the graph's K-reference code and that mean). Per held-out font this encodes a pool of
``--pool`` of the font's training characters one at a time, then writes the first ``--chars``
held-out characters from codes pooled over k of them (``--draws`` random draws of the k):

* mean pooling (what the graph does) at k = 4, 16, 64 and 256 (256: nearly the font's own
  average code, the most any number of references can give with this pooling);
* the median of the 16 codes (robust to odd references);
* an ensemble: the mean of the outputs from two disjoint halves of 8 (training drew k <= 8);

and prints raw L1 (and the rendered output's, ``app.rendering.render`` at 64 px), per font and
method, the mean over the draws; and each font's code spread (mean distance of a one-reference
code from their mean) beside the mean code's norm.

    .venv/bin/python -m training.evaluate.ref_pooling models/glyph-style/1 --draws 3

A measurement, not part of the training job."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.rendering import render
from training.data import bank as banklib
from training.evaluate.ref_draws import frame
from training.evaluate.style import _refs
from training.style.job import OnnxStyle

MEAN_KS = (4, 16, 64, 256)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.ref_pooling")
    p.add_argument("directory", type=Path, nargs="?", default=Path("models/glyph-style/1"))
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--pool", type=int, default=256)
    p.add_argument("--chars", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    bank = banklib.shipped(args.threads, frame(args.directory))
    model = OnnxStyle(args.directory, bank, args.threads)

    def encode(refs: np.ndarray, chars: np.ndarray) -> np.ndarray:
        content = bank.content[chars].astype(np.float32) / 255.0
        style: np.ndarray = model.enc.run(None, {"refs": refs[None], "ref_content": content[None]})[
            0
        ]
        return style

    def write(style: np.ndarray, targets: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(targets), 256):
            t = targets[i : i + 256]
            feeds = {
                "content": bank.content[t].astype(np.float32) / 255.0,
                "struct": bank.struct[t],
                "style": np.repeat(style, len(t), axis=0),
            }
            out.append(model.gen.run(None, feeds)[0])
        return np.concatenate(out)

    summary: dict[str, dict[str, list[float]]] = {}
    for f in bank.font_index("heldout"):
        name = bank.fonts[f]
        targets = bank.heldout_chars[bank.have[f, bank.heldout_chars]][: args.chars]
        truth = bank.glyphs[f, targets].astype(np.float32) / 255.0
        pool = _refs(bank, f, args.pool, np.random.default_rng([99, f]), targets)
        refs = bank.glyphs[f, pool].astype(np.float32) / 255.0
        codes = np.concatenate([encode(refs[i : i + 1], pool[i : i + 1]) for i in range(len(pool))])
        joint = encode(refs[:16], pool[:16])
        gap = float(np.abs(joint - codes[:16].mean(0, keepdims=True)).max())
        spread = float(np.linalg.norm(codes - codes.mean(0), axis=1).mean())
        print(
            f"{name}: K-reference code vs mean of one-reference codes, max |diff| {gap:.2e}; "
            f"code spread {spread:.2f}, mean code norm {np.linalg.norm(codes.mean(0)):.2f}",
            flush=True,
        )
        methods = poolings(codes, lambda style: write(style, targets))  # noqa: B023
        for label, method in methods.items():
            k = 16 if "k16" in label else int(label.split("k")[-1])
            rows = []
            for draw in range(args.draws if k < len(pool) else 1):
                idx = np.random.default_rng([draw, k]).choice(len(pool), k, replace=False)
                out = method(idx)
                drawn = np.stack([render(g, bank.size) for g in out])
                rows.append((np.abs(out - truth).mean(), np.abs(drawn - truth).mean()))
            raw, rendered = np.mean(rows, axis=0)
            summary.setdefault(label, {}).setdefault("raw", []).append(float(raw))
            summary[label].setdefault("rendered", []).append(float(rendered))
            print(f"  {label:18s} L1 raw {raw:.4f} rendered {rendered:.4f}", flush=True)
    print("mean over fonts:")
    for label, row in summary.items():
        print(
            f"  {label:18s} L1 raw {np.mean(row['raw']):.4f} "
            f"rendered {np.mean(row['rendered']):.4f}"
        )
    return 0


def poolings(
    codes: np.ndarray, write: Callable[[np.ndarray], np.ndarray]
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each method: the chosen references' indices → the outputs (``write``: a pooled code
    [1, D] → the targets' glyphs)."""

    def mean(idx: np.ndarray) -> np.ndarray:
        return write(codes[idx].mean(0, keepdims=True))

    def median(idx: np.ndarray) -> np.ndarray:
        return write(np.median(codes[idx], 0, keepdims=True))

    def halves(idx: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.mean([mean(idx[j::2]) for j in range(2)], axis=0)
        return out

    return {
        **{f"mean k{k}": mean for k in MEAN_KS if k <= len(codes)},
        "median k16": median,
        "ensemble 2x8 k16": halves,
    }


if __name__ == "__main__":
    raise SystemExit(main())

"""The style grid's headline cell (held-out fonts × held-out characters) for one or more
exported glyph-style directories, over several draws of the references: how much of a
difference between two models is the choice of references. Draw 0 is the draw the training
job's card uses. ``--served`` also scores the glyphs as served (``app.rendering.render``:
contour anti-aliasing at the model's size); ``--refit FLOOR`` also scores them refitted to the
served frame (values under FLOOR dropped, then ``app.glyphs.fit``: ink box to the em ratio,
centred), as every reference and truth glyph is; ``--calibrate`` also scores them through a
monotone map of the output fitted to minimise L1 on training fonts (``calibration``);
``--contrast A`` also scores them through a fixed
contrast curve about 0.5 (``clip((p - 0.5) * A + 0.5, 0, 1)``, repeatable);
``--loo`` also scores the median of the outputs written from all k references and from each
k - 1 of them (``leave_one_out``: an ensemble over reference subsets, k + 1 passes).
``--per-font`` also summarises each held-out font's figures over the draws.
``--seen`` scores the seen-fonts cell instead (every training font but the content fonts ×
the held-out characters, each near-duplicate group weighed once, as the card's). Each
directory is scored in the frame its card was trained in (``signature.em_ratio``); models of
different frames compare through their ratios to the content copy in their own frame
(``l1/copy``, ``ssim/copy``, ``iou/copy``).

    .venv/bin/python -m training.evaluate.ref_draws models/glyph-style/1 /tmp/old --draws 4

A directory whose graphs take one content font ([T, H, W]) gets the bank's primary content
font. Needs the fonts of training/data/fetch_fonts.sh (the glyph bank is rendered or read
from .cache/). A measurement, not part of the training job."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from app.glyphs import GlyphError, fit
from app.rendering import render
from training.data import bank as banklib
from training.data.bank import GlyphBank
from training.evaluate.style import Generate, group_weights, metrics, seen_fonts, write_cell
from training.style.job import OnnxStyle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.ref_draws")
    p.add_argument("dirs", type=Path, nargs="+")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--served", action="store_true")
    p.add_argument("--refit", type=float, default=None, metavar="FLOOR")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--contrast", type=float, action="append", default=[], metavar="A")
    p.add_argument("--loo", action="store_true", help="also the leave-one-out ensemble")
    p.add_argument("--seen", action="store_true", help="the seen-fonts cell, not the headline")
    p.add_argument(
        "--per-font", action="store_true", help="also each held-out font's figures over the draws"
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    banks: dict[float, GlyphBank] = {}
    models = {}
    calibrations: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d in args.dirs:
        ratio = frame(d)
        if ratio not in banks:
            # the bank (targets, references, content) in the model's frame
            banks[ratio] = banklib.shipped(args.threads, ratio)
        bank = banks[ratio]
        gen = load(d, bank, args.threads)
        models[str(d)] = (gen, bank, ratio)
        if args.calibrate:
            calibrations[str(d)] = calibration(bank, gen, args.k)
            print(f"{d} calibration: {np.round(calibrations[str(d)][1], 3).tolist()}", flush=True)
    copies = {ratio: copy_baseline(bank) for ratio, bank in banks.items()}
    for ratio, m in copies.items():
        print(f"content copy at em ratio {ratio}: {m}", flush=True)
    summarise(score_draws(args, models, copies, calibrations))
    return 0


def score_draws(
    args: argparse.Namespace,
    models: Mapping[str, tuple[Generate, GlyphBank, float]],
    copies: dict[float, dict[str, float]],
    calibrations: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, list[dict[str, float]]]:
    """Each model's (and each variant of its output's) metrics per reference draw, printed as
    they come; with ``--per-font`` also each held-out font's."""
    rows: dict[str, list[dict[str, float]]] = {}
    for draw in range(args.draws):
        for name, (gen, bank, ratio) in models.items():
            fonts = seen_fonts(bank) if args.seen else bank.font_index("heldout")
            pred, truth, written = write_cell(bank, gen, fonts, bank.heldout_chars, args.k, draw)
            weights = group_weights(bank, written) if args.seen else None
            outs = variants(pred, args, ratio, calibrations.get(name))
            if args.loo:
                outs["loo"] = write_cell(
                    bank, leave_one_out(gen), fonts, bank.heldout_chars, args.k, draw
                )[0]
            for label, out in outs.items():
                m = {key: round(v, 4) for key, v in metrics(out, truth, weights).items()}
                if not args.seen:  # the copy baseline is the headline's
                    m.update(
                        {f"{key}/copy": round(m[key] / copies[ratio][key], 4) for key in RELATIVE}
                    )
                rows.setdefault(f"{name} {label}", []).append(m)
                print(f"draw {draw} {name} {label}: {m}", flush=True)
                if args.per_font and not args.seen:
                    for font, fm in per_font(bank, out, truth, written).items():
                        rows.setdefault(f"{name} {label} {font}", []).append(fm)
    return rows


def per_font(
    bank: GlyphBank, out: np.ndarray, truth: np.ndarray, written: np.ndarray
) -> dict[str, dict[str, float]]:
    """The metrics of each font's glyphs in a cell (``written``: the font each was written in)."""
    return {
        bank.fonts[f]: {
            k: round(v, 4) for k, v in metrics(out[written == f], truth[written == f]).items()
        }
        for f in dict.fromkeys(written.tolist())
    }


def summarise(rows: dict[str, list[dict[str, float]]]) -> None:
    """Each row's metrics as mean ± standard deviation over its draws."""
    for name, ms in rows.items():
        summary = {
            key: f"{np.mean([m[key] for m in ms]):.4f} ± {np.std([m[key] for m in ms]):.4f}"
            for key in ms[0]
        }
        print(f"{name} over {len(ms)} draws: {summary}")


RELATIVE = ("l1", "ssim", "iou")  # also reported as a ratio to the content copy in the same frame


def frame(directory: Path) -> float:
    """The em ratio a model was trained in (its card's signature; every card before the field
    existed was trained at 0.84)."""
    card = json.loads((directory / "card.json").read_text())
    return float(card["signature"].get("em_ratio", 0.84))


def load(directory: Path, bank: GlyphBank, threads: int) -> OnnxStyle:
    """The exported model in ``directory`` writing from ``bank`` (in its frame: ``frame``); a
    graph that takes one content font ([T, H, W]) gets the bank's primary content font."""
    gen = OnnxStyle(directory, bank, threads)
    if len(gen.gen.get_inputs()[0].shape) == 3:
        gen.bank = replace(bank, content=np.ascontiguousarray(bank.content[:, 0]))
    return gen


def variants(
    pred: np.ndarray,
    args: argparse.Namespace,
    ratio: float,
    calibrated: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The raw output, and the served (``--served``), refitted (``--refit``), calibrated
    (``--calibrate``: through the map ``calibrated`` holds) and contrasted (``--contrast``)
    versions."""
    out = {"raw": pred}
    if calibrated is not None:
        out["calibrated"] = np.interp(pred, *calibrated).astype(np.float32)
    for gain in args.contrast:
        out[f"contrast {gain:g}"] = np.clip((pred - 0.5) * gain + 0.5, 0.0, 1.0).astype(np.float32)
    if args.served:
        out["served"] = np.stack([render(g, pred.shape[-1]) for g in pred])
    if args.refit is not None:
        out["refit"] = np.stack([refit(g, args.refit, ratio) for g in pred])
    return out


def leave_one_out(generate: Generate) -> Generate:
    """A ``Generate`` writing each target as the per-pixel median of ``generate``'s outputs
    from all the references and from each set of all but one (one reference: itself)."""

    def ensemble(refs: np.ndarray, ref_chars: np.ndarray, targets: np.ndarray) -> np.ndarray:
        every = np.arange(len(refs))
        subsets = [every] + ([np.delete(every, i) for i in every] if len(refs) > 1 else [])
        outs = [generate(refs[s], ref_chars[s], targets) for s in subsets]
        return np.median(outs, axis=0).astype(np.float32)

    return ensemble


def refit(glyph: np.ndarray, floor: float, ratio: float) -> np.ndarray:
    """``glyph`` with values under ``floor`` dropped, fitted to the frame of ``ratio`` (a glyph
    with no ink left is returned as it was)."""
    ink = np.where(glyph < floor, 0.0, glyph).astype(np.float32)
    try:
        return fit(ink, glyph.shape[-1], ratio)
    except GlyphError:
        return glyph


def calibration(
    bank: GlyphBank, generate: Generate, k: int, chars: int = 100, bins: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """A monotone map of the model's output that lowers L1 on training fonts: the seen-fonts
    cell's fonts write the first ``chars`` held-out characters from k references (draw 0); in
    each of ``bins`` equal bins of the output the truth's median (what minimises L1 there),
    then made non-decreasing (isotonic regression over the bins, weighed by their counts).
    Returns (knots, values) for ``np.interp``. Fitted on training fonts' glyphs only (of the
    headline's characters, the first ``chars``), so no held-out font's glyph informs it."""
    pred, truth, _ = write_cell(bank, generate, seen_fonts(bank), bank.heldout_chars[:chars], k, 0)
    return fit_calibration(pred, truth, bins)


def fit_calibration(
    pred: np.ndarray, truth: np.ndarray, bins: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """``calibration``'s fit on outputs ``pred`` and truths ``truth`` (same shape, [0, 1])."""
    p, t = pred.ravel(), truth.ravel()
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    knots, medians, counts = [], [], []
    for b in range(bins):
        inside = which == b
        if inside.any():
            knots.append(float(np.median(p[inside])))
            medians.append(float(np.median(t[inside])))
            counts.append(int(inside.sum()))
    values = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(
        knots, medians, sample_weight=counts
    )
    return np.asarray(knots), np.asarray(values)


def copy_baseline(bank: GlyphBank) -> dict[str, float]:
    """The headline cell's content copy (the primary content font) in ``bank``'s frame: models
    trained in different frames compare through their ratio to it."""
    truth, copy = [], []
    for f in bank.font_index("heldout"):
        targets = bank.heldout_chars[bank.have[f, bank.heldout_chars]]
        truth.append(bank.glyphs[f, targets])
        copy.append(bank.content[targets, 0])

    def scale(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.float32) / 255.0

    return {key: round(v, 4) for key, v in metrics(scale(copy), scale(truth)).items()}


if __name__ == "__main__":
    raise SystemExit(main())

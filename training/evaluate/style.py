"""The style-transfer evaluation grid, metrics and baselines (computed in the same run, on
the same split):

* grid: unseen fonts × unseen characters (the headline), seen fonts × unseen characters,
  unseen fonts × seen characters; k ∈ {1, 4, 8} references, always drawn from the font's
  training characters with a fixed seed. The seen fonts are every training font but the
  content fonts (``seen_fonts``), and that cell weighs each near-duplicate group once, as
  training draws them: a draw of five fonts read SSIM 0.556 and one of eight 0.709 on the same
  model (docs/decisions.md);
* metrics on [0, 1] ink: L1, RMSE, SSIM (scikit-image, gaussian weights, σ = 1.5), ink IoU
  (threshold 0.5), content accuracy of the in-house classifier, style retrieval top-1;
* baselines: the (primary) content font copied; the nearest training font by L1 on the
  references (for a seen font, the nearest *other* training font); the oracle best training
  font (chosen on the targets themselves).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from skimage.metrics import structural_similarity

from training.data import fonts as fontlib
from training.data.bank import GlyphBank

Generate = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# (ref glyphs [K,H,W], ref char indices [K], target char indices [T]) -> glyphs [T,H,W]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        structural_similarity(
            a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def metrics(
    pred: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, float]:
    """Mean metrics over [N, H, W] pairs in [0, 1]; ``weights`` [N] weighs the glyphs (equal
    by default)."""
    diff = pred - truth
    p, t = pred > 0.5, truth > 0.5
    union = (p | t).sum(axis=(1, 2))
    iou = np.where(union > 0, (p & t).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)
    per_glyph = {
        "l1": np.abs(diff).mean(axis=(1, 2)),
        "rmse": np.sqrt((diff**2).mean(axis=(1, 2))),
        "ssim": np.array([ssim(a, b) for a, b in zip(pred, truth, strict=True)]),
        "iou": iou,
    }
    return {key: float(np.average(v, weights=weights)) for key, v in per_glyph.items()}


def seen_fonts(bank: GlyphBank) -> list[int]:
    """The seen-fonts cell's fonts: every training font except the content fonts, whose
    glyphs the generator is given (copying them is not writing in a style)."""
    return [f for f in bank.font_index("train") if bank.fonts[f] not in fontlib.CONTENTS]


def group_weights(bank: GlyphBank, fonts: np.ndarray) -> np.ndarray:
    """Per-glyph weights (glyph i written in ``fonts[i]``) under which each near-duplicate
    group weighs the same, and within a group each font: Noto Sans's seven weights count as
    one style, as in training's episodes."""
    groups: dict[str, set[int]] = {}
    for f in np.unique(fonts).tolist():
        groups.setdefault(bank.groups[f], set()).add(f)
    count = Counter(fonts.tolist())
    return np.array(
        [1.0 / (count[f] * len(groups[bank.groups[f]]) * len(groups)) for f in fonts.tolist()]
    )


@dataclass
class Cell:
    name: str
    fonts: list[int]
    targets: np.ndarray  # char indices
    by_group: bool = False  # weigh each near-duplicate group once (else each glyph)


def _refs(
    bank: GlyphBank, font: int, k: int, rng: np.random.Generator, exclude: np.ndarray
) -> np.ndarray:
    pool = np.setdiff1d(bank.train_chars[bank.have[font, bank.train_chars]], exclude)
    return np.sort(rng.choice(pool, size=k, replace=False))


def write_font(
    bank: GlyphBank, generate: Generate, font: int, chars: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One font's case of the grid: k references drawn with ``seed`` from its training
    characters, and the characters of ``chars`` it has written from them. Returns the
    references, their characters, the targets, the output and the truth."""
    targets = chars[bank.have[font, chars]]
    ref_chars = _refs(bank, font, k, np.random.default_rng([seed, font, k]), targets)
    refs = bank.glyphs[font, ref_chars].astype(np.float32) / 255.0
    pred = generate(refs, ref_chars, targets)
    truth = bank.glyphs[font, targets].astype(np.float32) / 255.0
    return refs, ref_chars, targets, pred, truth


def write_cell(
    bank: GlyphBank, generate: Generate, fonts: list[int], chars: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``write_font`` over ``fonts``, concatenated: the outputs, the truths and the font each
    glyph was written in (for ``group_weights`` or per-font figures)."""
    cases = [write_font(bank, generate, f, chars, k, seed) for f in fonts]
    written = np.repeat(fonts, [len(c[2]) for c in cases])
    return np.concatenate([c[3] for c in cases]), np.concatenate([c[4] for c in cases]), written


def nearest_font(
    bank: GlyphBank, refs_glyphs: np.ndarray, ref_chars: np.ndarray, train_fonts: list[int]
) -> list[int]:
    """Training fonts ordered by mean L1 between their glyphs of the reference characters and
    the references (fonts lacking a reference character rank last)."""
    scores = []
    for f in train_fonts:
        if not bank.have[f, ref_chars].all():
            scores.append(np.inf)
            continue
        g = bank.glyphs[f, ref_chars].astype(np.float32) / 255.0
        scores.append(float(np.abs(g - refs_glyphs).mean()))
    return [train_fonts[i] for i in np.argsort(scores)]


def font_glyphs(bank: GlyphBank, ranked: list[int], targets: np.ndarray) -> np.ndarray:
    """Each target from the first font in ``ranked`` that has it (content font otherwise)."""
    out = bank.content[targets, 0].astype(np.float32) / 255.0
    for j, c in enumerate(targets):
        for f in ranked:
            if bank.have[f, c]:
                out[j] = bank.glyphs[f, c] / 255.0
                break
    return out


def evaluate(
    bank: GlyphBank,
    generate: Generate,
    classify: Callable[[np.ndarray], np.ndarray] | None,
    ks: tuple[int, ...] = (1, 4, 8),
    n_seen_chars: int = 400,
    seed: int = 0,
    log=print,
    judged_ks: tuple[int, ...] | None = None,
    cells: tuple[str, ...] | None = None,
) -> tuple[dict, dict]:
    """The grid's metrics and baselines, plus samples for the contact sheets. Content accuracy,
    style retrieval and the oracle font are computed at the ks of ``judged_ks`` (by default
    k = 4, or the one k of ``ks``; ``classify`` may be None where none is judged); ``cells``
    names the cells to score (all three by default)."""
    if judged_ks is None:
        judged_ks = (4,) if 4 in ks or len(ks) != 1 else ks
    rng = np.random.default_rng(seed)
    heldout_fonts = bank.font_index("heldout")
    train_fonts = bank.font_index("train")
    seen_chars = np.sort(
        rng.choice(bank.train_chars, size=min(n_seen_chars, bank.n_train_chars // 2), replace=False)
    )
    grid = [
        Cell("unseen_fonts_unseen_chars", heldout_fonts, bank.heldout_chars),
        Cell("seen_fonts_unseen_chars", seen_fonts(bank), bank.heldout_chars, by_group=True),
        Cell("unseen_fonts_seen_chars", heldout_fonts, seen_chars),
    ]
    results: dict = {}
    sheets: dict = {}
    for cell in grid:
        if not cell.fonts or (cells is not None and cell.name not in cells):
            continue
        results[cell.name] = {}
        for k in ks:
            preds, truths, copies, nearest, chars, fonts_of = [], [], [], [], [], []
            per_font = {}
            for f in cell.fonts:
                refs, ref_chars, targets, pred, truth = write_font(
                    bank, generate, f, cell.targets, k, seed
                )
                copy = bank.content[targets, 0].astype(np.float32) / 255.0
                # a seen font is its own nearest training font: rank the others instead
                others = [t for t in train_fonts if t != f]
                near = font_glyphs(bank, nearest_font(bank, refs, ref_chars, others)[:3], targets)
                preds.append(pred)
                truths.append(truth)
                copies.append(copy)
                nearest.append(near)
                chars.append(targets)
                fonts_of.append(np.full(len(targets), f))
                per_font[bank.fonts[f]] = metrics(pred, truth)
                if cell.name == "unseen_fonts_unseen_chars" and k == 4:
                    sheets[bank.fonts[f]] = {
                        "refs": refs,
                        "truth": truth[:12],
                        "pred": pred[:12],
                        "copy": copy[:12],
                        "nearest": near[:12],
                    }
            pred, truth = np.concatenate(preds), np.concatenate(truths)
            char_idx, font_idx = np.concatenate(chars), np.concatenate(fonts_of)
            w = group_weights(bank, font_idx) if cell.by_group else None
            row = {
                "model": metrics(pred, truth, w),
                "content_copy": metrics(np.concatenate(copies), truth, w),
                "nearest_font": metrics(np.concatenate(nearest), truth, w),
                "per_font": per_font,
                "glyphs": len(pred),
                "weighting": "near-duplicate groups" if cell.by_group else "glyphs",
            }
            if k in judged_ks and classify is not None:
                acc = float((classify(pred) == char_idx).mean())
                ceiling = float((classify(truth) == char_idx).mean())
                row["content_accuracy"] = {
                    "model": acc,
                    "ceiling_real_glyphs": ceiling,
                    "ratio": acc / max(ceiling, 1e-9),
                }
                if cell.name.startswith("unseen_fonts") and len(cell.fonts) > 1:
                    row["style_retrieval_top1"] = retrieval(
                        bank, pred, char_idx, font_idx, cell.fonts
                    )
                if cell.name.startswith("unseen_fonts"):
                    row["oracle_font"] = oracle(bank, cell.fonts, cell.targets, train_fonts)
            results[cell.name][f"k{k}"] = row
            log(
                {
                    cell.name: k,
                    "model": row["model"],
                    "copy": row["content_copy"]["l1"],
                    "nearest": row["nearest_font"]["l1"],
                }
            )
    return results, sheets


def retrieval(
    bank: GlyphBank, pred: np.ndarray, chars: np.ndarray, fonts: np.ndarray, candidates: list[int]
) -> float:
    """Per generated glyph: is the closest (L1) real glyph of the same character, among the
    candidate fonts, the one from the font whose references were given?"""
    hits = 0
    for g, c, f in zip(pred, chars, fonts, strict=True):
        d = [
            np.abs(bank.glyphs[o, c] / 255.0 - g).mean() if bank.have[o, c] else np.inf
            for o in candidates
        ]
        hits += int(candidates[int(np.argmin(d))] == f)
    return hits / max(len(pred), 1)


def oracle(
    bank: GlyphBank, fonts: list[int], targets: np.ndarray, train_fonts: list[int]
) -> dict[str, float]:
    """The best single training font per held-out font, chosen on the targets (an upper bound
    for any retrieval baseline)."""
    preds, truths = [], []
    for f in fonts:
        t = targets[bank.have[f, targets]]
        truth = bank.glyphs[f, t].astype(np.float32) / 255.0
        best, best_l1 = None, np.inf
        for o in train_fonts:
            cand = font_glyphs(bank, [o], t)
            l1 = float(np.abs(cand - truth).mean())
            if l1 < best_l1:
                best, best_l1 = cand, l1
        preds.append(best)
        truths.append(truth)
    return metrics(np.concatenate(preds), np.concatenate(truths))

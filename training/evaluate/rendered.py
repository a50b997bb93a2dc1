"""The card's second layer (issue 52, items 2 and 4): the glyphs as people see them.

The grid of ``training.evaluate.style`` scores the model's raw 64-px field (issue 5's protocol,
kept so history stays comparable). This scores, beside it, the *rendered* output
(``app.rendering.render``: contour anti-aliasing, what every served PNG, sheet and contact sheet
shows) over several draws of the references:

* L1 / SSIM / IoU of the rendered output at 64 and 128 px against the truth drawn at each size
  from the font (as the bank draws it: at twice the size, normalised), beside the raw field's
  (at 64 px, and its bicubic upscale at 128);
* edge width (``training.evaluate.edges``: grey pixels per pixel of 0.5 contour) and grey
  fraction of the rendered output (and of the raw field's bicubic upscale) as ratios to the
  truth's, at 64, 128 and 256 px;
* HOG-KID ×1000 per font: the kernel inception distance (unbiased MMD², cubic polynomial kernel
  ``(x·y/d + 1)³``) between HOG features (9 orientations, 8×8-px cells, 2×2-cell blocks, L2-Hys,
  of the 64-px glyphs) of the output and of the truth, the mean over ``KID_SUBSETS`` random
  splits of the font's characters into two disjoint halves of up to ``KID_SIZE``: the output of
  one half against the truth of the other, so a perfect writer scores what the truth scores
  against itself. Beside it the content copy's score on the same splits, and the floor: the
  same font's real glyphs of ``KID_SIZE`` other characters (its training characters, which the
  references come from) against the same truth halves: how far apart two sets of one hand's
  real glyphs are when their characters differ.

For the held-out fonts × held-out characters (every k of ``KS``, every glyph) and for the seen
fonts × held-out characters (k = 4; one font per near-duplicate group, so each group weighs
once, as the grid's seen cell does, and the first ``SEEN_CHARS`` held-out characters each).
``judge`` is called by the training job (``training.style.job.finish``) and by ``python -m
training.evaluate.card`` (``make eval-style``), which writes it into a shipped card."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from app.glyphs import upscale
from app.rendering import render
from training.data import fonts as fontlib
from training.data.bank import GlyphBank
from training.evaluate.edges import GREY, contour_length
from training.evaluate.style import Generate, metrics, seen_fonts, write_font

HOG_ORIENTATIONS = 9
HOG_CELL = 8
HOG_BLOCK = 2
KID_SUBSETS = 20
KID_SIZE = 200
KID_SCALE = 1000.0
DRAWS = 4
KS = (1, 4, 8, 16)
METRIC_SIZES = (64, 128)  # L1 / SSIM / IoU of the rendered output
EDGE_SIZES = (64, 128, 256)  # edge width and grey fraction
SEEN_CHARS = 100
FULL_K = 4  # the held-out fonts' k scored at 128 and 256 px too; the other ks and the seen
# fonts at 64 px (L1 / SSIM / IoU, edges, HOG-KID), what item 4's comparison and the seen
# fonts' line need, in a third of the time
EDGE_BAND = (1 / 1.2, 1.2)  # the targets
KID_OVER_FLOOR = 2.0
SSIM_128 = 0.62

Log = Callable[[Any], None]


# -- HOG ---------------------------------------------------------------------------------------


def hog_numpy(images: np.ndarray) -> np.ndarray:
    """HOG features of [N, H, W] images as scikit-image's ``hog`` computes them (9 unsigned
    orientation bins of 20°, each pixel's gradient magnitude voting whole into its bin, a cell's
    histogram its mean over the cell's pixels, 2×2-cell blocks normalised L2-Hys): [N, D]."""
    x = np.asarray(images, dtype=np.float64)
    n, h, w = x.shape
    g_row = np.zeros_like(x)
    g_col = np.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    magnitude = np.hypot(g_col, g_row)
    orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    width = 180.0 / HOG_ORIENTATIONS
    rows, cols = h // HOG_CELL, w // HOG_CELL
    hist = np.zeros((n, rows, cols, HOG_ORIENTATIONS))
    cropped = (slice(None), slice(0, rows * HOG_CELL), slice(0, cols * HOG_CELL))
    mag, ori = magnitude[cropped], orientation[cropped]
    for i in range(HOG_ORIENTATIONS):
        # skimage's bin test: start <= orientation < end, with float bounds
        inside = (ori >= width * i) & (ori < width * (i + 1))
        votes = np.where(inside, mag, 0.0).reshape(n, rows, HOG_CELL, cols, HOG_CELL)
        hist[..., i] = votes.sum(axis=(2, 4)) / (HOG_CELL * HOG_CELL)
    b = HOG_BLOCK
    blocks = np.stack(
        [
            np.stack([hist[:, r : r + b, c : c + b, :] for c in range(cols - b + 1)], axis=1)
            for r in range(rows - b + 1)
        ],
        axis=1,
    )  # [N, block rows, block cols, b, b, orientations]
    eps = 1e-5
    axes = (3, 4, 5)
    out = blocks / np.sqrt((blocks**2).sum(axis=axes, keepdims=True) + eps**2)
    out = np.minimum(out, 0.2)
    out = out / np.sqrt((out**2).sum(axis=axes, keepdims=True) + eps**2)
    features: np.ndarray = out.reshape(n, -1)
    return features


def hog_implementation() -> str:
    """Which HOG ``hog_features`` computes with: scikit-image's where it is installed (the
    training extra has it), else ``hog_numpy``."""
    try:
        from skimage.feature import hog  # noqa: F401
    except ImportError:
        return "numpy (training.evaluate.rendered.hog_numpy)"
    return "scikit-image (skimage.feature.hog)"


def hog_features(images: np.ndarray) -> np.ndarray:
    """[N, H, W] glyphs in [0, 1] → [N, D] HOG features (``hog_implementation``)."""
    try:
        from skimage.feature import hog
    except ImportError:
        return hog_numpy(images)
    return np.stack(
        [
            hog(
                np.asarray(g, np.float64),
                orientations=HOG_ORIENTATIONS,
                pixels_per_cell=(HOG_CELL, HOG_CELL),
                cells_per_block=(HOG_BLOCK, HOG_BLOCK),
                block_norm="L2-Hys",
            )
            for g in images
        ]
    )


# -- KID ---------------------------------------------------------------------------------------


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between feature sets x [m, d] and y [n, d] under the cubic polynomial
    kernel ``(x·y/d + 1)³`` (Bińkowski et al. 2018, "KID"): near 0 for two samples of one
    distribution, can dip below it."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def hog_kid(
    truth: np.ndarray,
    others: np.ndarray,
    candidates: dict[str, np.ndarray],
    seed: int | list[int],
    subsets: int = KID_SUBSETS,
    size: int = KID_SIZE,
) -> dict[str, float]:
    """HOG-KID ×1000 of each of ``candidates`` (name → [N, D] features of the same N characters
    as ``truth``'s) and the ``floor`` (``others``: [M, D] features of the same font's glyphs of
    other characters), the mean over ``subsets`` splits of the N characters into disjoint halves
    A and B of h = min(size, N // 2): KID(candidate[A], truth[B]) and KID(others[C], truth[B])
    with C h of the M drawn at random."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    h = min(size, n // 2, len(others))
    if h < 2:
        raise ValueError(f"HOG-KID wants at least 4 glyphs and 2 others, got {n} and {len(others)}")
    sums = dict.fromkeys([*candidates, "floor"], 0.0)
    for _ in range(subsets):
        order = rng.permutation(n)
        a, b = order[:h], order[h : 2 * h]
        for name, feats in candidates.items():
            sums[name] += kid(feats[a], truth[b])
        sums["floor"] += kid(others[rng.choice(len(others), h, replace=False)], truth[b])
    return {name: KID_SCALE * total / subsets for name, total in sums.items()}


# -- edges, streamed (a 256-px stack of a font's glyphs is ~100 MB in float32) ------------------


def edge_totals(images: Iterable[np.ndarray]) -> np.ndarray:
    """[grey pixels, contour length, pixels] summed over ``images`` (each [H, W] in [0, 1]):
    edge width = grey / length, grey fraction = grey / pixels (``training.evaluate.edges``)."""
    lo, hi = GREY
    out = np.zeros(3)
    for image in images:
        out += ((image > lo) & (image < hi)).sum(), contour_length(image), image.size
    return out


def edge_ratios(drawn: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Edge width and grey fraction of ``drawn`` over ``truth``'s (``edge_totals`` of each)."""
    width = (drawn[0] / max(drawn[1], 1e-9)) / (truth[0] / max(truth[1], 1e-9))
    grey = (drawn[0] / drawn[2]) / max(truth[0] / truth[2], 1e-12)
    return {"edge_width": float(width), "grey_fraction": float(grey)}


# -- the truth at each size --------------------------------------------------------------------


class Truths:
    """A font's real glyphs of given characters drawn at each size as the bank draws them
    (``fontlib.Font`` at twice the size, ``render`` in the bank's frame), cached by font and
    size: 64 px is the bank's own."""

    def __init__(self, bank: GlyphBank, em_ratio: float | None = None) -> None:
        self.bank = bank
        self.em_ratio = em_ratio
        self._cache: dict[tuple[int, int, bytes], np.ndarray] = {}
        self._totals: dict[tuple[int, int, bytes], np.ndarray] = {}

    def at(self, font: int, chars: np.ndarray, size: int) -> np.ndarray:
        """[N, size, size] float32 (uint8 precision, as the bank's)."""
        if size == self.bank.size:
            bank: np.ndarray = self.bank.glyphs[font, chars].astype(np.float32) / 255.0
            return bank
        key = (font, size, np.asarray(chars, np.int64).tobytes())
        if key not in self._cache:
            self._cache[key] = np.stack(list(self._draw(font, chars, size)))
        drawn: np.ndarray = self._cache[key].astype(np.float32) / 255.0
        return drawn

    def _draw(self, font: int, chars: np.ndarray, size: int) -> Iterator[np.ndarray]:
        face = fontlib.Font(fontlib.by_name(self.bank.fonts[font]), em=2 * size)
        for c in chars.tolist():
            glyph = face.render(self.bank.chars[c], size, self.em_ratio)
            if glyph is None:  # the bank has it, so the font does
                raise ValueError(f"{self.bank.fonts[font]} lacks {self.bank.chars[c]!r}")
            yield np.floor(glyph * 255 + 0.5).astype(np.uint8)

    def edges(self, font: int, chars: np.ndarray, size: int) -> np.ndarray:
        """``edge_totals`` of the truth at ``size`` (256 px drawn glyph by glyph, not kept)."""
        key = (font, size, np.asarray(chars, np.int64).tobytes())
        if key not in self._totals:
            if size <= 128 or size == self.bank.size:
                self._totals[key] = edge_totals(self.at(font, chars, size))
            else:
                glyphs = (g.astype(np.float32) / 255.0 for g in self._draw(font, chars, size))
                self._totals[key] = edge_totals(glyphs)
        return self._totals[key]


# -- one font's case ---------------------------------------------------------------------------


def font_case(
    bank: GlyphBank,
    truths: Truths,
    font: int,
    pred: np.ndarray,
    targets: np.ndarray,
    copy_feats: np.ndarray,
    truth_feats: np.ndarray,
    other_feats: np.ndarray,
    seed: list[int],
    full: bool = True,
) -> dict[str, Any]:
    """Both layers' figures for one font's outputs ``pred`` [N, 64, 64] of ``targets``: at
    64 px always (L1 / SSIM / IoU, edges, HOG-KID); with ``full`` also at 128 px (L1 / SSIM /
    IoU, raw as its bicubic upscale) and the rendered output's edges at 128 and 256 px."""
    truth64 = truths.at(font, targets, bank.size)
    rendered64 = np.stack([render(g, bank.size) for g in pred])
    row: dict[str, Any] = {
        "raw_64": metrics(pred, truth64),
        "rendered_64": metrics(rendered64, truth64),
    }
    truth_edges = truths.edges(font, targets, bank.size)
    row["rendered_edges_64"] = edge_ratios(edge_totals(rendered64), truth_edges)
    row["raw_edges_64"] = edge_ratios(edge_totals(pred), truth_edges)
    if full:
        truth128 = truths.at(font, targets, 128)
        rendered128 = np.stack([render(g, 128) for g in pred])
        row["raw_128"] = metrics(np.stack([upscale(g, 128) for g in pred]), truth128)
        row["rendered_128"] = metrics(rendered128, truth128)
        truth_edges = truths.edges(font, targets, 128)
        row["rendered_edges_128"] = edge_ratios(edge_totals(rendered128), truth_edges)
        for size in EDGE_SIZES:
            if size > 128:
                drawn = edge_totals(render(g, size) for g in pred)
                row[f"rendered_edges_{size}"] = edge_ratios(
                    drawn, truths.edges(font, targets, size)
                )
    row["hog_kid"] = hog_kid(
        truth_feats,
        other_feats,
        {
            "raw": hog_features(pred),
            "rendered": hog_features(rendered64),
            "content_copy": copy_feats,
        },
        seed,
    )
    return row


def _others(bank: GlyphBank, font: int, seed: int) -> np.ndarray:
    """KID_SIZE of the font's training characters (the floor's other glyphs), by ``seed``."""
    pool = bank.train_chars[bank.have[font, bank.train_chars]]
    rng = np.random.default_rng([seed, font, 7])
    return np.sort(rng.choice(pool, size=min(KID_SIZE, len(pool)), replace=False))


# -- summaries over draws ----------------------------------------------------------------------


def _leaves(row: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in row.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", float(value)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def over_draws(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of one shape (one per draw) → the same shape with each figure's
    ``{"mean", "sd", "draws"}`` (sd: population, over the draws)."""
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in _leaves(row):
            columns.setdefault(key, []).append(value)
    return _nest(
        {
            key: {
                "mean": round(float(np.mean(v)), 4),
                "sd": round(float(np.std(v)), 4),
                "draws": [round(x, 4) for x in v],
            }
            for key, v in columns.items()
        }
    )


def pooled(per_font: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The mean over fonts of each figure (one draw's per-font rows)."""
    columns: dict[str, list[float]] = {}
    for row in per_font.values():
        for key, value in _leaves(row):
            columns.setdefault(key, []).append(value)
    return _nest({key: float(np.mean(v)) for key, v in columns.items()})


# -- the section -------------------------------------------------------------------------------


def judge_cell(
    bank: GlyphBank,
    generate: Generate,
    truths: Truths,
    fonts: list[int],
    chars: np.ndarray,
    k: int,
    draws: int,
    log: Log,
    full: bool = True,
) -> dict[str, Any]:
    """One cell at one k over ``draws`` reference draws (draw d is the grid's seed d: draw 0
    is the grid's own): per font and the mean over fonts, each over the draws (``full``:
    ``font_case``'s)."""
    fixed: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for f in fonts:
        targets = chars[bank.have[f, chars]]
        copy = bank.content[targets, 0].astype(np.float32) / 255.0
        others = bank.glyphs[f, _others(bank, f, 0)].astype(np.float32) / 255.0
        fixed[f] = (
            hog_features(copy),
            hog_features(truths.at(f, targets, bank.size)),
            hog_features(others),
        )
    per_draw: list[dict[str, dict[str, Any]]] = []
    for draw in range(draws):
        rows = {}
        for f in fonts:
            _, _, targets, pred, _ = write_font(bank, generate, f, chars, k, draw)
            rows[bank.fonts[f]] = font_case(
                bank, truths, f, pred, targets, *fixed[f], seed=[draw, f, k], full=full
            )
        per_draw.append(rows)
        summary = pooled(rows)
        log(
            {
                "rendered": f"k{k} draw {draw}",
                "fonts": len(fonts),
                "raw_l1": round(summary["raw_64"]["l1"], 4),
                "rendered_l1": round(summary["rendered_64"]["l1"], 4),
                "ssim": round(summary["rendered_" + ("128" if full else "64")]["ssim"], 4),
                "hog_kid": {key: round(v, 2) for key, v in sorted(summary["hog_kid"].items())},
            }
        )
    names = [bank.fonts[f] for f in fonts]
    return {
        "mean_over_fonts": over_draws([pooled(rows) for rows in per_draw]),
        "per_font": {name: over_draws([rows[name] for rows in per_draw]) for name in names},
        "glyphs_per_draw": int(sum(bank.have[f, chars].sum() for f in fonts)),
    }


def one_per_group(bank: GlyphBank) -> list[int]:
    """The seen cell's fonts, the first of each near-duplicate group (catalogue order)."""
    chosen: dict[str, int] = {}
    for f in seen_fonts(bank):
        chosen.setdefault(bank.groups[f], f)
    return list(chosen.values())


def judge(
    bank: GlyphBank,
    generate: Generate,
    *,
    ks: tuple[int, ...] = KS,
    draws: int = DRAWS,
    seen_chars: int = SEEN_CHARS,
    em_ratio: float | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """The card's ``rendered`` section: the held-out fonts × held-out characters at every k
    of ``ks``, the seen fonts (one per group) × the first ``seen_chars`` held-out characters at
    k = 4, each over ``draws`` reference draws; and the issue's targets."""
    truths = Truths(bank, em_ratio)
    held = bank.font_index("heldout")
    cells: dict[str, Any] = {"unseen_fonts_unseen_chars": {}}
    for k in ks:
        cells["unseen_fonts_unseen_chars"][f"k{k}"] = judge_cell(
            bank, generate, truths, held, bank.heldout_chars, k, draws, log, full=k == FULL_K
        )
    seen = one_per_group(bank)
    if seen and 4 in ks:
        cells["seen_fonts_unseen_chars"] = {
            "k4": judge_cell(
                bank,
                generate,
                truths,
                seen,
                bank.heldout_chars[:seen_chars],
                4,
                draws,
                log,
                full=False,
            )
        }
    return {
        "protocol": protocol(draws, seen_chars, len(seen)),
        **cells,
        "targets": targets(cells["unseen_fonts_unseen_chars"]),
    }


def protocol(draws: int, seen_chars: int, seen_fonts_n: int) -> dict[str, Any]:
    return {
        "draws": draws,
        "draw_seeds": "draw d draws the references as the grid does with seed d (draw 0 is "
        "the grid's draw); mean and sd (population) over the draws",
        "rendering": "app.rendering.render (contour anti-aliasing of the field's 0.5 level)",
        "truth": "the font's glyph drawn at twice each size and normalised, as the bank draws "
        "it (64 px: the bank's)",
        "raw": "the model's 64-px field; at 128 px its bicubic upscale (app.glyphs.upscale)",
        "metrics_sizes": list(METRIC_SIZES),
        "edge_sizes": list(EDGE_SIZES),
        "sizes_by_cell": f"held-out fonts at k = {FULL_K}: L1 / SSIM / IoU at 64 and 128 px, the "
        "rendered edges at 64, 128 and 256 px (the raw field's at 64); the other ks and the "
        "seen fonts: 64 px only",
        "edge_width": "grey pixels (0.1-0.9) per pixel of 0.5 contour, pooled over a font's "
        "glyphs, over the truth's (training.evaluate.edges); grey_fraction likewise",
        "hog": f"{HOG_ORIENTATIONS} orientations, {HOG_CELL}x{HOG_CELL}-px cells, "
        f"{HOG_BLOCK}x{HOG_BLOCK}-cell blocks, L2-Hys, on the 64-px glyphs; "
        f"{hog_implementation()}",
        "hog_kid": f"x{KID_SCALE:g}: unbiased MMD^2, kernel (x.y/d + 1)^3, mean of "
        f"{KID_SUBSETS} random splits of a font's characters into disjoint halves of up to "
        f"{KID_SIZE}: the output (raw, rendered) or the content copy of one half against the "
        "truth of the other",
        "hog_kid_floor": f"{KID_SIZE} of the same font's training characters (real glyphs of "
        "other characters) against the same truth halves",
        "seen_fonts": f"{seen_fonts_n} fonts, the first of each near-duplicate group of the "
        f"grid's seen cell; the first {seen_chars} held-out characters; k = 4",
    }


def _target(value: Any, met: bool, per_draw: list[bool], **extra: Any) -> dict[str, Any]:
    return {
        "value": value,
        "met": met,
        "draws_met": f"{sum(per_draw)}/{len(per_draw)}",
        **extra,
    }


def targets(headline: dict[str, Any]) -> dict[str, Any]:
    """Issue 52's targets on the held-out fonts × held-out characters, over the draws: a
    per-font target is met when it holds for every font on every draw; k = 16 against k = 4
    compares the means over the draws (the two ks draw different references)."""
    out: dict[str, Any] = {}
    k4 = headline.get("k4")
    if k4 is None:
        return out
    fonts = k4["per_font"]
    n = len(next(iter(fonts.values()))["hog_kid"]["rendered"]["draws"])
    lo, hi = EDGE_BAND
    for size in EDGE_SIZES:
        ratios = {f: r[f"rendered_edges_{size}"]["edge_width"]["draws"] for f, r in fonts.items()}
        per_draw = [all(lo <= ratios[f][d] <= hi for f in ratios) for d in range(n)]
        out[f"rendered_edge_width_{size}"] = _target(
            {f: [min(v), max(v)] for f, v in ratios.items()},
            all(per_draw),
            per_draw,
            target=f"{lo:.3f}..{hi} x the truth's on every held-out font (min, max over draws)",
        )
    kid = {f: r["hog_kid"] for f, r in fonts.items()}
    floor_ok = [
        all(
            kid[f]["rendered"]["draws"][d] <= KID_OVER_FLOOR * kid[f]["floor"]["draws"][d]
            for f in kid
        )
        for d in range(n)
    ]
    out["hog_kid_over_floor"] = _target(
        {
            f: round(v["rendered"]["mean"] / max(v["floor"]["mean"], 1e-9), 2)
            for f, v in kid.items()
        },
        all(floor_ok),
        floor_ok,
        target=f"rendered HOG-KID <= {KID_OVER_FLOOR:g} x the floor on every held-out font "
        "(value: mean over mean)",
    )
    copy_ok = [
        all(kid[f]["rendered"]["draws"][d] < kid[f]["content_copy"]["draws"][d] for f in kid)
        for d in range(n)
    ]
    out["hog_kid_below_copy"] = _target(
        {f: [v["rendered"]["mean"], v["content_copy"]["mean"]] for f, v in kid.items()},
        all(copy_ok),
        copy_ok,
        target="rendered HOG-KID < the content copy's on every held-out font (value: both means)",
    )
    mean = k4["mean_over_fonts"]
    l1_ok = [
        r <= w
        for r, w in zip(
            mean["rendered_64"]["l1"]["draws"], mean["raw_64"]["l1"]["draws"], strict=True
        )
    ]
    out["rendered_l1_vs_raw"] = _target(
        [mean["rendered_64"]["l1"]["mean"], mean["raw_64"]["l1"]["mean"]],
        all(l1_ok),
        l1_ok,
        target="rendered L1 at 64 px <= the raw field's, k = 4 (value: rendered, raw)",
    )
    ssim_ok = [s >= SSIM_128 for s in mean["rendered_128"]["ssim"]["draws"]]
    out["rendered_ssim_128"] = _target(
        mean["rendered_128"]["ssim"]["mean"],
        all(ssim_ok),
        ssim_ok,
        target=f"rendered SSIM at 128 px >= {SSIM_128}, k = 4",
    )
    k16 = headline.get("k16")
    if k16 is not None:
        for label, path in (("l1", ("rendered_64", "l1")), ("hog_kid", ("hog_kid", "rendered"))):
            values = {}
            for f, row in k16["per_font"].items():
                a, b = row[path[0]][path[1]], fonts[f][path[0]][path[1]]
                values[f] = [a["mean"], b["mean"]]
            better = [v[0] < v[1] for v in values.values()]
            out[f"k16_better_than_k4_{label}"] = {
                "value": values,
                "met": all(better),
                "fonts_met": f"{sum(better)}/{len(better)}",
                "target": f"k = 16's rendered {label} below k = 4's on every held-out font, "
                "means over the draws (value: k16, k4)",
            }
    return out

"""The card's rendered layer (training.evaluate.rendered, issue 52 items 2 and 4): HOG against
scikit-image's, KID and HOG-KID on sets with known answers, edge widths of sharp and blurred
shapes, the targets' logic, and the section ``judge`` writes, on a small bank of the minimal
fonts with writers whose answers are known (the truth itself; the truth blurred)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, rotate

from app.rendering import render
from training.data import bank as banklib
from training.data import chars as charsets
from training.data import structure
from training.data.bank import GlyphBank
from training.evaluate import rendered
from training.style.__main__ import SMOKE_FONTS


def glyph_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 64, 64] random strokes: a few axis-aligned bars, box-filtered from x4 (sharp)."""
    big = np.zeros((n, 256, 256), np.float32)
    for g in big:
        for _ in range(int(rng.integers(2, 6))):
            r, c = rng.integers(24, 200, 2)
            if rng.random() < 0.5:
                g[r : r + 20, c - 60 : c + 40] = 1.0
            else:
                g[r - 60 : r + 40, c : c + 20] = 1.0
    small: np.ndarray = big.reshape(n, 64, 4, 64, 4).mean(axis=(2, 4))
    return small


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([gaussian_filter(g, sigma) for g in images]).astype(np.float32)


def test_numpy_hog_is_scikit_images() -> None:
    skimage = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(0)
    images = np.concatenate([glyph_like(rng, 4), rng.random((2, 64, 64)).astype(np.float32)])
    ours = rendered.hog_numpy(images)
    theirs = np.stack(
        [
            skimage.hog(g, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
            for g in images.astype(np.float64)
        ]
    )
    assert ours.shape == theirs.shape == (6, 7 * 7 * 2 * 2 * 9)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert rendered.hog_implementation().startswith("scikit-image")


def test_hog_of_a_vertical_edge_votes_in_the_horizontal_gradient_bin() -> None:
    image = np.zeros((1, 64, 64), np.float32)
    image[:, :, 32:] = 1.0  # an edge between columns 31 and 32: the gradient points along x
    feats = rendered.hog_numpy(image).reshape(7, 7, 2, 2, 9)
    assert feats[:, 3, :, 0, 0].min() > 0.1  # blocks over the edge: the 0-degree bin
    assert np.abs(feats[..., 1:]).max() == 0.0  # no other orientation anywhere
    assert np.abs(rendered.hog_numpy(np.zeros((1, 64, 64)))).max() == 0.0


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16))
    same = rendered.kid(x[:200], x[200:])
    moved = rendered.kid(x[:200], x[200:] + 0.5)
    assert abs(same) < 0.03  # sampling noise (0.015 on this draw)
    assert moved > 30 * abs(same)  # 1.06
    assert rendered.kid(x[:200], x[200:] + 1.0) > 5 * moved  # 7.7: the cubic kernel


def test_hog_kid_ranks_a_perfect_a_blurred_and_another_writer() -> None:
    rng = np.random.default_rng(2)
    truth = glyph_like(rng, 120)
    others = glyph_like(rng, 60)  # the same "hand", other characters
    feats = rendered.hog_features
    scores = rendered.hog_kid(
        feats(truth),
        feats(others),
        {
            "perfect": feats(truth),
            "blurred": feats(blurred(truth, 2.0)),
            # another hand altogether: the strokes turned 45 degrees (HOG ignores ink's sign)
            "copy": feats(np.clip(rotate(truth, 45, axes=(1, 2), reshape=False, order=1), 0, 1)),
        },
        seed=0,
        subsets=5,
        size=50,
    )
    assert abs(scores["perfect"]) < 1.0  # its own truth's other half: the noise level
    assert abs(scores["floor"]) < 1.0  # one distribution, other characters
    assert scores["blurred"] > 3.0
    assert scores["copy"] > scores["blurred"]
    with pytest.raises(ValueError, match="at least 4 glyphs"):
        rendered.hog_kid(feats(truth[:3]), feats(others), {}, seed=0)


def test_edge_width_of_sharp_blurred_and_rendered_shapes() -> None:
    rng = np.random.default_rng(3)
    sharp = glyph_like(rng, 8)
    soft = blurred(sharp, 1.5)
    totals = rendered.edge_totals
    assert 0.7 < totals(sharp)[0] / totals(sharp)[1] < 1.3  # about one pixel
    ratios = rendered.edge_ratios(totals(soft), totals(sharp))
    assert ratios["edge_width"] > 2.0
    assert ratios["grey_fraction"] > 2.0
    # the blurred field rendered (contour anti-aliasing) is back to a sharp shape's edges
    drawn = np.stack([render(g, 64) for g in soft])
    lo, hi = rendered.EDGE_BAND
    assert lo <= rendered.edge_ratios(totals(drawn), totals(sharp))["edge_width"] <= hi


def draws_row(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values)), "draws": values}


def fake_font(edge: float, kid: tuple[float, float, float], l1: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        f"rendered_edges_{s}": {"edge_width": draws_row([edge, edge])} for s in rendered.EDGE_SIZES
    }
    model, copy, floor = kid
    row["hog_kid"] = {
        "rendered": draws_row([model, model]),
        "content_copy": draws_row([copy, copy]),
        "floor": draws_row([floor, floor]),
    }
    row["rendered_64"] = {"l1": draws_row([l1, l1])}
    return row


def test_targets_are_met_on_every_font_and_draw_or_not_at_all() -> None:
    mean = {
        "rendered_64": {"l1": draws_row([0.11, 0.12])},
        "raw_64": {"l1": draws_row([0.115, 0.118])},  # the second draw's rendered is worse
        "rendered_128": {"ssim": draws_row([0.63, 0.64])},
    }
    k4 = {
        "per_font": {
            "a": fake_font(1.0, (1.0, 5.0, 0.6), 0.1),
            "b": fake_font(1.3, (3.0, 2.0, 1.0), 0.2),
        },
        "mean_over_fonts": mean,
    }
    k16 = {
        "per_font": {
            "a": fake_font(1.0, (0.9, 5.0, 0.6), 0.09),
            "b": fake_font(1.0, (3.1, 2.0, 1.0), 0.19),
        }
    }
    out = rendered.targets({"k4": k4, "k16": k16})
    assert not out["rendered_edge_width_64"]["met"]  # font b's 1.3 is outside 1/1.2..1.2
    assert out["rendered_edge_width_64"]["value"]["a"] == [1.0, 1.0]
    assert not out["hog_kid_over_floor"]["met"]  # b: 3.0 > 2 x 1.0
    assert out["hog_kid_over_floor"]["value"] == {"a": 1.67, "b": 3.0}
    assert not out["hog_kid_below_copy"]["met"]  # b: 3.0 over its copy's 2.0
    assert not out["rendered_l1_vs_raw"]["met"]
    assert out["rendered_l1_vs_raw"]["draws_met"] == "1/2"
    assert out["rendered_ssim_128"]["met"]
    assert out["k16_better_than_k4_l1"]["met"]
    assert not out["k16_better_than_k4_hog_kid"]["met"]  # b: 3.1 against 3.0
    assert out["k16_better_than_k4_hog_kid"]["fonts_met"] == "1/2"


@pytest.fixture(scope="module")
def small_bank() -> GlyphBank:
    """The --smoke split's fonts (training/data/fetch_fonts.sh --minimal), 40 held-out
    characters, of which 16 are kept."""
    vocab = structure.vocabulary(charsets.gb2312((1, 2)), 256)
    try:
        bank = banklib.build(64, 120, 40, 0, vocab, SMOKE_FONTS, workers=1)
    except (OSError, KeyError) as missing:
        pytest.skip(f"the minimal fonts are not installed: {missing}")
    n = bank.n_train_chars + 16
    return replace(
        bank,
        chars=bank.chars[:n],
        glyphs=bank.glyphs[:, :n],
        have=bank.have[:, :n],
        content=bank.content[:n],
        struct=bank.struct[:n],
    )


def writer(bank: GlyphBank, sigma: float):  # type: ignore[no-untyped-def]
    """A ``Generate`` that writes each target as the references' font's real glyph, blurred
    by ``sigma`` px (0: the truth itself)."""

    def generate(refs: np.ndarray, ref_chars: np.ndarray, targets: np.ndarray) -> np.ndarray:
        first = np.floor(refs[0] * 255 + 0.5).astype(np.uint8)
        font = next(
            f for f in range(len(bank.fonts)) if (bank.glyphs[f, ref_chars[0]] == first).all()
        )
        truth = bank.glyphs[font, targets].astype(np.float32) / 255.0
        return blurred(truth, sigma) if sigma else truth

    return generate


def test_judge_writes_both_layers_and_the_targets(small_bank: GlyphBank) -> None:
    logged: list[Any] = []
    soft = rendered.judge(
        small_bank, writer(small_bank, 1.5), ks=(1, 4), draws=2, seen_chars=8, log=logged.append
    )
    assert set(soft) == {
        "protocol",
        "unseen_fonts_unseen_chars",
        "seen_fonts_unseen_chars",
        "targets",
    }
    assert set(soft["unseen_fonts_unseen_chars"]) == {"k1", "k4"}
    assert set(soft["seen_fonts_unseen_chars"]) == {"k4"}
    assert soft["protocol"]["draws"] == 2
    assert "scikit-image" in soft["protocol"]["hog"]
    cell = soft["unseen_fonts_unseen_chars"]["k4"]
    assert set(cell["per_font"]) == {"lxgw-wenkai"}
    assert cell["glyphs_per_draw"] == 16
    row = cell["mean_over_fonts"]
    for layer in ("raw_64", "rendered_64", "raw_128", "rendered_128"):
        assert set(row[layer]) == {"l1", "rmse", "ssim", "iou"}
        assert len(row[layer]["l1"]["draws"]) == 2
    assert row["raw_edges_64"]["edge_width"]["mean"] > 1.5  # the blur
    for size in rendered.EDGE_SIZES:
        lo, hi = rendered.EDGE_BAND  # the rendered field: a font's edges again, at every size
        assert lo <= row[f"rendered_edges_{size}"]["edge_width"]["mean"] <= hi
    # k = 1 (not FULL_K) is scored at 64 px only
    light = soft["unseen_fonts_unseen_chars"]["k1"]["mean_over_fonts"]
    assert set(light) == {"raw_64", "rendered_64", "rendered_edges_64", "raw_edges_64", "hog_kid"}
    assert set(row["hog_kid"]) == {"raw", "rendered", "content_copy", "floor"}
    assert row["hog_kid"]["rendered"]["mean"] < row["hog_kid"]["raw"]["mean"]
    # the seen cell: one font per near-duplicate group, the content fonts left out
    seen = soft["seen_fonts_unseen_chars"]["k4"]["per_font"]
    assert set(seen) == {"noto-sans-sc-bold", "wqy-zenhei"}
    assert set(soft["targets"]) == {
        "rendered_edge_width_64",
        "rendered_edge_width_128",
        "rendered_edge_width_256",
        "hog_kid_over_floor",
        "hog_kid_below_copy",
        "rendered_l1_vs_raw",
        "rendered_ssim_128",
    }
    assert len(logged) == 2 * 2 + 2  # a line a draw: k1, k4, the seen cell
    # the truth itself: raw is exact, so rendering cannot improve L1, and the raw layer's
    # HOG-KID is its own truth's across halves
    exact = rendered.judge(
        small_bank, writer(small_bank, 0.0), ks=(4,), draws=1, seen_chars=4, log=lambda r: None
    )
    raw = exact["unseen_fonts_unseen_chars"]["k4"]["mean_over_fonts"]["raw_64"]
    assert raw["l1"]["mean"] == 0.0
    assert raw["ssim"]["mean"] == pytest.approx(1.0)
    assert exact["targets"]["rendered_l1_vs_raw"]["met"] is False
    assert exact["targets"]["rendered_edge_width_64"]["met"] is True

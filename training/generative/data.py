"""The fixed digits split shared by every generative model: scikit-learn's bundled
`load_digits` (1,797 images of 8x8 pixels, 17 grey levels 0..16), permuted by
`np.random.default_rng(SPLIT_SEED)`, first 1,500 for training and the other 297 for test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

SPLIT_SEED = 0
N_TRAIN = 1500
LEVELS = 17  # grey levels 0..16
THRESHOLD = 7  # binarised pixel = level > 7
SIDE = 8
DIM = SIDE * SIDE
N_VALID = 200  # held out of the training rows for choosing baseline sizes


@dataclass(frozen=True)
class Digits:
    """Pixel levels as float32 rows [N, 64] in 0..16 and int64 labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_split() -> Digits:
    """The fixed 1,500 / 297 split (the same for every model)."""
    bunch = load_digits()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    train, test = order[:N_TRAIN], order[N_TRAIN:]
    return Digits(x[train], y[train], x[test], y[test])


def binarise(levels: np.ndarray) -> np.ndarray:
    """Pixel level > 7 -> 1.0, else 0.0 (float32)."""
    return (levels > THRESHOLD).astype(np.float32)


def dequantise(levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform dequantisation to [0, 1): y = (x + u) / 17 with u ~ U[0, 1)."""
    u = rng.random(levels.shape, dtype=np.float64)
    return ((levels + u) / LEVELS).astype(np.float32)


def train_valid(rows: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The training rows cut into (fit, validation): the last N_VALID of a seeded permutation."""
    order = np.random.default_rng(seed + 1).permutation(len(rows))
    valid = min(N_VALID, len(rows) // 5)
    return rows[order[:-valid]], rows[order[-valid:]]


def describe(preprocessing: str) -> dict[str, Any]:
    """The card's `data` entry."""
    digits = load_split()
    return {
        "source": "scikit-learn load_digits (bundled, 1,797 images 8x8, 17 grey levels 0..16)",
        "split": (
            f"np.random.default_rng({SPLIT_SEED}).permutation(1797): first {N_TRAIN} train, "
            f"remaining {len(digits.x_test)} test (the same split for every generative model)"
        ),
        "split_seed": SPLIT_SEED,
        "train_size": len(digits.x_train),
        "test_size": len(digits.x_test),
        "validation": (
            f"{N_VALID} of the training rows (np.random.default_rng({SPLIT_SEED + 1}) "
            f"permutation) are held out to pick the training epoch and the baselines' size; "
            f"the networks train on the other {N_TRAIN - N_VALID}, the baselines are refitted "
            f"on all {N_TRAIN}"
        ),
        "preprocessing": preprocessing,
    }

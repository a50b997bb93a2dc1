"""Sample-quality measures for any digits sampler, in the in-house classifier's terms
(evaluate.Classifier, trained on the real binarised training digits): the Fréchet distance of
its features to the real test digits beside the real train-vs-test floor, its confidence on
the samples and the diversity of the classes it sees, and a nearest-neighbour check that the
samples are not copies of training images. The classifier reads binary images, so every
model's samples are scored binarised (pixel level > 7), the way the real digits are."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.generative import data, evaluate, report

NUM_CLASSES = 10
CONFIDENT = 0.9  # a sample the classifier gives >= this probability counts as confident
# a copy: nearer its nearest training row than this (the expanded distance's rounding is far
# below it, and two rows of levels or of binary pixels that differ are 1 or more apart)
COPY_DISTANCE = 1e-3


@dataclass(frozen=True)
class Reference:
    """The real digits the samples are compared with: binary rows [N, 64] and levels 0..16."""

    classifier: evaluate.Classifier
    train_binary: np.ndarray
    test_binary: np.ndarray
    train_levels: np.ndarray
    test_levels: np.ndarray


def reference(digits: data.Digits, classifier_epochs: int = 60) -> Reference:
    """The in-house classifier (trained here, seeded) and the real rows of the fixed split."""
    train_binary = data.binarise(digits.x_train)
    classifier = evaluate.train_classifier(train_binary, digits.y_train, epochs=classifier_epochs)
    test_binary = data.binarise(digits.x_test)
    return Reference(classifier, train_binary, test_binary, digits.x_train, digits.x_test)


def levels_of_unit(y: np.ndarray) -> np.ndarray:
    """Samples y in [0, 1] on the dequantised scale y = (level + u) / 17 back to levels:
    floor(17 y), clipped to 0..16 (float32 rows [N, 64])."""
    flat = np.asarray(y, np.float32).reshape(len(y), -1)
    return np.clip(np.floor(flat * data.LEVELS), 0, data.LEVELS - 1).astype(np.float32)


def sample_graph(path: Path, rows: int, z_dim: int, seed: int) -> np.ndarray:
    """`rows` samples [rows, 64] of an exported sampler graph from z ~ N(0, I) (numpy, seed)."""
    z = np.random.default_rng(seed).standard_normal((rows, z_dim)).astype(np.float32)
    return report.run_onnx(path, {"z": z}, "x").reshape(rows, -1)


def frechet(binary: np.ndarray, ref: Reference, seed: int) -> dict[str, Any]:
    """Fréchet distance to the real test digits, the real train-vs-test floor, and both again
    at the test set's size (the distance's small-sample bias in 64 dimensions is large)."""
    features = ref.classifier.features(binary)
    train, test = (
        ref.classifier.features(ref.train_binary),
        ref.classifier.features(ref.test_binary),
    )
    return {
        "frechet_distance": report.rounded(evaluate.frechet_distance(features, test)),
        "frechet_distance_floor_train_vs_test": report.rounded(
            evaluate.frechet_distance(train, test)
        ),
        "frechet_distance_matched_size": matched_size(features, train, test, seed),
    }


def matched_size(
    generated_features: np.ndarray,
    train_features: np.ndarray,
    test_features: np.ndarray,
    seed: int,
    subsets: int = 10,
) -> dict[str, Any]:
    """The Fréchet distance's small-sample bias in 64 dimensions is large: both sides scored
    again on random subsets as large as the test set (297), mean and sd over `subsets`."""
    rng = np.random.default_rng(seed)
    n = len(test_features)
    out: dict[str, Any] = {"rows": n, "subsets": subsets}
    for name, features in (("generated", generated_features), ("real_train", train_features)):
        size = min(n, len(features))
        values = [
            evaluate.frechet_distance(
                features[rng.permutation(len(features))[:size]], test_features
            )
            for _ in range(subsets)
        ]
        out[f"{name}_mean"] = report.rounded(float(np.mean(values)), 3)
        out[f"{name}_sd"] = report.rounded(float(np.std(values)), 3)
    return out


@torch.no_grad()
def probabilities(classifier: evaluate.Classifier, binary: np.ndarray) -> np.ndarray:
    rows = torch.from_numpy(np.asarray(binary, np.float32).reshape(len(binary), -1))
    return torch.softmax(classifier(rows), dim=-1).numpy().astype(np.float64)


def confidence_diversity(classifier: evaluate.Classifier, binary: np.ndarray) -> dict[str, Any]:
    """How sure the classifier is of each sample (mean top probability, share >= 0.9) and how
    the samples spread over the classes (shares of its argmax, their entropy against ln 10,
    and exp E KL(p(y|x) || p(y)), an Inception-score analogue in our features: 10 at most)."""
    p = probabilities(classifier, binary)
    top = p.max(axis=1)
    shares = np.bincount(p.argmax(axis=1), minlength=NUM_CLASSES) / len(p)
    marginal = p.mean(axis=0)
    kl = (p * (np.log(p + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
    nonzero = shares[shares > 0]
    return {
        "confidence_mean": report.rounded(float(top.mean())),
        "confident_share": report.rounded(float((top >= CONFIDENT).mean())),
        "class_shares": [report.rounded(float(s), 3) for s in shares],
        "class_entropy_nats": report.rounded(float(-(nonzero * np.log(nonzero)).sum())),
        "class_entropy_max_nats": report.rounded(math.log(NUM_CLASSES)),
        "classifier_score": report.rounded(float(np.exp(kl.mean()))),
    }


def nearest_distances(rows: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row to its nearest training row."""
    a, b = rows.astype(np.float64), train.astype(np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared.min(axis=1), 0.0, None))


def nearest_neighbour(samples: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """Copies of training images show as samples much nearer a training row than real unseen
    digits are: the samples' nearest-training-row distances beside the test rows' (the
    reference), the share of samples nearer than the test rows' 5th percentile, and exact
    copies (distance 0)."""
    generated, real = nearest_distances(samples, train), nearest_distances(test, train)
    p5 = float(np.percentile(real, 5))
    return {
        "median_generated": report.rounded(float(np.median(generated))),
        "median_test": report.rounded(float(np.median(real))),
        "test_p5": report.rounded(p5),
        "share_below_test_p5": report.rounded(float((generated < p5).mean())),
        "exact_copies": int((generated < COPY_DISTANCE).sum()),
        "exact_copies_test": int((real < COPY_DISTANCE).sum()),
    }


def measures(
    binary: np.ndarray, ref: Reference, seed: int, levels: np.ndarray | None = None
) -> dict[str, Any]:
    """Every measure for one model's samples: `binary` rows [N, 64] (what the classifier
    reads), and for a model of the 17 levels its `levels` rows, checked for copies in levels
    too (Euclidean distance in level units)."""
    out = {
        "samples": len(binary),
        **frechet(binary, ref, seed),
        **confidence_diversity(ref.classifier, binary),
        "nearest_neighbour_binary": nearest_neighbour(binary, ref.train_binary, ref.test_binary),
    }
    if levels is not None:
        out["nearest_neighbour_levels"] = nearest_neighbour(
            levels, ref.train_levels, ref.test_levels
        )
    return out


def real_test(ref: Reference) -> dict[str, Any]:
    """The classifier's confidence and diversity on the real test digits: what a perfect
    sampler would score."""
    return {
        "samples": len(ref.test_binary),
        **confidence_diversity(ref.classifier, ref.test_binary),
    }

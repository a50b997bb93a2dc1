"""The posterior predictive from S draws: pure NumPy, no framework.

Regression draws are Gaussians N(mean_s, var_s); the predictive is their equal-weight mixture.
Its variance splits into an epistemic part (the spread of the draw means) and an aleatoric part
(the mean of the draw variances); its intervals are the mixture's quantiles (mixture.py, the
same code as the training job's card metrics), for all rows and levels at once. Classification
draws are logits; the predictive is the mean of their softmaxes, and its entropy splits into the
expected entropy (aleatoric) and the mutual information between the label and the draw
(epistemic)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.kinds.predictive.mixture import mixture_quantiles


@dataclass(frozen=True)
class RegressionSummary:
    """Per row and target ([N, K] each); intervals [L, N, K, 2] for the requested levels."""

    mean: np.ndarray
    std: np.ndarray
    epistemic_std: np.ndarray
    aleatoric_std: np.ndarray
    interval: np.ndarray
    credible_interval_mean: np.ndarray
    mc_standard_error: np.ndarray


def summarize_regression(
    means: np.ndarray, variances: np.ndarray, levels: list[float]
) -> RegressionSummary:
    """means, variances: [N, S, K] per draw. Central intervals at each level."""
    mu = means.astype(np.float64).transpose(0, 2, 1)  # [N, K, S]
    var = np.maximum(variances.astype(np.float64).transpose(0, 2, 1), 1e-300)
    mean = mu.mean(axis=-1)
    epistemic = mu.var(axis=-1)
    aleatoric = var.mean(axis=-1)
    tails = np.array([[(1.0 - level) / 2.0, (1.0 + level) / 2.0] for level in levels]).ravel()
    mixture = mixture_quantiles(mu, np.sqrt(var), tails).reshape(len(levels), 2, *mean.shape)
    draw_means = np.quantile(mu, tails, axis=-1).reshape(len(levels), 2, *mean.shape)
    samples = mu.shape[-1]
    return RegressionSummary(
        mean=mean,
        std=np.sqrt(epistemic + aleatoric),
        epistemic_std=np.sqrt(epistemic),
        aleatoric_std=np.sqrt(aleatoric),
        interval=np.moveaxis(mixture, 1, -1),
        credible_interval_mean=np.moveaxis(draw_means, 1, -1),
        mc_standard_error=np.sqrt(mu.var(axis=-1, ddof=1 if samples > 1 else 0) / samples),
    )


@dataclass(frozen=True)
class ClassificationSummary:
    """Per row: probs [N, C]; label, max_prob, entropies, MI, variation ratio [N] (nats)."""

    probs: np.ndarray
    label: np.ndarray
    max_prob: np.ndarray
    entropy: np.ndarray
    expected_entropy: np.ndarray
    mutual_information: np.ndarray
    variation_ratio: np.ndarray


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return probs


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis; 0 log 0 = 0."""
    logs = np.log(np.where(probs > 0, probs, 1.0))
    result: np.ndarray = -(probs * logs).sum(axis=-1)
    return result


def summarize_classification(logits: np.ndarray) -> ClassificationSummary:
    """logits: [N, S, C] per draw."""
    per_draw = softmax(logits.astype(np.float64))
    probs = per_draw.mean(axis=1)
    total = entropy(probs)
    expected = entropy(per_draw).mean(axis=1)
    votes = per_draw.argmax(axis=-1)  # [N, S]
    classes = logits.shape[-1]
    modal = np.stack([np.bincount(row, minlength=classes).max() for row in votes])
    return ClassificationSummary(
        probs=probs,
        label=probs.argmax(axis=-1),
        max_prob=probs.max(axis=-1),
        entropy=total,
        expected_entropy=expected,
        mutual_information=np.maximum(total - expected, 0.0),
        variation_ratio=1.0 - modal / votes.shape[1],
    )

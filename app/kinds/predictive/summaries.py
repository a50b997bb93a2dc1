"""The posterior predictive from S draws: pure NumPy, no framework.

Regression draws are Gaussians N(mean_s, var_s); the predictive is their equal-weight mixture.
Its variance splits into an epistemic part (the spread of the draw means) and an aleatoric part
(the mean of the draw variances); its intervals are the mixture's quantiles, found by
bisection on its CDF for all rows and levels at once. Classification draws are logits; the
predictive is the mean of their softmaxes, and its entropy splits into the expected entropy
(aleatoric) and the mutual information between the label and the draw (epistemic)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SQRT2 = np.sqrt(2.0)
_NR_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)
BISECTION_STEPS = 60


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.zeros_like(t)
    for coefficient in reversed(_NR_ERFC[1:]):
        poly = (poly + coefficient) * t
    result: np.ndarray = t * np.exp(-z * z + _NR_ERFC[0] + poly)
    return np.where(x >= 0, result, 2.0 - result)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    cdf: np.ndarray = 0.5 * erfc(-x / _SQRT2)
    return cdf


def mixture_cdf(y: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """CDF at y [...] of equal-weight Gaussian mixtures with components on the last axis."""
    cdf: np.ndarray = normal_cdf((y[..., None] - means) / stds).mean(axis=-1)
    return cdf


def mixture_quantiles(means: np.ndarray, stds: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles [L, ...] at probabilities `probs` [L] of mixtures [..., S], by bisection."""
    shape = (len(probs), *means.shape[:-1])
    lo = np.broadcast_to((means - 9.0 * stds).min(axis=-1), shape).copy()
    hi = np.broadcast_to((means + 9.0 * stds).max(axis=-1), shape).copy()
    target = np.asarray(probs, dtype=np.float64).reshape(-1, *([1] * (means.ndim - 1)))
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, means[None], stds[None]) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    quantiles: np.ndarray = 0.5 * (lo + hi)
    return quantiles


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

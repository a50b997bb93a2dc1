"""Baselines the deep models must beat: a mixture of Bernoullis fitted by EM (numpy) for the
binarised digits, scikit-learn's GaussianMixture for the dequantised digits. Both pick their
size on a validation split of the training rows and are then refitted on all training rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from training.generative import data


@dataclass
class BernoulliMixture:
    """log_weights [K], probs [K, 64] (kept inside [eps, 1 - eps] by Beta smoothing)."""

    log_weights: np.ndarray
    probs: np.ndarray

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """log p(x) per binary row [N], nats."""
        joint = x @ np.log(self.probs).T + (1.0 - x) @ np.log1p(-self.probs).T
        return logsumexp(joint + self.log_weights, axis=1)


def fit_bernoulli_mixture(
    x: np.ndarray, k: int, iterations: int = 200, seed: int = 0, smoothing: float = 1.0
) -> BernoulliMixture:
    """EM from random responsibilities; MAP M-step with a Beta(1 + s, 1 + s) prior on each
    pixel probability and a Dirichlet(1 + s) prior on the weights, so no probability is 0."""
    rng = np.random.default_rng(seed)
    x = x.astype(np.float64)
    resp = rng.dirichlet(np.ones(k), size=len(x))
    previous = -np.inf
    model = BernoulliMixture(np.zeros(k), np.full((k, x.shape[1]), 0.5))
    for _ in range(iterations):
        counts = resp.sum(0)
        weights = (counts + smoothing) / (len(x) + k * smoothing)
        probs = (resp.T @ x + smoothing) / (counts[:, None] + 2.0 * smoothing)
        model = BernoulliMixture(np.log(weights), probs)
        joint = x @ np.log(probs).T + (1.0 - x) @ np.log1p(-probs).T + model.log_weights
        norm = logsumexp(joint, axis=1, keepdims=True)
        resp = np.exp(joint - norm)
        current = float(norm.mean())
        if current - previous < 1e-6:
            break
        previous = current
    return model


def bernoulli_mixture_baseline(
    x_train: np.ndarray, x_test: np.ndarray, candidates: tuple[int, ...], seed: int = 0
) -> dict[str, Any]:
    """K chosen by validation log-likelihood, refitted on all of x_train, scored on x_test."""
    fit_rows, valid_rows = data.train_valid(x_train)
    scores = {
        k: float(fit_bernoulli_mixture(fit_rows, k, seed=seed).log_likelihood(valid_rows).mean())
        for k in candidates
    }
    best = max(scores, key=lambda k: scores[k])
    model = fit_bernoulli_mixture(x_train, best, seed=seed)
    test = float(model.log_likelihood(x_test).mean())
    return {
        "components": best,
        "valid_log_px_nats_by_k": {str(k): round(v, 3) for k, v in scores.items()},
        "test_log_px_nats": round(test, 4),
        "test_bits_per_dim": round(-test / (data.DIM * math.log(2)), 4),
    }


def bits_per_dim_dequantised(log_p_cont: np.ndarray) -> float:
    """-(E log p_cont(y) - 64 ln 17) / (64 ln 2): bits per pixel of the discrete levels."""
    return -(float(np.mean(log_p_cont)) - data.DIM * math.log(data.LEVELS)) / (
        data.DIM * math.log(2)
    )


def gmm_baseline(
    y_fit: np.ndarray,
    y_valid: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
    candidates: tuple[tuple[str, int], ...],
    seed: int = 0,
) -> dict[str, Any]:
    """GaussianMixture on dequantised rows: (covariance type, K) chosen by validation
    bits/dim, refitted on all dequantised training rows, scored on the dequantised test rows."""

    def make(cov: str, k: int) -> GaussianMixture:
        reg = 1e-6 if cov == "diag" else 1e-4
        return GaussianMixture(k, covariance_type=cov, reg_covar=reg, random_state=seed)

    scores = {
        (cov, k): bits_per_dim_dequantised(make(cov, k).fit(y_fit).score_samples(y_valid))
        for cov, k in candidates
    }
    cov, k = min(scores, key=lambda c: scores[c])
    model = make(cov, k).fit(y_train)
    return {
        "covariance_type": cov,
        "components": k,
        "reg_covar": model.reg_covar,
        "valid_bits_per_dim": {f"{c}-{n}": round(v, 4) for (c, n), v in scores.items()},
        "test_bits_per_dim": round(bits_per_dim_dequantised(model.score_samples(y_test)), 4),
    }

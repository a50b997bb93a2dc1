"""Metrics of predictive distributions. Regression: an equal-weight mixture of S Gaussians
per point (mean, var [S, N]; a single Gaussian is S = 1), in the units of y. Classification:
per-draw probabilities [S, N, K] and their average."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp, ndtr
from sklearn.metrics import roc_auc_score

from app.kinds.predictive import mixture

LEVELS = (0.5, 0.9, 0.95)
CURVE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
ECE_BINS = 15


def mixture_logpdf(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """log (1/S) Σ_s N(y; mean_s, var_s), per point: [N]."""
    logp = -0.5 * (np.log(2 * math.pi * var) + (y - mean) ** 2 / var)
    return logsumexp(logp, axis=0) - math.log(mean.shape[0])


def mixture_cdf(q: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """The mixture CDF at q [N]: the api's implementation (app.kinds.predictive.mixture)."""
    return mixture.mixture_cdf(q, mean.T, np.sqrt(var).T)


def mixture_quantile(p: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """The p-quantile of each point's mixture [N]: the code that serves intervals computes
    the card's interval metrics too (issue 48)."""
    return mixture.mixture_quantiles(mean.T, np.sqrt(var).T, np.array([p]))[0]


def interval(level: float, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The central interval of the mixture holding `level` of its mass."""
    tails = np.array([(1 - level) / 2, (1 + level) / 2])
    lower, upper = mixture.mixture_quantiles(mean.T, np.sqrt(var).T, tails)
    return lower, upper


def picp_mpiw(lower: np.ndarray, upper: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Prediction-interval coverage probability and mean interval width."""
    return float(np.mean((y >= lower) & (y <= upper))), float(np.mean(upper - lower))


def _abs_moment(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """E|X| for X ~ N(mu, var)."""
    sd = np.sqrt(var)
    z = mu / sd
    return 2 * sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) + mu * (2 * ndtr(z) - 1)


def crps_mixture(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of an equal-weight Gaussian mixture, per point:
    E|X − y| − ½ E|X − X'| (Grimit et al. 2006)."""
    first = _abs_moment(y - mean, var).mean(axis=0)
    second = np.zeros_like(first)
    for s in range(mean.shape[0]):  # pairs (s, ·) at a time: memory S·N, not S²·N
        second += _abs_moment(mean[s] - mean, var[s] + var).mean(axis=0)
    return first - 0.5 * second / mean.shape[0]


def crps_gaussian(y: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """CRPS of N(mu, sd²) at y: sd [z(2Φ(z) − 1) + 2φ(z) − 1/√π]."""
    z = (y - mu) / sd
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return sd * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def regression(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> dict[str, float]:
    """RMSE of the mixture mean, mean test log-likelihood, PICP/MPIW at LEVELS and along
    CURVE_LEVELS (coverage curve), mean CRPS, and the average epistemic/aleatoric variance."""
    mean = np.asarray(mean, np.float64)
    var = np.asarray(var, np.float64)
    y = np.asarray(y, np.float64)
    mu = mean.mean(axis=0)
    out = {
        "rmse": float(np.sqrt(np.mean((mu - y) ** 2))),
        "ll": float(mixture_logpdf(y, mean, var).mean()),
        "crps": float(crps_mixture(y, mean, var).mean()),
        "epistemic_var": float(mean.var(axis=0).mean()),
        "aleatoric_var": float(var.mean()),
    }
    for level in sorted({*LEVELS, *CURVE_LEVELS}):
        picp, mpiw = picp_mpiw(*interval(level, mean, var), y)
        tag = f"{round(level * 100)}"
        out[f"picp_{tag}"] = picp
        if level in LEVELS:
            out[f"mpiw_{tag}"] = mpiw
    return out


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard error (std with ddof 1 / √n) of each metric over splits."""
    keys = runs[0].keys()
    out = {}
    for key in keys:
        values = np.array([r[key] for r in runs], np.float64)
        se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
        out[key] = {"mean": float(values.mean()), "se": float(se)}
    return out


def ece(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins on [0, 1]."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, list[Any]]:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)
    acc, mean_conf, count = [], [], []
    for b in range(bins):
        sel = which == b
        count.append(int(sel.sum()))
        acc.append(float(correct[sel].mean()) if sel.any() else None)
        mean_conf.append(float(conf[sel].mean()) if sel.any() else None)
    return {"accuracy": acc, "confidence": mean_conf, "count": count}


def entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=-1)


def mutual_information(draws: np.ndarray) -> np.ndarray:
    """I[y; θ | x] = H[E_θ p] − E_θ H[p] for draws [S, N, K]: [N]."""
    return entropy(draws.mean(axis=0)) - entropy(draws).mean(axis=0)


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling OOD (positive, higher score) from in-domain."""
    labels = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    return float(roc_auc_score(labels, np.r_[in_scores, out_scores]))


def classification(draws: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, NLL, Brier (summed over classes), ECE of the draws' average [S, N, K]."""
    probs = draws.mean(axis=0)
    onehot = np.eye(probs.shape[1])[y]
    return {
        "accuracy": float((probs.argmax(axis=1) == y).mean()),
        "nll": float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()),
        "brier": float(((probs - onehot) ** 2).sum(axis=1).mean()),
        "ece": ece(probs, y),
    }

"""How far one per-row predictive is from another (the HMC reference), row by row: the
absolute difference of the predictive means, of the central-interval widths, and the
Wasserstein-1 distance W1(F, G) = ∫ |F(y) − G(y)| dy between the two equal-weight Gaussian
mixtures, integrated numerically (trapezoid rule on a grid spanning both mixtures' 1e-7 and
1 − 1e-7 quantiles; the mass outside adds at most ~1e-7 of the span). Mixtures are (mean,
var) arrays [S, N] in the target's units, as in training.bayesian.metrics."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from app.kinds.predictive import mixture
from training.bayesian import metrics

GRID = 2001
TAIL = 1e-7
ROW_BLOCK = 16


def mixture_cdf_grid(grid: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """CDF of each row's mixture at its own grid points: grid [N, G], mean/var [S, N] ->
    [N, G]."""
    sd = np.sqrt(var)
    out = np.zeros(grid.shape)
    for s in range(mean.shape[0]):
        out += ndtr((grid - mean[s][:, None]) / sd[s][:, None])
    out /= mean.shape[0]
    return out


def wasserstein1(
    mean_a: np.ndarray, var_a: np.ndarray, mean_b: np.ndarray, var_b: np.ndarray
) -> np.ndarray:
    """W1 between mixture a [Sa, N] and mixture b [Sb, N], per row: [N]."""
    tails = np.array([TAIL, 1 - TAIL])
    qa = mixture.mixture_quantiles(mean_a.T, np.sqrt(var_a).T, tails)
    qb = mixture.mixture_quantiles(mean_b.T, np.sqrt(var_b).T, tails)
    lo, hi = np.minimum(qa[0], qb[0]), np.maximum(qa[1], qb[1])
    out = np.empty(mean_a.shape[1])
    for start in range(0, len(out), ROW_BLOCK):
        rows = slice(start, start + ROW_BLOCK)
        grid = np.linspace(lo[rows], hi[rows], GRID, axis=1)
        gap = np.abs(
            mixture_cdf_grid(grid, mean_a[:, rows], var_a[:, rows])
            - mixture_cdf_grid(grid, mean_b[:, rows], var_b[:, rows])
        )
        out[rows] = np.trapezoid(gap, grid, axis=1)
    return out


def interval_width(level: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    lower, upper = metrics.interval(level, mean, var)
    width: np.ndarray = upper - lower
    return width


def to_reference(
    mean: np.ndarray, var: np.ndarray, ref_mean: np.ndarray, ref_var: np.ndarray
) -> dict[str, float]:
    """Mean over rows of |Δ predictive mean|, |Δ 90% width| and W1, plus the reference's own
    mean predictive sd and 90% width (the scale to read them against)."""
    width, ref_width = interval_width(0.9, mean, var), interval_width(0.9, ref_mean, ref_var)
    ref_sd = np.sqrt(ref_var.mean(0) + ref_mean.var(0))
    return {
        "mean_abs_diff_predictive_mean": float(np.abs(mean.mean(0) - ref_mean.mean(0)).mean()),
        "mean_abs_diff_width_90": float(np.abs(width - ref_width).mean()),
        "mean_w1": float(wasserstein1(mean, var, ref_mean, ref_var).mean()),
        "reference_mean_predictive_sd": float(ref_sd.mean()),
        "reference_mean_width_90": float(ref_width.mean()),
        "rows": int(mean.shape[1]),
    }

"""The shared mixture code (app.kinds.predictive.mixture, issue 48) against frozen copies of
the two implementations it replaced: the api's (Numerical Recipes' erfc, |error| < 1.2e-7, and
a 60-step bisection in mean +- 9 sd) and the training job's (scipy's ndtr and a 60-step
bisection in mean +- 10 sd). The new quantiles use a CDF accurate to ~3e-16, so they differ
from the api's old ones by the old erfc's error over the density: up to ~1e-7 of the row's
predictive sd. Relative to the value alone a quantile near 0 can differ by more (6e-6 was seen
for a quantile of -0.08 in a row with sd 19), so the comparisons are relative to
max(|value|, sd)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from app.kinds.predictive import mixture
from app.kinds.predictive.summaries import summarize_regression

LEVELS = [0.5, 0.9, 0.99, 0.999]
TOLERANCE = 1e-6

# --- frozen: app/kinds/predictive/summaries.py before issue 48 ---------------------------------
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


def _old_erfc(x: np.ndarray) -> np.ndarray:
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.zeros_like(t)
    for coefficient in reversed(_NR_ERFC[1:]):
        poly = (poly + coefficient) * t
    result: np.ndarray = t * np.exp(-z * z + _NR_ERFC[0] + poly)
    return np.where(x >= 0, result, 2.0 - result)


def _old_mixture_cdf(y: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    cdf: np.ndarray = (0.5 * _old_erfc(-((y[..., None] - means) / stds) / np.sqrt(2.0))).mean(-1)
    return cdf


def _old_mixture_quantiles(means: np.ndarray, stds: np.ndarray, probs: np.ndarray) -> np.ndarray:
    shape = (len(probs), *means.shape[:-1])
    lo = np.broadcast_to((means - 9.0 * stds).min(axis=-1), shape).copy()
    hi = np.broadcast_to((means + 9.0 * stds).max(axis=-1), shape).copy()
    target = np.asarray(probs, dtype=np.float64).reshape(-1, *([1] * (means.ndim - 1)))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = _old_mixture_cdf(mid, means[None], stds[None]) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    quantiles: np.ndarray = 0.5 * (lo + hi)
    return quantiles


def _old_intervals(means: np.ndarray, variances: np.ndarray, levels: list[float]) -> np.ndarray:
    """summarize_regression's `interval` [L, N, K, 2] as it was computed."""
    mu = means.astype(np.float64).transpose(0, 2, 1)
    var = np.maximum(variances.astype(np.float64).transpose(0, 2, 1), 1e-300)
    tails = np.array([[(1.0 - level) / 2.0, (1.0 + level) / 2.0] for level in levels]).ravel()
    found = _old_mixture_quantiles(mu, np.sqrt(var), tails)
    return np.moveaxis(found.reshape(len(levels), 2, *mu.shape[:-1]), 1, -1)


# --- frozen: training/bayesian/metrics.py's mixture_quantile before issue 48 -------------------
def _old_training_quantile(p: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    ndtr = pytest.importorskip("scipy.special").ndtr
    sd = np.sqrt(var)
    lo = (mean - 10 * sd).min(axis=0)
    hi = (mean + 10 * sd).max(axis=0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = ndtr((mid - mean) / sd).mean(axis=0) < p
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


# --- draws [N, S, K] ---------------------------------------------------------------------------
def _sghmc_like(rng: np.random.Generator, rows: int, draws: int = 64) -> tuple[np.ndarray, ...]:
    """Per-row centers and spreads of the concrete model's order (MPa), epistemic ~ aleatoric."""
    center = rng.uniform(-20, 80, size=(rows, 1, 1))
    spread = rng.uniform(0.5, 8.0, size=(rows, 1, 1))
    means = center + spread * rng.standard_t(5, size=(rows, draws, 1))
    variances = (spread * rng.uniform(0.3, 1.5, size=(rows, draws, 1))) ** 2
    return means, variances


def _one_component(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.normal(10, 5, size=(64, 1, 2)), rng.uniform(0.01, 9, size=(64, 1, 2))


def _near_zero_variances(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    means, variances = _sghmc_like(rng, 64, 16)
    variances[:, ::3] = 1e-12
    variances[:, 1] = 0.0
    variances[::4] = 1e-20  # rows of point masses only
    return means, variances


def _separated_modes(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Three clusters 50 sd apart, holding 10, 20 and 34 of 64 draws."""
    offsets = np.repeat([0.0, 50.0, 100.0], [10, 20, 34])
    means = 5.0 + offsets[None, :, None] + rng.normal(0, 0.3, size=(32, 64, 1))
    return means, rng.uniform(0.5, 1.5, size=(32, 64, 1)) ** 2


def _two_wide_modes(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    means = np.where(np.arange(64) < 32, -30.0, 30.0)[None, :, None] + rng.normal(size=(16, 64, 1))
    return means, np.ones((16, 64, 1))


CASES: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, ...]]] = {
    "sghmc-like, 4096 rows": lambda rng: _sghmc_like(rng, 4096),
    "one component, two targets": _one_component,
    "near-zero variances": _near_zero_variances,
    "separated modes": _separated_modes,
    "two wide modes": _two_wide_modes,
}


def _worst(new: np.ndarray, old: np.ndarray, sd: np.ndarray) -> float:
    return float((np.abs(new - old) / np.maximum(np.abs(old), sd)).max())


@pytest.mark.parametrize("case", CASES)
def test_intervals_equal_the_old_ones_within_1e_6(case: str) -> None:
    """Only the intervals changed: the other fields' code is as it was."""
    means, variances = CASES[case](np.random.default_rng(48))
    new = summarize_regression(means, variances, LEVELS)
    old = _old_intervals(means, variances, LEVELS)
    assert _worst(new.interval, old, new.std[None, :, :, None]) <= TOLERANCE


def test_quantiles_solve_the_cdf() -> None:
    means, variances = _sghmc_like(np.random.default_rng(1), 256, 32)
    stds = np.sqrt(variances[..., 0])
    probs = np.array([0.0005, 0.005, 0.05, 0.25, 0.75, 0.95, 0.995, 0.9995])
    found = mixture.mixture_quantiles(means[..., 0], stds, probs)
    cdf = mixture.mixture_cdf(found, means[None, ..., 0], stds[None])
    np.testing.assert_allclose(cdf, np.broadcast_to(probs[:, None], cdf.shape), rtol=1e-10)


def test_training_intervals_equal_the_old_ones() -> None:
    metrics = pytest.importorskip("training.bayesian.metrics")
    means, variances = _sghmc_like(np.random.default_rng(2), 512)
    mean, var = means[..., 0].T, variances[..., 0].T  # [S, N], as the training job has them
    sd = np.sqrt(var.mean(axis=0) + mean.var(axis=0))
    for level in (0.5, 0.9, 0.95, 0.99):
        lower, upper = metrics.interval(level, mean, var)
        old_lower = _old_training_quantile((1 - level) / 2, mean, var)
        old_upper = _old_training_quantile((1 + level) / 2, mean, var)
        assert _worst(lower, old_lower, sd) <= 1e-10
        assert _worst(upper, old_upper, sd) <= 1e-10


def test_normal_cdf_is_accurate_to_3e_16() -> None:
    t = np.linspace(0.0, 9.0, 20_001)
    exact = np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in t])
    assert np.abs(mixture.normal_cdf(-t) - exact).max() <= 3e-16
    assert np.abs(mixture.normal_cdf(t) - (1.0 - exact)).max() <= 4.5e-16  # 1 - exact rounds too
    close = t <= 2.0
    assert (np.abs(mixture.normal_cdf(-t) - exact) / exact)[close].max() <= 2e-15


def test_normal_cdf_saturates_without_nan() -> None:
    x = np.array([-np.inf, -1e300, -40.0, 0.0, 40.0, 1e300, np.inf])
    np.testing.assert_array_equal(mixture.normal_cdf(x), [0, 0, 0, 0.5, 1, 1, 1])

"""Posterior-predictive summaries against closed forms and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.kinds.predictive.mixture import erfc, mixture_cdf, mixture_quantiles
from app.kinds.predictive.summaries import summarize_classification, summarize_regression

Z90 = 1.6448536269514722  # standard normal 0.95 quantile


def test_erfc_matches_the_standard_library() -> None:
    x = np.linspace(-6, 6, 2001)
    expected = np.array([math.erfc(v) for v in x])
    assert np.max(np.abs(erfc(x) - expected)) < 4e-16


def test_one_draw_is_its_own_gaussian() -> None:
    summary = summarize_regression(np.array([[[3.0]]]), np.array([[[4.0]]]), [0.9])
    assert summary.mean[0, 0] == 3.0
    assert summary.std[0, 0] == pytest.approx(2.0)
    assert summary.epistemic_std[0, 0] == 0.0
    assert summary.aleatoric_std[0, 0] == pytest.approx(2.0)
    lower, upper = summary.interval[0, 0, 0]
    assert lower == pytest.approx(3.0 - 2.0 * Z90, abs=1e-5)
    assert upper == pytest.approx(3.0 + 2.0 * Z90, abs=1e-5)


def test_identical_draws_have_no_epistemic_part() -> None:
    means = np.full((2, 16, 1), 1.5)
    variances = np.full((2, 16, 1), 0.25)
    summary = summarize_regression(means, variances, [0.5, 0.95])
    assert np.allclose(summary.epistemic_std, 0.0)
    assert np.allclose(summary.mc_standard_error, 0.0)
    assert np.allclose(summary.std, 0.5)
    assert np.allclose(summary.credible_interval_mean, 1.5)


def test_variance_splits_into_epistemic_and_aleatoric() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(size=(5, 64, 2))
    variances = rng.uniform(0.1, 2.0, size=(5, 64, 2))
    summary = summarize_regression(means, variances, [0.9])
    total = means.var(axis=1) + variances.mean(axis=1)
    assert np.allclose(summary.std**2, total)
    assert np.allclose(summary.epistemic_std**2 + summary.aleatoric_std**2, total)
    assert np.allclose(summary.mc_standard_error, means.std(axis=1, ddof=1) / 8.0)


def test_mixture_quantiles_match_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    means, stds = np.array([[-2.0, 0.0, 3.0]]), np.array([[0.5, 1.0, 0.7]])
    probs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    quantiles = mixture_quantiles(means, stds, probs)[:, 0]
    component = rng.integers(0, 3, size=2_000_000)
    draws = rng.normal(means[0, component], stds[0, component])
    assert np.allclose(quantiles, np.quantile(draws, probs), atol=0.01)
    assert np.allclose(mixture_cdf(quantiles[:, None], means, stds)[:, 0], probs, atol=1e-6)


def test_classification_entropy_splits_into_expected_entropy_and_information() -> None:
    confident_disagreeing = np.log(np.array([[[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]]]))
    agreeing = np.log(np.array([[[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]]))
    disagree = summarize_classification(confident_disagreeing)
    agree = summarize_classification(agreeing)
    assert disagree.mutual_information[0] > 0.5  # the draws disagree: epistemic
    assert agree.mutual_information[0] == pytest.approx(0.0, abs=1e-12)
    p = np.array([0.5, 0.3, 0.2])
    assert agree.entropy[0] == pytest.approx(-(p * np.log(p)).sum())
    assert disagree.entropy[0] == pytest.approx(
        disagree.expected_entropy[0] + disagree.mutual_information[0]
    )
    assert disagree.variation_ratio[0] == 0.5
    assert agree.variation_ratio[0] == 0.0
    assert np.allclose(agree.probs[0], p)
    assert agree.label[0] == 0

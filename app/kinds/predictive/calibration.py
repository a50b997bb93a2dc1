"""Scoring observed outcomes against kept predictions, and calibration summaries: pure NumPy.

Regression is scored by the PIT (the predictive mixture's CDF at the observation) and the NLL
of the mixture; a central interval at level L covers y exactly when |PIT - 1/2| <= L/2, so
coverage at every level follows from the PITs. Classification is scored by the NLL of the
observed class and the (confidence, correct) pair that ECE bins."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.kinds.predictive.mixture import mixture_cdf
from app.kinds.predictive.summaries import softmax

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
PIT_BINS = 10
ECE_BINS = 15
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class Score:
    nll: float
    pit: float | None = None
    confidence: float | None = None
    correct: bool | None = None


def score_regression(means: np.ndarray, variances: np.ndarray, observed: float) -> Score:
    """One row's draws [S] (a single target) against the observed value."""
    mu = means.astype(np.float64)
    std = np.sqrt(np.maximum(variances.astype(np.float64), 1e-300))
    z = (observed - mu) / std
    log_pdf = -0.5 * z**2 - np.log(std) - _LOG_SQRT_2PI
    peak = log_pdf.max()
    log_mixture = peak + math.log(float(np.exp(log_pdf - peak).mean()))
    pit = float(mixture_cdf(np.array(observed), mu, std))
    return Score(nll=-log_mixture, pit=min(max(pit, 0.0), 1.0))


def score_classification(logits: np.ndarray, observed: int) -> Score:
    """One row's draws [S, C] against the observed class index."""
    probs = softmax(logits.astype(np.float64)).mean(axis=0)
    return Score(
        nll=-math.log(max(float(probs[observed]), 1e-300)),
        confidence=float(probs.max()),
        correct=int(probs.argmax()) == observed,
    )


def coverage_band(level: float, count: int) -> tuple[float, float]:
    """Where observed coverage of a calibrated model falls 95% of the time (binomial)."""
    half = 1.96 * math.sqrt(level * (1 - level) / max(count, 1))
    return max(0.0, level - half), min(1.0, level + half)


def summarize_regression_feedback(pits: np.ndarray, nlls: np.ndarray) -> dict[str, Any]:
    count = len(pits)
    coverage, warnings = {}, []
    for level in COVERAGE_LEVELS:
        observed = float(np.mean(np.abs(pits - 0.5) <= level / 2)) if count else None
        low, high = coverage_band(level, count)
        ok = observed is None or low <= observed <= high
        coverage[str(level)] = {"observed": observed, "band": [low, high], "ok": ok}
        if not ok:
            warnings.append(
                f"coverage at {level} is {observed:.3f}, outside [{low:.3f}, "
                f"{high:.3f}] for {count} observations"
            )
    histogram: list[int] = (
        np.histogram(pits, bins=PIT_BINS, range=(0.0, 1.0))[0].tolist() if count else []
    )
    return {
        "count": count,
        "nll": float(nlls.mean()) if count else None,
        "coverage": coverage,
        "pit_histogram": histogram,
        "warnings": warnings,
    }


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> tuple[float, list[dict[str, Any]]]:
    """ECE over equal-width confidence bins, with the bins (for a reliability diagram)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        member = index == b
        if not member.any():
            continue
        accuracy, mean_confidence = float(correct[member].mean()), float(confidence[member].mean())
        ece += member.mean() * abs(accuracy - mean_confidence)
        table.append(
            {
                "bin": [float(edges[b]), float(edges[b + 1])],
                "count": int(member.sum()),
                "accuracy": accuracy,
                "confidence": mean_confidence,
            }
        )
    return float(ece), table


def summarize_classification_feedback(
    confidence: np.ndarray, correct: np.ndarray, nlls: np.ndarray
) -> dict[str, Any]:
    count = len(confidence)
    ece, table = expected_calibration_error(confidence, correct) if count else (None, [])
    return {
        "count": count,
        "nll": float(nlls.mean()) if count else None,
        "accuracy": float(correct.mean()) if count else None,
        "ece": ece,
        "reliability": table,
        "warnings": [],
    }

"""The response side of the `predictive` kind: S draws per row become the posterior
predictive (mean, epistemic and aleatoric spread, intervals; or class probabilities with
entropy and mutual information)."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.kinds.predictive.summaries import summarize_classification, summarize_regression
from app.kinds.spec import Finished


def render(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
) -> dict[str, Any]:
    """Per-row predictive summaries; rows are answered by (job_id, row index)."""
    tensors = drawn(meta, outcome)
    if meta["task"] == "regression":
        rows = regression_rows(tensors["mean"], tensors["var"], meta["levels"])
    else:
        rows = _classification_rows(tensors["logits"], meta)
    if meta["return_draws"]:
        for i, row in enumerate(rows):
            row["draws"] = {name: value[i].tolist() for name, value in tensors.items()}
    return {
        "prediction_id": job_id,
        "job_id": job_id,
        **{
            k: meta[k]
            for k in (
                "model",
                "version",
                "alias",
                "sha256",
                "task",
                "method",
                "draws_total",
                "draws",
            )
        },
        "runtime": outcome.info.get("runtime", ""),
        "provider": outcome.info.get("provider", ""),
        "predictions": rows,
    }


def drawn(meta: dict[str, Any], outcome: Finished) -> dict[str, np.ndarray]:
    """Each output of the draws a request asked for (the first `draws` of S), [N, draws, ...]."""
    assert outcome.tensors is not None
    draws = int(meta["draws"])
    return {name: value[:, :draws] for name, value in outcome.tensors.items()}


def _scalar_or_list(values: np.ndarray) -> float | list[float]:
    return float(values[0]) if values.shape[0] == 1 else values.tolist()


def regression_rows(mean: np.ndarray, var: np.ndarray, levels: list[float]) -> list[dict[str, Any]]:
    """Per-row regression fields from per-draw means and variances [N, S, K]."""
    s = summarize_regression(mean, var, levels)
    rows = []
    for i in range(mean.shape[0]):
        rows.append(
            {
                "row": i,
                "mean": _scalar_or_list(s.mean[i]),
                "std": _scalar_or_list(s.std[i]),
                "epistemic_std": _scalar_or_list(s.epistemic_std[i]),
                "aleatoric_std": _scalar_or_list(s.aleatoric_std[i]),
                "interval": {
                    str(level): _pairs(s.interval[j, i]) for j, level in enumerate(levels)
                },
                "credible_interval_mean": {
                    str(level): _pairs(s.credible_interval_mean[j, i])
                    for j, level in enumerate(levels)
                },
                "mc_standard_error": _scalar_or_list(s.mc_standard_error[i]),
            }
        )
    return rows


def _pairs(bounds: np.ndarray) -> list[float] | list[list[float]]:
    """[K, 2] -> [lower, upper] for one target, else one pair per target."""
    pairs: list[float] | list[list[float]] = (
        bounds[0].tolist() if bounds.shape[0] == 1 else bounds.tolist()
    )
    return pairs


def _classification_rows(logits: np.ndarray, meta: dict[str, Any]) -> list[dict[str, Any]]:
    s = summarize_classification(logits)
    classes = meta.get("classes")
    return [
        {
            "row": i,
            "probs": s.probs[i].tolist(),
            "label": int(s.label[i]),
            "class": classes[int(s.label[i])] if classes else None,
            "max_prob": float(s.max_prob[i]),
            "entropy": float(s.entropy[i]),
            "expected_entropy": float(s.expected_entropy[i]),
            "mutual_information": float(s.mutual_information[i]),
            "variation_ratio": float(s.variation_ratio[i]),
        }
        for i in range(logits.shape[0])
    ]

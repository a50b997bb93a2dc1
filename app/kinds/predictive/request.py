"""The api half of the `predictive` kind: rows -> x, draws -> the posterior predictive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from hanmo_client.schemas import PredictRequest

from app.errors import InvalidInput
from app.runtime.predictive import summarize_classification, summarize_regression

if TYPE_CHECKING:  # annotations only: bench/litserve_app.py imports this without the registry
    from app.queue.results import Outcome
    from app.registry.service import ServedVersion

Inputs = dict[str, np.ndarray]


def prepare(served: ServedVersion, request: PredictRequest) -> tuple[Inputs, dict[str, Any]]:
    """Validate rows against the card's features and draws against S; return x and job meta."""
    signature: dict[str, Any] = served.card.get("signature", {})
    x = _rows(request.inputs, int(signature["input_dim"]), signature.get("features"))
    total = int(signature["draws"])
    draws = request.draws or total
    if draws > total:
        raise InvalidInput(f"draws must be at most S={total}", errors=[{"field": "draws"}])
    levels = request.interval if isinstance(request.interval, list) else [request.interval]
    meta = {
        "kind": "predictive",
        "op": "predict",
        "model": served.model,
        "version": served.version,
        "alias": None if request.version else (request.alias or "production"),
        "sha256": served.sha256,
        "task": signature["task"],
        "method": signature.get("method"),
        "n": len(x),
        "draws_total": total,
        "draws": draws,
        "levels": sorted(set(levels)),
        "return_draws": request.return_draws,
        "targets": signature.get("targets"),
        "classes": signature.get("classes"),
    }
    return {"x": x}, meta


def _rows(inputs: list[Any], width: int, features: list[str] | None) -> np.ndarray:
    if isinstance(inputs[0], dict):
        if not features:
            raise InvalidInput(
                "this model's card names no features: send rows of numbers",
                errors=[{"field": "inputs"}],
            )
        for i, row in enumerate(inputs):
            if not isinstance(row, dict) or set(row) != set(features):
                unknown, missing = set(row) - set(features), set(features) - set(row)
                raise InvalidInput(
                    f"row {i}: unknown features {sorted(unknown)}, missing {sorted(missing)}",
                    errors=[{"field": f"inputs.{i}"}],
                )
        return _float32([[row[f] for f in features] for row in inputs])
    for i, row in enumerate(inputs):
        if len(row) != width:
            raise InvalidInput(
                f"row {i} has {len(row)} values; the model takes {width}",
                errors=[{"field": f"inputs.{i}"}],
            )
    return _float32(inputs)


F32_MAX = float(np.finfo(np.float32).max)


def _float32(rows: list[list[float]]) -> np.ndarray:
    """Rows as float32; a value beyond float32's range is refused (it would become inf and
    every summary NaN), found by schemathesis."""
    values = np.asarray(rows, dtype=np.float64)
    outside = np.argwhere(np.abs(values) > F32_MAX)
    if outside.size:
        i, j = (int(v) for v in outside[0])
        raise InvalidInput(
            f"row {i}, value {j} is outside float32's range (|x| <= {F32_MAX:.3g})",
            errors=[{"field": f"inputs.{i}"}],
        )
    return values.astype(np.float32)


def render(
    meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> dict[str, Any]:
    """Per-row predictive summaries; rows are answered by (job_id, row index)."""
    assert outcome.tensors is not None
    draws = int(meta["draws"])
    tensors = {name: value[:, :draws] for name, value in outcome.tensors.items()}
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

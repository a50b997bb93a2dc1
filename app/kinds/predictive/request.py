"""The request side of the `predictive` kind: rows (numbers or named features) become `x`
[N, D] and a JobMeta naming the draws and interval levels to summarise."""

from __future__ import annotations

from typing import Any

import numpy as np
from hanmo_client.schemas import PredictRequest

from app.errors import InvalidInput
from app.kinds.spec import Inputs, JobMeta, Served


def prepare(served: Served, request: PredictRequest) -> tuple[Inputs, JobMeta]:
    """Validate rows against the card's features and draws against S; return x and job meta."""
    signature: dict[str, Any] = served.card.get("signature", {})
    x = _rows(request.inputs, int(signature["input_dim"]), signature.get("features"))
    total = int(signature["draws"])
    draws = request.draws or total
    if draws > total:
        raise InvalidInput(f"draws must be at most S={total}", errors=[{"field": "draws"}])
    levels = request.interval if isinstance(request.interval, list) else [request.interval]
    meta = JobMeta.of(
        served,
        "predict",
        request,
        task=signature["task"],
        method=signature.get("method"),
        n=len(x),
        draws_total=total,
        draws=draws,
        levels=sorted(set(levels)),
        return_draws=request.return_draws,
        targets=signature.get("targets"),
        classes=signature.get("classes"),
    )
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

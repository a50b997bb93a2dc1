"""The `predictive` kind over the Open Inference Protocol: `x` [N, D] (and optional interval
levels) becomes the native PredictRequest; the answer is the posterior summaries /predict
gives, as named FP64 tensors with rows first, and each draw's raw outputs (`<output>_draws`)
when asked for by name or with the `return_draws` parameter."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from hanmo_client.schemas import PredictRequest

from app.errors import InvalidInput
from app.kinds.oip import OipCall, Prepare, Scalar, TensorMeta, native
from app.kinds.predictive import request as predictive
from app.kinds.predictive.response import drawn
from app.kinds.predictive.summaries import summarize_classification, summarize_regression
from app.kinds.spec import Finished

PER_TARGET = ("mean", "std", "epistemic_std", "aleatoric_std")
INTERVALS = ("interval", "credible_interval_mean")  # [N, L, K, 2]: per level, [lower, upper]
PER_ROW = ("max_prob", "entropy", "expected_entropy", "mutual_information", "variation_ratio")
DRAWS = {"regression": ("mean", "var"), "classification": ("logits",)}


class PredictiveOip:
    parameters: tuple[str, ...] = ("draws", "return_draws")

    def inputs(self, signature: dict[str, Any]) -> tuple[TensorMeta, ...]:
        return (
            TensorMeta("x", "FP32", (-1, int(signature["input_dim"]))),
            TensorMeta("interval", "FP64", (-1,), accepts=("FP32",)),
        )

    def outputs(self, signature: dict[str, Any]) -> tuple[TensorMeta, ...]:
        if signature["task"] == "regression":
            k = len(signature.get("targets") or ()) or -1
            listed = [TensorMeta(name, "FP64", (-1, k)) for name in PER_TARGET]
            listed += [TensorMeta(name, "FP64", (-1, -1, k, 2)) for name in INTERVALS]
            listed.append(TensorMeta("mc_standard_error", "FP64", (-1, k)))
        else:
            k = len(signature.get("classes") or ()) or -1
            listed = [TensorMeta("probs", "FP64", (-1, k)), TensorMeta("label", "INT64", (-1,))]
            listed += [TensorMeta(name, "FP64", (-1,)) for name in PER_ROW]
        listed += [
            TensorMeta(f"{name}_draws", "FP32", (-1, -1, k), on_request=True)
            for name in DRAWS[signature["task"]]
        ]
        return tuple(listed)

    def request(self, call: OipCall, max_rows: int) -> tuple[PredictRequest, Prepare, int]:
        if "x" not in call.tensors:
            raise InvalidInput("input 'x' is required: rows of features [N, D]")
        levels = call.tensors.get("interval")
        asked = any(name.endswith("_draws") for name in call.wanted or ())
        fields = {
            **call.options,
            **call.parameters,
            "inputs": call.tensors["x"].tolist(),
            "interval": None if levels is None else levels.tolist(),
        }
        if asked:
            fields["return_draws"] = True
        body = native(PredictRequest, fields, {"inputs": "x"})
        return body, partial(predictive.prepare, request=body), len(body.inputs)

    def answer(
        self, meta: dict[str, Any], outcome: Finished
    ) -> tuple[dict[str, np.ndarray], dict[str, Scalar]]:
        tensors = drawn(meta, outcome)
        if meta["task"] == "regression":
            outputs = _regression(tensors, meta["levels"])
        else:
            outputs = _classification(tensors)
        if meta["return_draws"]:
            outputs.update({f"{name}_draws": value for name, value in tensors.items()})
        parameters: dict[str, Scalar] = {
            key: meta[key] for key in ("task", "draws", "draws_total") if meta[key] is not None
        }
        parameters["interval"] = ",".join(str(level) for level in meta["levels"])
        return outputs, parameters


def _regression(tensors: dict[str, np.ndarray], levels: list[float]) -> dict[str, np.ndarray]:
    s = summarize_regression(tensors["mean"], tensors["var"], levels)
    outputs = {name: getattr(s, name) for name in (*PER_TARGET, "mc_standard_error")}
    outputs.update({name: np.moveaxis(getattr(s, name), 0, 1) for name in INTERVALS})
    return outputs


def _classification(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    s = summarize_classification(tensors["logits"])
    outputs = {name: getattr(s, name) for name in ("probs", *PER_ROW)}
    outputs["label"] = s.label.astype(np.int64)
    return outputs


OIP = PredictiveOip()

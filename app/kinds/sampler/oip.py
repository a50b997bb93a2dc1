"""The `sampler` kind over the Open Inference Protocol: `seed`, `n`, `temperature` and `labels`
become the native SampleRequest (format `array`), or an explicit `z` is sampled as given; the
answer is `x` [N, ...sample_shape] FP32, the very values /sample's `array` format gives."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from hanmo_client.schemas import SampleRequest

from app.errors import InvalidInput
from app.kinds.oip import INTEGERS, OipCall, Prepare, Scalar, TensorMeta, native, scalar
from app.kinds.sampler import request as samplers
from app.kinds.spec import Finished

NOISE_ONLY = ("seed", "n", "temperature")  # made by the api from the seed: not with a given z


class SamplerOip:
    parameters: tuple[str, ...] = ()

    def inputs(self, signature: dict[str, Any]) -> tuple[TensorMeta, ...]:
        listed = [
            _integer("seed", (1,)),
            _integer("n", (1,)),
            TensorMeta("temperature", "FP32", (1,), accepts=("FP64",)),
        ]
        if signature.get("num_labels"):
            listed.append(_integer("labels", (-1,)))
        listed.append(TensorMeta("z", "FP32", (-1, int(signature["z_dim"]))))
        return tuple(listed)

    def outputs(self, signature: dict[str, Any]) -> tuple[TensorMeta, ...]:
        shape = tuple(int(d) for d in signature.get("sample_shape") or (-1,))
        return (TensorMeta("x", "FP32", (-1, *shape)),)

    def request(self, call: OipCall, max_rows: int) -> tuple[SampleRequest, Prepare, int]:
        tensors = call.tensors
        labels = tensors.get("labels")
        fields: dict[str, Any] = {
            **call.options,
            "format": "array",
            "labels": None if labels is None else _labels(labels),
        }
        z = tensors.get("z")
        if z is None:
            fields.update({name: scalar(tensors, name) for name in NOISE_ONLY})
            body = native(SampleRequest, fields)
            return body, partial(samplers.prepare, request=body, max_rows=max_rows), body.n
        given = [name for name in NOISE_ONLY if name in tensors]
        if given:
            raise InvalidInput(f"give either `z` or {given}, not both: z is the noise itself")
        body = native(SampleRequest, {**fields, "n": len(z)}, {"n": "z"})  # z's rows
        return body, partial(samplers.prepare_noise, request=body, z=z, max_rows=max_rows), body.n

    def answer(
        self, meta: dict[str, Any], outcome: Finished
    ) -> tuple[dict[str, np.ndarray], dict[str, Scalar]]:
        assert outcome.tensors is not None
        parameters: dict[str, Scalar] = {"temperature": meta["temperature"]}
        if "seed" in meta:
            parameters["seed"] = meta["seed"]
        return {"x": outcome.tensors["x"]}, parameters


def _integer(name: str, shape: tuple[int, ...]) -> TensorMeta:
    """An INT64 input that takes any integer datatype whose values fit."""
    return TensorMeta(name, "INT64", shape, accepts=INTEGERS[1:])


def _labels(labels: np.ndarray) -> int | list[int]:
    """One label for every row, or one per row (as /sample takes them)."""
    values = [int(v) for v in labels.tolist()]
    return values[0] if len(values) == 1 else values


OIP = SamplerOip()

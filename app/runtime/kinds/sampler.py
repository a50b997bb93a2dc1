"""The `sampler` kind: noise `z` [N, d] float32 (and `label` [N] int64 when conditional) in,
samples `x` [N, ...] out. Noise is made by the api from the request's seed, never in-graph."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.errors import ContractViolation
from app.runtime.kinds.base import Tensors
from app.runtime.sessions import Graph


class SamplerKind:
    roles: tuple[str, ...] = ("sample",)

    def check(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        graph = graphs["sample"]
        names = {i.name: i for i in graph.inputs}
        z_dim = int(signature.get("z_dim", 0))
        if z_dim < 1:
            raise ContractViolation("a sampler's card must give signature.z_dim >= 1")
        if "z" not in names:
            raise ContractViolation(f"the sample graph needs an input 'z', has {list(names)}")
        if names["z"].dtype not in ("", "float32"):
            raise ContractViolation(f"input 'z' must be float32, is {names['z'].dtype}")
        wants_label = bool(signature.get("num_labels"))
        if wants_label != ("label" in names):
            raise ContractViolation("input 'label' must exist exactly when signature.num_labels")
        if "x" not in {o.name for o in graph.outputs}:
            raise ContractViolation("the sample graph needs an output 'x'")
        expected = tuple(int(d) for d in signature.get("sample_shape", ()))
        for rows in (1, 3):
            try:
                x = self.run(signature, graphs, self.example(signature, rows))["x"]
            except ContractViolation:
                raise
            except Exception as exc:  # any runtime failure means the graph breaks the contract
                raise ContractViolation(f"the sample graph failed on {rows} rows: {exc}") from exc
            if x.shape != (rows, *expected) or not np.isfinite(x).all():
                raise ContractViolation(
                    f"{rows} rows gave x of shape {x.shape}, expected {(rows, *expected)}"
                )

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        inputs: Tensors = {"z": np.zeros((rows, int(signature["z_dim"])), np.float32)}
        if signature.get("num_labels"):
            inputs["label"] = np.arange(rows, dtype=np.int64) % int(signature["num_labels"])
        return inputs

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        x = graphs["sample"].run(inputs)["x"]
        shape = tuple(int(d) for d in signature.get("sample_shape", x.shape[1:]))
        if x.shape[1:] != shape:
            try:
                x = x.reshape(x.shape[0], *shape)
            except ValueError as exc:
                raise ContractViolation(f"output x of shape {x.shape} is not {shape}") from exc
        return {"x": x.astype(np.float32, copy=False)}

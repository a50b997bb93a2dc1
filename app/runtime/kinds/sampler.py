"""The `sampler` kind: noise `z` [N, d] float32 (and `label` [N] int64 when conditional) in,
samples `x` [N, ...] out. Noise is made by the api from the request's seed, never in-graph.

A sampler may also export a density (signature.log_prob): graph role `log_prob`, input `x`
[N, input_dim] float32, output `log_prob` [N] in nats. A job runs the density when its inputs
hold `x`, and samples when they hold `z`."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.errors import ContractViolation
from app.runtime.kinds.base import Tensors
from app.runtime.sessions import Graph


class SamplerKind:
    roles: tuple[str, ...] = ("sample",)

    def check(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        self._check_sample_io(signature, graphs["sample"])
        expected = tuple(int(d) for d in signature.get("sample_shape", ()))
        for rows in (1, 3):
            x = _checked_run(self, signature, graphs, self.example(signature, rows))["x"]
            if x.shape != (rows, *expected) or not np.isfinite(x).all():
                raise ContractViolation(
                    f"{rows} rows gave x of shape {x.shape}, expected {(rows, *expected)}"
                )
        if signature.get("log_prob"):
            self._check_log_prob(signature, graphs)

    def _check_sample_io(self, signature: dict[str, Any], graph: Graph) -> None:
        names = {i.name: i for i in graph.inputs}
        if int(signature.get("z_dim", 0)) < 1:
            raise ContractViolation("a sampler's card must give signature.z_dim >= 1")
        if "z" not in names:
            raise ContractViolation(f"the sample graph needs an input 'z', has {list(names)}")
        if names["z"].dtype not in ("", "float32"):
            raise ContractViolation(f"input 'z' must be float32, is {names['z'].dtype}")
        if bool(signature.get("num_labels")) != ("label" in names):
            raise ContractViolation("input 'label' must exist exactly when signature.num_labels")
        if "x" not in {o.name for o in graph.outputs}:
            raise ContractViolation("the sample graph needs an output 'x'")

    def _check_log_prob(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        spec = signature["log_prob"]
        if "log_prob" not in graphs or int(spec.get("input_dim", 0)) < 1:
            raise ContractViolation("signature.log_prob needs a `log_prob` graph and input_dim")
        for rows in (1, 3):
            inputs = {"x": np.zeros((rows, int(spec["input_dim"])), np.float32)}
            out = _checked_run(self, signature, graphs, inputs)["log_prob"]
            if out.shape != (rows,) or not np.isfinite(out).all():
                raise ContractViolation(f"{rows} rows gave log_prob of shape {out.shape}")

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        inputs: Tensors = {"z": np.zeros((rows, int(signature["z_dim"])), np.float32)}
        if signature.get("num_labels"):
            inputs["label"] = np.arange(rows, dtype=np.int64) % int(signature["num_labels"])
        return inputs

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        if "x" in inputs:
            log_prob = graphs["log_prob"].run(inputs)["log_prob"]
            return {"log_prob": log_prob.reshape(-1).astype(np.float32, copy=False)}
        x = graphs["sample"].run(inputs)["x"]
        shape = tuple(int(d) for d in signature.get("sample_shape", x.shape[1:]))
        if x.shape[1:] != shape:
            try:
                x = x.reshape(x.shape[0], *shape)
            except ValueError as exc:
                raise ContractViolation(f"output x of shape {x.shape} is not {shape}") from exc
        return {"x": x.astype(np.float32, copy=False)}


def _checked_run(
    kind: SamplerKind, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors
) -> Tensors:
    try:
        return kind.run(signature, graphs, inputs)
    except ContractViolation:
        raise
    except Exception as exc:  # any runtime failure means the graph breaks the contract
        raise ContractViolation(
            f"the graph failed on {len(next(iter(inputs.values())))} rows: {exc}"
        ) from exc

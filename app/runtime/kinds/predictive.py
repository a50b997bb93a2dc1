"""The `predictive` kind: `x` [N, D] float32 in; per posterior draw, all S draws from one graph:
regression `mean` and `var` [S, N, K], classification `logits` [S, N, C]. A job's outputs are
returned with rows first ([N, S, ...]) so batches split like every other kind's."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.errors import ContractViolation
from app.runtime.kinds.base import Tensors
from app.runtime.sessions import Graph

OUTPUTS = {"regression": ("mean", "var"), "classification": ("logits",)}


class PredictiveKind:
    roles: tuple[str, ...] = ("predict",)

    def check(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        task = signature.get("task")
        if task not in OUTPUTS:
            raise ContractViolation("signature.task must be `regression` or `classification`")
        for field in ("input_dim", "draws"):
            if int(signature.get(field, 0)) < 1:
                raise ContractViolation(f"a predictive card must give signature.{field} >= 1")
        graph = graphs["predict"]
        if [i.name for i in graph.inputs] != ["x"]:
            raise ContractViolation("the predict graph takes exactly one input, `x`")
        missing = set(OUTPUTS[task]) - {o.name for o in graph.outputs}
        if missing:
            raise ContractViolation(f"a {task} graph needs outputs {sorted(missing)}")
        for rows in (1, 3):
            self._check_outputs(signature, graphs, rows)

    def _check_outputs(
        self, signature: dict[str, Any], graphs: dict[str, Graph], rows: int
    ) -> None:
        try:
            outputs = self.run(signature, graphs, self.example(signature, rows))
        except Exception as exc:  # any runtime failure means the graph breaks the contract
            raise ContractViolation(f"the predict graph failed on {rows} rows: {exc}") from exc
        draws = int(signature["draws"])
        for name, value in outputs.items():
            if value.ndim != 3 or value.shape[:2] != (rows, draws):
                graph_shape = (value.shape[1], value.shape[0], *value.shape[2:])
                raise ContractViolation(
                    f"{rows} rows gave {name} of shape {graph_shape}; "
                    f"expected [S={draws}, N={rows}, ...]"
                )
            if not np.isfinite(value).all():
                raise ContractViolation(f"{name} is not finite on example inputs")
        if "var" in outputs and not (outputs["var"] > 0).all():
            raise ContractViolation("var must be positive")

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        low, high = signature.get("input_range", (0.0, 0.0))
        value = (float(low) + float(high)) / 2
        return {"x": np.full((rows, int(signature["input_dim"])), value, np.float32)}

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        outputs = graphs["predict"].run(inputs)
        return {
            name: np.ascontiguousarray(outputs[name].transpose(1, 0, 2), dtype=np.float32)
            for name in OUTPUTS[signature["task"]]
        }

"""The `predictive` kind: `x` [N, D] float32 in; per posterior draw, all S draws from one graph:
regression `mean` and `var` [S, N, K], classification `logits` [S, N, C]. A job's outputs are
returned with rows first ([N, S, ...]) so batches split like every other kind's."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.kinds import base
from app.kinds.base import CheckedKind, Data, Graph, Tensors

OUTPUTS = {"regression": ("mean", "var"), "classification": ("logits",)}


class PredictiveKind(CheckedKind):
    roles: tuple[str, ...] = ("predict",)

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        task = signature.get("task")
        problems = (
            []
            if task in OUTPUTS
            else [f"signature.task must be `regression` or `classification`, is {task!r}"]
        )
        problems += [
            f"a predictive card must give signature.{field} >= 1"
            for field in ("input_dim", "draws")
            if base.positive(signature.get(field)) is None
        ]
        graph = graphs.get("predict")
        if graph is None:
            return problems
        problems += _io_problems(signature, graph)
        return problems or self._run_problems(signature, graph, data)

    def _run_problems(self, signature: dict[str, Any], graph: Graph, data: Data) -> list[str]:
        """Run on random rows at each batch size: every output finite, [S, N, K] with S the
        card's draws and K the same at every N; `var` positive."""
        outputs, problems = base.run_each(
            "graphs.predict", graph.run, self.random_inputs(signature, data)
        )
        if problems:
            return problems
        draws = int(signature["draws"])
        for name in OUTPUTS[signature["task"]]:
            where = f"graphs.predict output `{name}`"
            runs = {rows: out[name] for rows, out in outputs.items()}
            problems += base.output_problems(where, runs, axis=1)
            problems += [
                f"{where}: shape {value.shape} on N={rows}, expected [S={draws}, N={rows}, K] "
                "(S = signature.draws)"
                for rows, value in runs.items()
                if value.ndim != 3 or value.shape[0] != draws
            ][:1]
        if (
            not problems
            and "var" in outputs[1]
            and not all((out["var"] > 0).all() for out in outputs.values())
        ):
            problems.append("graphs.predict output `var`: must be positive on random inputs")
        return problems

    def random_inputs(self, signature: dict[str, Any], data: Data = None) -> dict[int, Tensors]:
        """Seeded rows near the training data: around each feature's median within its range
        (the card's data.feature_summary), else around the middle of signature.input_range, else
        standard normal."""
        rng = np.random.default_rng(base.CHECK_SEED)
        dim = int(signature["input_dim"])
        low, mid, spread, high = _feature_ranges(signature, data, dim)
        rows_of = {
            rows: mid + spread * rng.standard_normal((rows, dim)) for rows in base.CHECK_ROWS
        }
        return {
            rows: {"x": np.clip(x, low, high).astype(np.float32)} for rows, x in rows_of.items()
        }

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


def _io_problems(signature: dict[str, Any], graph: Graph) -> list[str]:
    where = "graphs.predict"
    problems = []
    if [i.name for i in graph.inputs] != ["x"]:
        problems.append(
            f"{where} takes exactly one input, `x`; has {[i.name for i in graph.inputs]}"
        )
    problems += base.input_problems(
        where, graph, "x", "float32", (None, base.positive(signature.get("input_dim")))
    )
    missing = set(OUTPUTS[signature["task"]]) - {o.name for o in graph.outputs}
    if missing:
        problems.append(f"{where}: a {signature['task']} graph needs outputs {sorted(missing)}")
    return problems


def _feature_ranges(
    signature: dict[str, Any], data: Data, dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(low, centre, spread, high) per input feature for the check's random rows."""
    summary = data.get("feature_summary") if isinstance(data, dict) else None
    if isinstance(summary, dict) and len(summary) == dim:
        names = signature.get("features")
        order = names if isinstance(names, list) and set(names) == set(summary) else list(summary)
        low, mid, high = (
            np.array([float(summary[f][key]) for f in order]) for key in ("min", "median", "max")
        )
        return low, mid, (high - low) / 8, high
    if "input_range" in signature:
        start, stop = (float(v) for v in signature["input_range"])
        return (
            np.full(dim, start),
            np.full(dim, (start + stop) / 2),
            np.full(dim, (stop - start) / 4),
            np.full(dim, stop),
        )
    return np.full(dim, -np.inf), np.zeros(dim), np.ones(dim), np.full(dim, np.inf)

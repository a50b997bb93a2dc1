"""The `sampler` kind: noise `z` [N, d] float32 (and `label` [N] int64 when conditional) in,
samples `x` [N, ...] out. Noise is made by the api from the request's seed, never in-graph.

A sampler may also export a density (signature.log_prob): graph role `log_prob`, input `x`
[N, input_dim] float32, output `log_prob` [N] in nats. A job runs the density when its inputs
hold `x`, and samples when they hold `z`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.errors import ContractViolation
from app.kinds.base import (
    CHECK_ROWS,
    CHECK_SEED,
    CheckedKind,
    Data,
    Graph,
    Tensors,
    input_problems,
    output_problems,
    positive,
    run_each,
)
from app.noise import standard_normal_rows


class SamplerKind(CheckedKind):
    roles: tuple[str, ...] = ("sample",)

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        problems = _field_problems(signature)
        if "sample" in graphs:
            problems += _sample_io_problems(signature, graphs["sample"])
        if not problems and "sample" in graphs:
            problems += self._sample_run_problems(signature, graphs["sample"])
        if signature.get("log_prob"):
            problems += self._log_prob_problems(signature, graphs)
        return problems

    def _sample_run_problems(self, signature: dict[str, Any], graph: Graph) -> list[str]:
        """Run on noise like the api's at each batch size; `x` finite, [N, ...] and the card's
        sample_shape (the worker reshapes a flat output to it)."""
        where = "graphs.sample output `x`"
        outputs, problems = run_each("graphs.sample", graph.run, self.random_inputs(signature))
        if problems:
            return problems
        runs = {rows: out["x"] for rows, out in outputs.items()}
        problems = output_problems(where, runs)
        expected = tuple(int(d) for d in signature.get("sample_shape", ()))
        if not problems and expected and math.prod(runs[1].shape[1:]) != math.prod(expected):
            problems.append(
                f"{where}: shape {runs[1].shape} on N=1, the card says "
                f"signature.sample_shape {list(expected)} — make them agree"
            )
        return problems

    def random_inputs(self, signature: dict[str, Any]) -> dict[int, Tensors]:
        """Noise as the api makes it (seeded), and labels cycling through the classes."""
        inputs = {rows: self.example(signature, rows) for rows in CHECK_ROWS}
        for rows, feeds in inputs.items():
            feeds["z"] = standard_normal_rows(CHECK_SEED, rows, int(signature["z_dim"]))
        return inputs

    def _log_prob_problems(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> list[str]:
        spec = signature["log_prob"]
        dim = positive(spec.get("input_dim")) if isinstance(spec, dict) else None
        if dim is None:
            return ["signature.log_prob must give input_dim >= 1 (the density's input width)"]
        if "log_prob" not in graphs:
            return ["signature.log_prob needs a graph with role `log_prob` in card.json's graphs"]
        rng = np.random.default_rng(CHECK_SEED)
        inputs = {rows: {"x": rng.random((rows, dim), dtype=np.float32)} for rows in CHECK_ROWS}
        where = "graphs.log_prob"
        outputs, problems = run_each(where, graphs["log_prob"].run, inputs)
        if problems:
            return problems
        runs = {rows: out["log_prob"].reshape(rows, -1) for rows, out in outputs.items()}
        problems = output_problems(f"{where} output `log_prob`", runs)
        if not problems and runs[1].shape != (1, 1):
            problems.append(
                f"{where} output `log_prob` must be [N], is {outputs[1]['log_prob'].shape}"
            )
        return problems

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


def _field_problems(signature: dict[str, Any]) -> list[str]:
    problems = []
    if positive(signature.get("z_dim")) is None:
        problems.append("a sampler's card must give signature.z_dim >= 1 (the noise width)")
    shape = signature.get("sample_shape", ())
    if not isinstance(shape, list | tuple) or not all(isinstance(d, int) and d > 0 for d in shape):
        problems.append(f"signature.sample_shape must be a list of positive sizes, is {shape!r}")
    labels = signature.get("num_labels")
    if labels is not None and (not isinstance(labels, int) or labels < 0):
        problems.append(f"signature.num_labels must be a count of classes or null, is {labels!r}")
    return problems


def _sample_io_problems(signature: dict[str, Any], graph: Graph) -> list[str]:
    where = "graphs.sample"
    z_dim = positive(signature.get("z_dim"))
    problems = input_problems(where, graph, "z", "float32", (None, z_dim))
    names = {i.name for i in graph.inputs}
    if bool(signature.get("num_labels")) != ("label" in names):
        problems.append(
            f"{where}: input `label` must exist exactly when signature.num_labels is set "
            f"(num_labels {signature.get('num_labels')!r}, inputs {sorted(names)})"
        )
    elif "label" in names:
        problems += input_problems(where, graph, "label", "int64", (None,))
    if "x" not in {o.name for o in graph.outputs}:
        problems.append(f"{where} needs an output `x`, has {[o.name for o in graph.outputs]}")
    return problems

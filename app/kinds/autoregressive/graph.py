"""The `autoregressive` kind's graph side: the contract check (I/O, runs on random inputs,
causality) and what the worker runs: a sampling step, a whole sampling loop, a log-likelihood.

A sampling job's inputs, one row per sample (made by the api, app/kinds/autoregressive/
request.py): `x` [n, P] int64, the prefix in levels and 0 elsewhere; `start` [n] int64, the
first position to draw; `u` [n, P] float64, the uniform of each step (position t of the
row's counter-based stream, keyed by (seed, i)); `temperature` [n] float64; `label` [n] int64
when the model is conditional. A log-prob job's inputs are `x` alone (complete samples).

The worker usually runs sampling one step at a time, rows of many jobs in one batch
(app/worker/steps.py); `run` runs a whole loop for one batch (the same draws, the same bytes)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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

LOGITS = "logits"


def positions(signature: dict[str, Any]) -> int:
    """P: positions of one sample (steps of a whole sampling loop)."""
    return math.prod(int(d) for d in signature["shape"])


def step_logits(graphs: dict[str, Graph], x: np.ndarray, label: np.ndarray | None) -> np.ndarray:
    """logits [N, P, V] of the step graph on partial samples `x` [N, P] int64."""
    feeds = {"x": x} if label is None else {"x": x, "label": label}
    logits: np.ndarray = graphs["step"].run(feeds)[LOGITS]
    return logits


def draw(logits: np.ndarray, u: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """The level of each row at one position: the inverse CDF of softmax(logits / T) at u (the
    first level whose cumulative probability exceeds u), in float64. Elementwise and per-row
    operations only (a cumulative sum, never a reduction whose order depends on the batch),
    so a row's level does not depend on the other rows."""
    scaled = np.ascontiguousarray(logits, dtype=np.float64)
    scaled = (scaled - scaled.max(axis=1, keepdims=True)) / temperature[:, None]
    cumulative = np.cumsum(np.exp(scaled), axis=1)
    cdf = cumulative / cumulative[:, -1:]
    levels = np.count_nonzero(cdf <= u[:, None], axis=1)
    drawn: np.ndarray = np.minimum(levels, logits.shape[1] - 1).astype(np.int64)
    return drawn


def advance(
    graphs: dict[str, Graph],
    x: np.ndarray,
    at: np.ndarray,
    u: np.ndarray,
    temperature: np.ndarray,
    label: np.ndarray | None,
) -> None:
    """One step for every row: draw position at[r] of row r into `x` (in place). Rows at
    different positions share the graph call: it sees whole partial samples."""
    logits = step_logits(graphs, x, label)
    rows = np.arange(len(x))
    x[rows, at] = draw(logits[rows, at], u[rows, at], temperature)


def sample_loop(graphs: dict[str, Graph], inputs: Tensors, shape: tuple[int, ...]) -> Tensors:
    """Every step of a batch of sampling rows (rows whose prefix ends later wait, untouched,
    until the loop reaches their start): levels [N, *shape] int64."""
    x = inputs["x"].astype(np.int64, copy=True)
    start, u = inputs["start"], inputs["u"]
    temperature, label = inputs["temperature"], inputs.get("label")
    total = x.shape[1]
    for t in range(int(start.min(initial=total)), total):
        rows = np.flatnonzero(start <= t)
        logits = step_logits(graphs, x, label)
        x[rows, t] = draw(logits[rows, t], u[rows, t], temperature[rows])
    return {"levels": x.reshape(len(x), *shape)}


def log_likelihood(graphs: dict[str, Graph], x: np.ndarray, label: np.ndarray | None) -> np.ndarray:
    """Exact log p(x) in nats [N] float64, from one pass: sum_p log_softmax(logits)[p, x[p]]."""
    logits = step_logits(graphs, x, label).astype(np.float64)
    top = logits.max(axis=2, keepdims=True)
    log_norm = top[..., 0] + np.log(np.exp(logits - top).sum(axis=2))
    picked = np.take_along_axis(logits, x[..., None], axis=2)[..., 0]
    total: np.ndarray = (picked - log_norm).sum(axis=1)
    return total


class AutoregressiveKind(CheckedKind):
    roles: tuple[str, ...] = ("step",)

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        problems = _field_problems(signature)
        if problems or "step" not in graphs:
            return problems
        problems += _io_problems(signature, graphs["step"])
        if not problems:
            problems += self._run_problems(signature, graphs["step"])
        if not problems:
            problems += causality_problems(signature, graphs["step"])
        return problems

    def _run_problems(self, signature: dict[str, Any], graph: Graph) -> list[str]:
        """Random partial samples at each batch size: logits finite and [N, P, V]."""
        where = "graphs.step output `logits`"
        rng = np.random.default_rng(CHECK_SEED)
        inputs = {rows: _random_inputs(signature, rows, rng) for rows in CHECK_ROWS}
        outputs, problems = run_each("graphs.step", graph.run, inputs)
        if problems:
            return problems
        if any(LOGITS not in out for out in outputs.values()):
            return [f"graphs.step must give an output `{LOGITS}`"]
        runs = {rows: out[LOGITS] for rows, out in outputs.items()}
        problems = output_problems(where, runs)
        want = (positions(signature), int(signature["vocabulary"]))
        if not problems and runs[1].shape[1:] != want:
            problems.append(
                f"{where}: shape {runs[1].shape} on N=1, must be [N, P, V] = [1, {want[0]}, "
                f"{want[1]}] (signature.shape and signature.vocabulary)"
            )
        return problems

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        inputs: Tensors = {"x": np.zeros((rows, positions(signature)), np.int64)}
        if signature.get("classes"):
            inputs["label"] = np.arange(rows, dtype=np.int64) % int(signature["classes"])
        return inputs

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        """A sampling batch (inputs hold `u`) run to its end, or log-likelihoods of rows."""
        if "u" in inputs:
            return sample_loop(graphs, inputs, tuple(int(d) for d in signature["shape"]))
        log_prob = log_likelihood(graphs, inputs["x"], inputs.get("label"))
        return {"log_prob": log_prob}


def _random_inputs(signature: dict[str, Any], rows: int, rng: np.random.Generator) -> Tensors:
    x = rng.integers(0, int(signature["vocabulary"]), (rows, positions(signature)), np.int64)
    inputs: Tensors = {"x": x}
    if signature.get("classes"):
        inputs["label"] = np.arange(rows, dtype=np.int64) % int(signature["classes"])
    return inputs


def causality_problems(signature: dict[str, Any], graph: Graph, cuts: int = 4) -> list[str]:
    """The logits of positions <= q must not change when x[q:] changes (the contract: x[p]'s
    logits see x[<p] only). Random samples are paired with copies whose positions from each
    cut q on are redrawn; all pairs run as one batch."""
    total = positions(signature)
    rng = np.random.default_rng(CHECK_SEED + 1)
    qs = sorted({0, total - 1, *rng.integers(0, total, cuts).tolist()})
    base = _random_inputs(signature, len(qs), rng)
    changed = {name: value.copy() for name, value in base.items()}
    vocabulary = int(signature["vocabulary"])
    for row, q in enumerate(qs):
        shifted = (base["x"][row, q:] + rng.integers(1, vocabulary, total - q)) % vocabulary
        changed["x"][row, q:] = shifted  # every position from q on differs
    feeds = {name: np.concatenate([base[name], changed[name]]) for name in base}
    try:
        logits = graph.run(feeds)[LOGITS].astype(np.float64)
    except Exception as exc:  # any runtime failure means the graph breaks the contract
        return [f"graphs.step failed on the causality check's inputs: {exc}"]
    problems = []
    for row, q in enumerate(qs):
        one, other = logits[row, : q + 1], logits[len(qs) + row, : q + 1]
        scale = max(1.0, float(np.abs(one).max()))
        if not np.allclose(one, other, rtol=0.0, atol=1e-5 * scale):
            leak = int(np.flatnonzero(np.abs(one - other).max(axis=1) > 1e-5 * scale)[0])
            problems.append(
                f"graphs.step is not causal: the logits of position {leak} change when "
                f"positions {q}.. change (position p may see only x[<p]; mask the convolutions)"
            )
            break
    return problems


def _field_problems(signature: dict[str, Any]) -> list[str]:
    problems = []
    shape = signature.get("shape")
    if not isinstance(shape, list | tuple) or not shape or not all(positive(d) for d in shape):
        problems.append(f"signature.shape must be a list of positive sizes, is {shape!r}")
    vocabulary = positive(signature.get("vocabulary"))
    if vocabulary is None or vocabulary < 2:
        problems.append(
            f"signature.vocabulary must be at least 2 levels, is {signature.get('vocabulary')!r}"
        )
    if signature.get("order", "raster") != "raster":
        problems.append(f"signature.order must be 'raster', is {signature.get('order')!r}")
    classes = signature.get("classes")
    if classes is not None and positive(classes) is None:
        problems.append(f"signature.classes must be a count of classes or null, is {classes!r}")
    return problems


def _io_problems(signature: dict[str, Any], graph: Graph) -> list[str]:
    where = "graphs.step"
    problems = input_problems(where, graph, "x", "int64", (None, positions(signature)))
    names = {i.name for i in graph.inputs}
    if bool(signature.get("classes")) != ("label" in names):
        problems.append(
            f"{where}: input `label` must exist exactly when signature.classes is set "
            f"(classes {signature.get('classes')!r}, inputs {sorted(names)})"
        )
    elif "label" in names:
        problems += input_problems(where, graph, "label", "int64", (None,))
    if LOGITS not in {o.name for o in graph.outputs}:
        problems.append(
            f"{where} needs an output `{LOGITS}`, has {[o.name for o in graph.outputs]}"
        )
    return problems

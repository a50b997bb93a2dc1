"""The interface every kind implements, and the checks all kinds share: graph I/O against the
card and the outputs of runs on random inputs at two batch sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.errors import ContractViolation, raise_listed

Tensors = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    dtype: str  # numpy dtype name
    shape: tuple[int | str | None, ...]


class Graph(Protocol):
    """A loaded graph: named tensors in, named tensors out (app/runtime/sessions.py loads
    ONNX and TorchScript ones; a style atlas is one too)."""

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    provider: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


Data = dict[str, Any] | str | None  # the card's `data` (a predictive's feature_summary)
CHECK_ROWS = (1, 3)  # batch sizes the check runs every graph at
CHECK_SEED = 20_240_601  # the check's random inputs are the same on every run


class Kind(Protocol):
    roles: tuple[str, ...]

    def check(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        """Raise ContractViolation unless the graphs keep this kind's contract."""

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        """Every way the card's signature and the graphs break this kind's contract, with the
        graphs run on random inputs (graph roles absent from `graphs` failed to load: they are
        reported elsewhere)."""

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        """Inputs of `rows` rows, for warm-up and contract checks."""

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        """Run one batch (rows on axis 0 of every input and output)."""


class CheckedKind:
    """`check` raises what `problems` finds, all of it in one ContractViolation."""

    def problems(
        self, signature: dict[str, Any], graphs: dict[str, Graph], data: Data = None
    ) -> list[str]:
        raise NotImplementedError

    def check(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        raise_problems(self.problems(signature, graphs))


def raise_problems(problems: list[str]) -> None:
    """One ContractViolation whose detail lists every problem (a lone one as it is)."""
    raise_listed(ContractViolation, problems)


def positive(value: object) -> int | None:
    """A card's count: an int >= 1 (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def input_problems(
    where: str, graph: Graph, name: str, dtype: str, shape: tuple[int | None, ...]
) -> list[str]:
    """A graph input's dtype and rank (and fixed sizes where the card gives them; None = any)."""
    found = {i.name: i for i in graph.inputs}.get(name)
    if found is None:
        return [f"{where} needs an input `{name}`, has {[i.name for i in graph.inputs]}"]
    problems = []
    if found.dtype not in ("", dtype):
        problems.append(f"{where} input `{name}` must be {dtype}, is {found.dtype}")
    if found.shape and len(found.shape) != len(shape):
        problems.append(
            f"{where} input `{name}` has rank {len(found.shape)} {list(found.shape)}, "
            f"must have rank {len(shape)}"
        )
    else:
        problems += [
            f"{where} input `{name}`: axis {axis} is {size}, the card says {want}"
            for axis, (size, want) in enumerate(zip(found.shape, shape, strict=False))
            if isinstance(size, int) and want is not None and size != want
        ]
    return problems


def output_problems(where: str, runs: dict[int, np.ndarray], axis: int = 0) -> list[str]:
    """One output over runs at several batch sizes N: NaN/Inf, a batch axis that is not N,
    other axes that change between the runs (a shape that depends on input values)."""
    problems = []
    for rows, value in runs.items():
        bad = int(np.count_nonzero(~np.isfinite(value))) if value.dtype.kind in "fc" else 0
        if bad:
            problems.append(
                f"{where}: {bad} of {value.size} values are NaN or Inf on N={rows} random "
                "inputs — the graph must give finite values for ordinary inputs"
            )
            break
    for rows, value in runs.items():
        if value.ndim <= axis or value.shape[axis] != rows:
            problems.append(
                f"{where}: shape {value.shape} on N={rows} — axis {axis} must be the batch size N"
            )
    shapes = {rows: _without(value.shape, axis) for rows, value in runs.items()}
    (first, one), (last, other) = next(iter(shapes.items())), list(shapes.items())[-1]
    if one != other:
        problems.append(
            f"{where}: shape {runs[last].shape} on N={last} but {runs[first].shape} on "
            f"N={first} — the output must not depend on input values"
        )
    return problems


def _without(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1 :]


def run_each(
    where: str, run: Any, inputs: dict[int, Tensors]
) -> tuple[dict[int, Tensors], list[str]]:
    """`run(inputs)` at each batch size; a failure is a problem, not an exception."""
    outputs: dict[int, Tensors] = {}
    for rows, feeds in inputs.items():
        try:
            outputs[rows] = run(feeds)
        except Exception as exc:  # any runtime failure means the graph breaks the contract
            return outputs, [f"{where} failed on N={rows} random inputs: {exc}"]
    return outputs, []

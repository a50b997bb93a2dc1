"""The interface every kind implements."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from app.runtime.sessions import Graph

Tensors = dict[str, np.ndarray]


class Kind(Protocol):
    roles: tuple[str, ...]

    def check(self, signature: dict[str, Any], graphs: dict[str, Graph]) -> None:
        """Raise ContractViolation unless the graphs keep this kind's contract."""

    def example(self, signature: dict[str, Any], rows: int) -> Tensors:
        """Inputs of `rows` rows, for warm-up and contract checks."""

    def run(self, signature: dict[str, Any], graphs: dict[str, Graph], inputs: Tensors) -> Tensors:
        """Run one batch (rows on axis 0 of every input and output)."""

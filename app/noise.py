"""Sampling noise from a counter-based generator keyed by (seed, sample index).

Row i of a request depends on (seed, i) alone, so a sample does not depend on n, on the
batch it ran in, or on the worker. Built on numpy's Philox raw output (a fixed algorithm)
and our own Box-Muller transform, so it does not change with numpy's distribution code."""

from __future__ import annotations

import numpy as np
from hanmo_client.schemas import MAX_SEED

_TWO_PI = 2.0 * np.pi
_U53 = 1.0 / (1 << 53)


def standard_normal_rows(seed: int, rows: int, dim: int) -> np.ndarray:
    """float32 [rows, dim]; row i is the same for every `rows` > i."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError("seed must be in [0, 2**63 - 1]")
    pairs = (dim + 1) // 2
    out = np.empty((rows, 2 * pairs), dtype=np.float64)
    for i in range(rows):
        bits = np.random.Philox(key=np.array([seed, i], dtype=np.uint64))
        raw = bits.random_raw(2 * pairs)
        u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * _U53  # in (0, 1)
        radius = np.sqrt(-2.0 * np.log(u[:pairs]))
        angle = _TWO_PI * u[pairs:]
        out[i, :pairs] = radius * np.cos(angle)
        out[i, pairs:] = radius * np.sin(angle)
    return out[:, :dim].astype(np.float32)

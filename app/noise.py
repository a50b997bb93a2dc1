"""Sampling noise from a counter-based generator keyed by (seed, sample index).

Row i of a request depends on (seed, i) alone, so a sample does not depend on n, on the
batch it ran in, or on the worker. Built on Philox4x64-10's raw output (numpy's Philox, a
fixed algorithm) and our own Box-Muller transform, so it does not change with numpy's
distribution code. The bytes are a contract: tests/test_noise.py compares them with a copy of
the original per-row code over many seeds and shapes."""

from __future__ import annotations

import numpy as np
from hanmo_client.schemas import MAX_SEED

_TWO_PI = 2.0 * np.pi
_U53 = 1.0 / (1 << 53)
# Below this many rows numpy's own Philox, one per row, is faster than the vectorised rounds
# (their ~0.3 ms of fixed cost equals about 10-16 rows of Philox construction on 2 cores).
VECTOR_ROWS = 16

# Philox4x64-10 as numpy implements it (numpy/random/src/philox/philox.h, from Random123).
_MULTIPLIERS = (np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157))
_WEYL = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B))
_ROUNDS = 10
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def standard_normal_rows(seed: int, rows: int, dim: int) -> np.ndarray:
    """float32 [rows, dim]; row i is the same for every `rows` > i."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError("seed must be in [0, 2**63 - 1]")
    pairs = (dim + 1) // 2
    if rows < VECTOR_ROWS:
        raw = _philox_per_row(seed, rows, 2 * pairs)
    else:
        raw = philox_words(seed, rows, 2 * pairs)
    return _box_muller(raw, pairs)[:, :dim].astype(np.float32)


def _box_muller(raw: np.ndarray, pairs: int) -> np.ndarray:
    """float64 [rows, 2 * pairs] normals from uint64 [rows, 2 * pairs] words: the first half
    of a row's words give radii, the second half angles."""
    u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * _U53  # in (0, 1)
    # contiguous halves, as the per-row code had: numpy's SIMD log/sin/cos take another path
    # for strided input, and the bytes must not depend on it
    radius = np.sqrt(-2.0 * np.log(np.ascontiguousarray(u[:, :pairs])))
    angle = _TWO_PI * np.ascontiguousarray(u[:, pairs:])
    out = np.empty((len(raw), 2 * pairs), dtype=np.float64)
    out[:, :pairs] = radius * np.cos(angle)
    out[:, pairs:] = radius * np.sin(angle)
    return out


def _philox_per_row(seed: int, rows: int, words: int) -> np.ndarray:
    out = np.empty((rows, words), dtype=np.uint64)
    for i in range(rows):
        out[i] = np.random.Philox(key=np.array([seed, i], dtype=np.uint64)).random_raw(words)
    return out


def philox_words(seed: int, rows: int, words: int) -> np.ndarray:
    """uint64 [rows, words]; row i equals np.random.Philox(key=[seed, i]).random_raw(words):
    blocks of four words for counters 1, 2, …, every row's rounds at once."""
    blocks = -(-words // 4)
    k0 = np.full((rows, 1), seed, dtype=np.uint64)
    k1 = np.arange(rows, dtype=np.uint64)[:, None]
    c0 = np.broadcast_to(np.arange(1, blocks + 1, dtype=np.uint64), (rows, blocks))
    c1 = c2 = c3 = np.zeros((rows, blocks), dtype=np.uint64)
    for round_ in range(_ROUNDS):
        if round_:
            k0, k1 = k0 + _WEYL[0], k1 + _WEYL[1]
        lo0, hi0 = _mulhilo(_MULTIPLIERS[0], c0)
        lo1, hi1 = _mulhilo(_MULTIPLIERS[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    words_out: np.ndarray = np.stack([c0, c1, c2, c3], axis=-1).reshape(rows, 4 * blocks)
    return words_out[:, :words]


def _mulhilo(m: np.uint64, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The low and high 64 bits of m * x (a 128-bit product), from 32-bit halves."""
    m0, m1 = m & _LOW32, m >> _SHIFT32
    x0, x1 = x & _LOW32, x >> _SHIFT32
    p00, p01, p10 = x0 * m0, x0 * m1, x1 * m0
    carry = ((p00 >> _SHIFT32) + (p01 & _LOW32) + (p10 & _LOW32)) >> _SHIFT32
    return x * m, x1 * m1 + (p01 >> _SHIFT32) + (p10 >> _SHIFT32) + carry


def uniform_rows(seed: int, rows: int, count: int) -> np.ndarray:
    """float64 [rows, count] in (0, 1): word t of row i's stream (keyed by (seed, i), as the
    normal rows are) as a uniform, the way Box-Muller reads words. Row i is the same for
    every `rows` > i; an autoregressive model's step t of sample i reads column t."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError("seed must be in [0, 2**63 - 1]")
    raw = (
        _philox_per_row(seed, rows, count)
        if rows < VECTOR_ROWS
        else philox_words(seed, rows, count)
    )
    uniform: np.ndarray = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * _U53
    return uniform

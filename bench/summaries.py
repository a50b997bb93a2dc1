"""Posterior-predictive summaries, old against new (issue 48, item 2): `summarize_regression`
for N rows x 4 interval levels (0.5, 0.9, 0.99, 0.999) of S = 64 draws, one target, on one
core. "old" is the frozen copy of the api's bisection kept in tests/runtime/test_mixture.py (the
intervals only: the other fields' code did not change);
the draws are that test's SGHMC-like mixtures (epistemic spread of the order of the aleatoric
sd). Prints the median wall time of a few repeats and the largest difference between the two,
relative to max(|value|, the row's sd).

    python -m bench.summaries
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before NumPy loads its BLAS: one core

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from app.kinds.predictive.summaries import summarize_regression  # noqa: E402
from tests.runtime.test_mixture import (  # noqa: E402
    LEVELS,
    _old_intervals,
    _sghmc_like,
)

SIZES = (64, 512, 4096)


def _median_s(
    summarize: Callable[..., object], draws: tuple[np.ndarray, ...], repeats: int
) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        summarize(*draws, LEVELS)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"summarize_regression, S=64, levels {LEVELS}, one core; median wall ms")
    print(f"{'rows':>6} {'old ms':>10} {'new ms':>10} {'speed-up':>9} {'max diff':>10}")
    for rows in SIZES:
        means, variances = _sghmc_like(np.random.default_rng(rows), rows)
        old = _old_intervals(means, variances, LEVELS)
        new = summarize_regression(means, variances, LEVELS)
        sd = new.std[None, :, :, None]
        diff = np.abs(new.interval - old) / np.maximum(np.abs(old), sd)
        old_s = _median_s(_old_intervals, (means, variances), 3)
        new_s = _median_s(summarize_regression, (means, variances), 7)
        print(
            f"{rows:>6} {old_s * 1e3:>10.1f} {new_s * 1e3:>10.1f} {old_s / new_s:>8.0f}x"
            f" {diff.max():>10.1e}"
        )


if __name__ == "__main__":
    main()

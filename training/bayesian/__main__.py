"""python -m training.bayesian --out models --docs docs/models [--smoke] [--only a,b]
[--splits N]: train the Bayesian predictive models (concrete-sghmc, concrete-ensemble,
concrete-mcdropout, diabetes-sghmc, digits-sghmc, digits-ensemble), run the evaluation
protocols with their baselines, export each model with its card, draw the docs PNGs and
print a summary."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from training.bayesian import digits, regression, report

JOBS = (*regression.NAMES, *digits.NAMES)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.bayesian", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--docs", type=Path, default=Path("docs/models"))
    parser.add_argument("--smoke", action="store_true", help="seconds per model (tests)")
    parser.add_argument("--only", default=",".join(JOBS), help=f"comma-separated: {JOBS}")
    parser.add_argument("--splits", type=int, default=None, help="UCI splits (default 20)")
    args = parser.parse_args(argv)
    args.only = [j.strip() for j in args.only.split(",") if j.strip()]
    unknown = set(args.only) - set(JOBS)
    if unknown:
        parser.error(f"unknown jobs {sorted(unknown)}; choose from {', '.join(JOBS)}")
    return args


def print_summary(results: list[report.Result]) -> None:
    print()
    print(f"{'model':<20} {'metric':<36} value")
    print("-" * 100)
    for result in results:
        for label, value in [*result.summary, ("wall time s", round(result.seconds, 1))]:
            print(f"{result.name:<20} {label:<36} {value}")
        print("-" * 100)


def main(argv: Sequence[str] | None = None) -> list[report.Result]:
    args = parse(argv)
    torch.manual_seed(0)
    np.random.seed(0)
    results: list[report.Result] = []
    start = time.perf_counter()
    regression_jobs = [j for j in args.only if j in regression.NAMES]
    if regression_jobs:
        results += regression.run(regression_jobs, args.out, args.docs, args.smoke, args.splits)
    classification = [j for j in args.only if j in digits.NAMES]
    if classification:
        results += digits.run(classification, args.out, args.docs, args.smoke)
    for result in results:
        print(f"{result.name}: written to {result.directory}", flush=True)
    print_summary(results)
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main()

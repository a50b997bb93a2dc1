"""python -m training.generative --out models --docs docs/models [--smoke]
[--only vae,cvae,flow,dcgan,pixelcnn] [--iwae50]: train the digits generative models (by
default vae,cvae,flow; dcgan is `make train-dcgan`, pixelcnn `make train-pixelcnn`), export
them with their cards, draw the docs PNGs and print a summary of the metrics."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.generative import cvae, dcgan, flow, pixelcnn, report, vae

JOBS = ("vae", "cvae", "flow", "dcgan", "pixelcnn")
DEFAULT_JOBS = ("vae", "cvae", "flow")  # dcgan compares itself with their shipped graphs


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.generative", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--docs", type=Path, default=Path("docs/models"))
    parser.add_argument("--smoke", action="store_true", help="a few seconds per model (tests)")
    parser.add_argument(
        "--only", default=",".join(DEFAULT_JOBS), help=f"comma-separated: {','.join(JOBS)}"
    )
    parser.add_argument("--iwae50", action="store_true", help="also train IWAE-50 (~20x slower)")
    args = parser.parse_args(argv)
    args.only = [j.strip() for j in args.only.split(",") if j.strip()]
    unknown = set(args.only) - set(JOBS)
    if unknown:
        parser.error(f"unknown jobs {sorted(unknown)}; choose from {', '.join(JOBS)}")
    return args


def jobs(args: argparse.Namespace) -> dict[str, Callable[[], report.Result]]:
    return {
        "vae": lambda: vae.run(args.out, args.docs, smoke=args.smoke, iwae50=args.iwae50),
        "cvae": lambda: cvae.run(args.out, args.docs, smoke=args.smoke),
        "flow": lambda: flow.run(args.out, args.docs, smoke=args.smoke),
        "dcgan": lambda: dcgan.run(args.out, args.docs, smoke=args.smoke),
        "pixelcnn": lambda: pixelcnn.run(args.out, args.docs, smoke=args.smoke),
    }


def summary_rows(result: report.Result) -> list[tuple[str, Any]]:
    """The headline metrics of one model, as (label, value) rows."""
    m = result.metrics
    if result.name == vae.NAME:
        rows = [(f"{run} test log p(x) nats", m[run]["test_log_px_nats"]) for run in vae_runs(m)]
        rows += [(f"{run} test bits/dim", m[run]["test_bits_per_dim"]) for run in vae_runs(m)]
        mixture = m["bernoulli_mixture"]
        return [
            *rows,
            (f"Bernoulli mixture (K={mixture['components']}) nats", mixture["test_log_px_nats"]),
            ("IWAE-5 beats SGVB", m["iwae5_beats_sgvb"]),
            ("VAE beats mixture", m["vae_beats_mixture"]),
        ]
    if result.name == cvae.NAME:
        keys = (
            "conditional_accuracy",
            "conditional_accuracy_of_means",
            "frechet_distance",
            "frechet_distance_of_means",
            "frechet_distance_floor_train_vs_test",
            "classifier_test_accuracy",
            "test_log_px_given_label_nats",
        )
        rows = [(key, m[key]) for key in keys]
        return [*rows, ("per-class accuracy", m["conditional_accuracy_per_class"])]
    if result.name == dcgan.NAME:
        return dcgan_rows(m)
    if result.name == pixelcnn.NAME:
        return pixelcnn_rows(m)
    keys = ("test_bits_per_dim", "test_bits_per_dim_midpoint", "gmm_test_bits_per_dim")
    gmm = m["gmm"]
    return [
        *((key, m[key]) for key in keys),
        ("gmm choice", f"{gmm['covariance_type']} K={gmm['components']}"),
        ("uniform bits/dim", m["uniform_bits_per_dim"]),
        ("flow beats GMM", m["flow_beats_gmm"]),
    ]


def dcgan_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """Each headline measure of the GAN beside the shipped VAE's and flow's (the verdict)."""
    rows: list[tuple[str, Any]] = [
        ("frechet_distance_floor_train_vs_test", metrics["frechet_distance_floor_train_vs_test"])
    ]
    for key, values in metrics["verdict"].items():
        shown = {name.removesuffix("-digits"): v for name, v in values.items()}
        rows.append((key, shown))
    return rows


def pixelcnn_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """Test bits/dim beside the flow's, the GaussianMixture's and the uniform model's."""
    keys = ("test_bits_per_dim", "valid_bits_per_dim", "train_bits_per_dim")
    shown = {k: v for k, v in metrics["compared"].items() if k in ("flow-digits", "gmm")}
    return [
        *((key, metrics[key]) for key in keys),
        ("compared test bits/dim (bounds)", shown),
        ("uniform bits/dim", metrics["uniform_bits_per_dim"]),
    ]


def vae_runs(metrics: dict[str, Any]) -> list[str]:
    return [run for run in ("sgvb", "iwae5", "iwae50") if run in metrics]


def print_summary(results: list[report.Result]) -> None:
    print()
    print(f"{'model':<12} {'metric':<40} value")
    print("-" * 78)
    for result in results:
        for label, value in [*summary_rows(result), ("wall time s", round(result.seconds, 1))]:
            print(f"{result.name:<12} {label:<40} {value}")
        print("-" * 78)


def main(argv: Sequence[str] | None = None) -> list[report.Result]:
    args = parse(argv)
    table = jobs(args)
    results = []
    for job in args.only:
        start = time.perf_counter()
        result = table[job]()
        result.seconds = time.perf_counter() - start
        print(f"{result.name}: written to {result.directory} in {result.seconds:.0f} s", flush=True)
        results.append(result)
    print_summary(results)
    return results


if __name__ == "__main__":
    main()

"""python -m training.bayesian.fprior_job --out models --docs docs/models [--smoke] [--splits N]:
SGHMC under the GP-matched functional prior on UCI Concrete (issue 51, item 2), beside SGHMC
under the SGHMC models' own hierarchical prior, over the same 20 seeded splits.

Per split: the GP (constant × ARD RBF + white) is fitted by marginal likelihood on the
standardised training rows (training.bayesian.baselines, the same fit as the cards' GP row);
the network's per-layer Gaussian prior is fitted to its latent part by sliced Wasserstein-1
(training.bayesian.fprior); then the project's SGHMC (same sampler settings, chains, draws,
minibatch, floor and seed as concrete-sghmc) samples under that fixed prior. The hierarchical
prior's run is concrete-sghmc's own protocol run, repeated here so that both priors are
measured on the same points off the data (its test metrics are checked against its card).

Off the data: every test row pushed outside the card's feature ranges (data.feature_summary:
min and max over all 1,030 rows) one feature at a time, to max_j + k·range_j and to
min_j − k·range_j (range_j = max_j − min_j; the other features unchanged), k = 1, 2, 4; 16
pushed copies per test row and k. Epistemic std: the sd over the S draws of the per-draw
means (the api's epistemic_std), averaged over rows; mean ± SE over splits.

Ships concrete-sghmc-fprior (split 0's draws, exported as concrete-sghmc is) and adds a
`functional_prior` section to concrete-sghmc's card (nothing else in that card changes)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.bayesian import distance, fprior, fprior_cards, metrics, regression
from training.bayesian.export import Predictive
from training.bayesian.regression import Dataset, Split

SEED = regression.SEED
PUSHES = (1, 2, 4)
NAME = "concrete-sghmc-fprior"


@dataclass(frozen=True)
class Settings:
    protocol: regression.Settings
    fit: fprior.FitConfig
    check: fprior.FitConfig  # the fixed evaluation draw of the card's distances

    def describe(self) -> dict[str, Any]:
        return {
            "splits": self.protocol.splits,
            "gp_rows": self.protocol.gp_rows or "all training rows",
            "fit": self.fit.describe(),
            "distance_check": self.check.describe(),
        }


def settings(smoke: bool, splits: int | None, ard: bool = False) -> Settings:
    protocol = regression.settings(smoke, splits)
    if smoke:
        return Settings(
            protocol,
            fprior.FitConfig(steps=40, lr=0.05, measure=16, functions=64, projections=16, ard=ard),
            fprior.FitConfig(steps=0, lr=0.0, measure=16, functions=128, projections=32),
        )
    return Settings(
        protocol,
        fprior.FitConfig(steps=600, lr=0.03, measure=32, functions=256, projections=64, ard=ard),
        fprior.FitConfig(steps=0, lr=0.0, measure=64, functions=1024, projections=256),
    )


def pushed(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: float) -> np.ndarray:
    """Each row of x [N, D] pushed outside [lo, hi] in one feature at a time: feature j set to
    hi_j + k·range_j, then to lo_j − k·range_j -> [2·D·N, D] (k = 0: x itself)."""
    if k == 0:
        return x
    span = hi - lo
    copies = []
    for j in range(x.shape[1]):
        for edge in (hi[j] + k * span[j], lo[j] - k * span[j]):
            row = x.copy()
            row[:, j] = edge
            copies.append(row)
    return np.concatenate(copies)


def epistemic_std(model: Predictive, x: np.ndarray) -> float:
    with torch.no_grad():
        mean, _ = model(torch.as_tensor(x, dtype=torch.float32))
    return float(mean[..., 0].double().std(0, unbiased=False).mean())


def gp_latent_std(gp: Any, split: Split, x: np.ndarray) -> float:
    """The fitted GP's posterior sd of the latent function (its white noise taken out)."""
    _, sd = gp.predict((x - split.x_shift) / split.x_scale, return_std=True)
    noise = float(gp.kernel_.get_params()["k2__noise_level"])
    return float(np.sqrt(np.maximum(sd**2 - noise, 0.0)).mean() * split.y_scale)


def off_data(
    models: dict[str, list[Any]], splits: list[Split], lo: np.ndarray, hi: np.ndarray
) -> dict[str, dict[str, list[float]]]:
    """Per model family, per push k (0 = the test rows): the epistemic std per split."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    for k in (0, *PUSHES):
        for name, per_split in models.items():
            values = []
            for model, split in zip(per_split, splits, strict=True):
                x = pushed(split.x_test, lo, hi, k)
                values.append(
                    gp_latent_std(model, split, x)
                    if name == "gp_latent"
                    else epistemic_std(model, x)
                )
            out[name][str(k)] = values
    return out


def aggregate(values: list[float]) -> dict[str, float]:
    return metrics.summarise([{"v": v} for v in values])["v"]


def gp_metrics(gps: list[Any], splits: list[Split]) -> list[dict[str, float]]:
    runs = []
    for gp, sp in zip(gps, splits, strict=True):
        mean, sd = gp.predict((sp.x_test - sp.x_shift) / sp.x_scale, return_std=True)
        runs.append(
            metrics.regression(
                sp.y_test, (sp.y_shift + sp.y_scale * mean)[None], (sp.y_scale * sd)[None] ** 2
            )
        )
    return runs


def hmc_distances(out: Path, split0: Split, shipped: Path) -> dict[str, Any] | None:
    """Both priors' split-0 graphs against concrete-hmc's shipped draws, on split 0's test
    rows (distance.to_reference, as the cards' distance_to_hmc)."""
    hmc_graph = out / "concrete-hmc" / "1" / "model.onnx"
    sghmc_graph = out / "concrete-sghmc" / "1" / "model.onnx"
    if not hmc_graph.exists() or not sghmc_graph.exists():
        return None
    from training.bayesian.export import run as run_graph

    def per_draw(path: Path) -> tuple[np.ndarray, np.ndarray]:
        got = run_graph(path, split0.x_test)
        return got["mean"][..., 0].astype(np.float64), got["var"][..., 0].astype(np.float64)

    ref = per_draw(hmc_graph)
    return {
        "rows": f"split 0's test rows ({len(split0.y_test)})",
        "reference": f"concrete-hmc's shipped graph ({ref[0].shape[0]} HMC draws of split 0, "
        "hierarchical prior with λ integrated out)",
        "sghmc_functional_prior": distance.to_reference(*per_draw(shipped), *ref),
        "sghmc_hierarchical_prior": distance.to_reference(*per_draw(sghmc_graph), *ref),
        "note": "HMC sampled the hierarchical prior's posterior, so for the functional prior "
        "this is how far the posterior moved with the prior, not a sampler error",
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    torch.manual_seed(SEED)
    ds = regression.DATASETS["concrete"]
    s = settings(args.smoke, args.splits, args.ard)
    result = run(ds, s, args.out, args.docs, args.smoke)
    fprior_cards.print_summary(result)
    return result


def run(ds: Dataset, s: Settings, out: Path, docs: Path, smoke: bool) -> dict[str, Any]:
    splits = regression.prepare(ds, s.protocol.splits)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    rows = slice(None) if s.protocol.gp_rows is None else slice(0, s.protocol.gp_rows)
    gps = fprior.fit_gps(
        [sp.z_train[rows] for sp in splits], [sp.t_train[rows] for sp in splits], SEED
    )
    gp = fprior.gp_prior(gps)
    seconds["gp_fit"] = time.perf_counter() - start

    start = time.perf_counter()
    x_train = regression.stacked([sp.z_train for sp in splits], 1)
    fitted = fprior.fit(gp, x_train, ds.sizes, s.fit, torch.Generator().manual_seed(SEED))
    hierarchical = (regression.PRIOR_SHAPE, regression.PRIOR_RATE)
    dist = fprior.distances(
        gp, x_train, ds.sizes, fitted.log_sigma, s.check, hierarchical, SEED + 1
    )
    seconds["prior_fit"] = time.perf_counter() - start

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(SEED)
    prior = fprior.fixed_prior(fitted.sigma, ds.sizes, s.protocol.chains)
    fp_models = regression.sample_splits(
        ds, splits, s.protocol, generator, prior, None, f"{ds.key} sghmc fprior"
    )
    seconds["sghmc_functional_prior"] = time.perf_counter() - start
    start = time.perf_counter()
    base_models, base_record = regression.run_sghmc(ds, splits, s.protocol)
    seconds["sghmc_hierarchical_prior"] = time.perf_counter() - start

    protocol = {
        "sghmc_functional_prior": [
            regression.evaluate(m, sp) for m, sp in zip(fp_models, splits, strict=True)
        ],
        "sghmc_hierarchical_prior": [
            regression.evaluate(m, sp) for m, sp in zip(base_models, splits, strict=True)
        ],
        "gp": gp_metrics(gps, splits),
    }
    x_all, _ = ds.load()
    lo, hi = x_all.min(0), x_all.max(0)
    start = time.perf_counter()
    families = {
        "sghmc_functional_prior": fp_models,
        "sghmc_hierarchical_prior": base_models,
        "gp_latent": gps,
    }
    away = off_data(families, splits, lo, hi)
    seconds["off_data"] = time.perf_counter() - start
    run_result = fprior_cards.RunResult(
        ds=ds,
        settings=s.describe(),
        splits=splits,
        gp=gp,
        fitted=fitted,
        distances=dist,
        protocol={k: metrics.summarise(v) for k, v in protocol.items()},
        per_split=protocol,
        off_data=away,
        shipped=fp_models[0],
        hierarchical_shipped=base_models[0],
        hierarchical_record=base_record,
        sampler=s.protocol,
        seconds=seconds,
        smoke=smoke,
    )
    return fprior_cards.write_all(run_result, out, docs, hmc_distances)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.bayesian.fprior_job", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--docs", type=Path, default=Path("docs/models"))
    parser.add_argument("--smoke", action="store_true", help="seconds (tests)")
    parser.add_argument("--splits", type=int, default=None, help="UCI splits (default 20)")
    parser.add_argument(
        "--ard", action="store_true", help="one σ_w1 per input feature (not the shipped variant)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()

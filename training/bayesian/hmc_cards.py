"""What the HMC reference job writes: the concrete-hmc graph and card, the coverage plot, and a
`distance_to_hmc` section added to each SGHMC card (nothing else in that card changes: its
graph, checksums and metrics stay those of its own training run).

Distances are measured on split 0's test rows: the shipped SGHMC models were trained on split
0's training part (their cards say so), and the HMC run's split 0 uses the same seeded split.
The SGHMC predictive comes from its shipped ONNX graph; the HMC reference is every kept HMC
draw of split 0. Beside it, the floor: what an exact sampler with SGHMC's draw count scores
against an independent reference (HMC draws thinned from chains 0-1 against all draws of
chains 2-3): an SGHMC distance near the floor is as close as its draw count allows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.bayesian import data, distance, metrics, regression, report
from training.bayesian.export import export as export_graph
from training.bayesian.export import run as run_graph
from training.bayesian.regression import Dataset, Split
from training.export import code_revision, write_card

COMMAND = "make train-hmc"
SHIPPED = ("concrete",)


@dataclass(frozen=True)
class Context:
    ds: Dataset
    settings: dict[str, Any]
    stats: dict[str, Any]
    seconds: float
    smoke: bool
    out: Path
    docs: Path

    def sghmc_dir(self) -> Path:
        return self.out / f"{self.ds.key}-sghmc" / report.MODEL_VERSION

    def sghmc_card(self) -> dict[str, Any] | None:
        path = self.sghmc_dir() / "card.json"
        return json.loads(path.read_text()) if path.exists() else None


def sghmc_predictive(ctx: Context, split0: Split) -> tuple[np.ndarray, np.ndarray] | None:
    """The shipped SGHMC graph's per-draw (mean, var) [S, N] at split 0's test rows."""
    path = ctx.sghmc_dir() / "model.onnx"
    if not path.exists():
        return None
    out = run_graph(path, split0.x_test)
    return out["mean"][..., 0].astype(np.float64), out["var"][..., 0].astype(np.float64)


def floor(run: Any, draws: int) -> dict[str, float]:
    """`draws` HMC draws spread over chains 0-1 against all draws of the other chains."""
    half = run.chain_mean.shape[0] // 2
    per_chain = max(1, draws // half)
    idx = np.linspace(0, run.chain_mean.shape[1] - 1, per_chain).round().astype(int)
    mean = run.chain_mean[:half, idx].reshape(-1, run.chain_mean.shape[2])
    var = run.chain_var[:half, idx].reshape(-1, run.chain_var.shape[2])
    ref_mean = run.chain_mean[half:].reshape(-1, run.chain_mean.shape[2])
    ref_var = run.chain_var[half:].reshape(-1, run.chain_var.shape[2])
    return distance.to_reference(mean, var, ref_mean, ref_var)


def distances(ctx: Context, split0: Split, run: Any) -> dict[str, Any] | None:
    sghmc = sghmc_predictive(ctx, split0)
    card = ctx.sghmc_card()
    if sghmc is None or card is None:
        return None
    mean, var = sghmc
    check = metrics.regression(split0.y_test, mean, var)["rmse"]
    recorded = card["metrics"]["shipped"]["split0_test_metrics_via_onnx"]["rmse"]
    return {
        "rows": f"split 0's test rows ({len(split0.y_test)}; split seed "
        f"{data.SPLIT_SEED}), the split the shipped SGHMC model was trained on",
        "rows_match_card": bool(abs(check - recorded) < 1e-6 * max(1.0, abs(recorded))),
        "reference": f"HMC, all {run.ref_mean.shape[0]} kept draws of split 0 "
        f"({run.chain_mean.shape[0]} chains)",
        "sghmc": distance.to_reference(mean, var, run.ref_mean, run.ref_var),
        f"floor_hmc_{mean.shape[0]}_draws": floor(run, mean.shape[0]),
        "w1": "mean over rows of the Wasserstein-1 distance between the two per-row "
        "predictive mixtures, in the target's units (CDF difference integrated numerically)",
        "widths": "central 90% intervals from the mixture quantiles (the served code)",
    }


def aggregate(runs: list[Any]) -> dict[str, dict[str, float]]:
    """Each diagnostic group over splits: worst R-hat, median R-hat, worst and median ESS."""
    out = {}
    for group in runs[0].convergence:
        rows = [r.convergence[group] for r in runs]
        out[group] = {
            "rhat_max": max(r["rhat_max"] for r in rows),
            "rhat_median": float(np.median([r["rhat_median"] for r in rows])),
            "ess_bulk_min": min(r["ess_bulk_min"] for r in rows),
            "ess_bulk_median": float(np.median([r["ess_bulk_median"] for r in rows])),
        }
    return out


def convergence(runs: list[Any]) -> dict[str, Any]:
    return {
        "method": "rank-normalised split R-hat (max of bulk and folded) and bulk ESS, Vehtari "
        "et al. 2021, over the kept draws of every chain",
        "split0": runs[0].convergence,
        "over_splits": aggregate(runs),
        "raw_weights_note": "hidden units can swap places and flip signs without changing the "
        "function, so chains in different (equivalent) modes give raw-weight R-hat far above "
        "1: read the predictive means and the log-likelihood, which do not depend on labels",
    }


def headline(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {key: summary[key] for key in regression.HEADLINE}


def write_all(
    ctx: Context, split0: Split, runs: list[Any], summary: dict[str, Any], draws: int
) -> dict[str, Any]:
    """Write what this dataset ships; returns what print_summary shows."""
    found = distances(ctx, split0, runs[0])
    result: dict[str, Any] = {
        "hmc": headline(summary),
        "convergence": convergence(runs),
        "distance": found,
        "stats": ctx.stats,
        "seconds": ctx.seconds,
    }
    card = ctx.sghmc_card()
    if card is not None:
        result["sghmc"] = card["metrics"]["this_model"]
    if ctx.ds.key in SHIPPED:
        write_model(ctx, split0, runs[0].module, summary, result, draws)
    if card is not None and found is not None:
        add_section(ctx, card, result)
    return result


def section(ctx: Context, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "what": "how far this model's predictive is from a full-batch HMC reference of the "
        "same network, prior and data (issue 51); added by the HMC job, which changed nothing "
        "else in this card",
        "distance_split0_test": result["distance"],
        "hmc_protocol": {
            "splits": ctx.settings["splits"],
            "metrics": result["hmc"],
            "note": "the HMC reference over the same seeded splits, same metrics as this "
            "card's `this_model`",
        },
        "hmc_convergence_over_splits": result["convergence"]["over_splits"],
        "hmc_settings": ctx.settings,
        "hmc_model": "concrete-hmc" if ctx.ds.key in SHIPPED else None,
        "smoke": ctx.smoke,
        "command": COMMAND,
        "code_revision": code_revision(),
    }


def add_section(ctx: Context, card: dict[str, Any], result: dict[str, Any]) -> None:
    card["metrics"]["distance_to_hmc"] = section(ctx, result)
    path = ctx.sghmc_dir() / "card.json"
    path.write_text(json.dumps(card, indent=2) + "\n")


def comparison(ctx: Context, summary: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = {"hmc": headline(summary)}
    card = ctx.sghmc_card()
    if card is not None:
        table.update(card["metrics"]["comparison"])
        table["source_of_the_others"] = (
            f"{ctx.ds.key}-sghmc's card (same seeded splits and metrics; not rerun here)"
        )
    return table


def coverage(ctx: Context, summary: dict[str, Any], name: str) -> Path:
    curves = {"HMC": regression.curve(summary)}
    card = ctx.sghmc_card()
    if card is not None:
        points = card["metrics"]["coverage_curve"]
        levels = [int(k) / 100 for k in points]
        curves["SGHMC (its card)"] = (
            levels,
            np.array([v["mean"] for v in points.values()]),
            np.array([v["se"] for v in points.values()]),
        )
    plot = ctx.docs / f"{name}-coverage.png"
    report.coverage_plot(
        curves, plot, f"{name}: interval coverage, {ctx.settings['splits']} splits"
    )
    return plot


def write_model(
    ctx: Context,
    split0: Split,
    module: Any,
    summary: dict[str, Any],
    result: dict[str, Any],
    draws: int,
) -> None:
    name = f"{ctx.ds.key}-hmc"
    directory = report.model_dir(ctx.out, name)
    outputs = export_graph(module, split0.x_test, directory / "model.onnx")
    onnx_out = run_graph(directory / "model.onnx", split0.x_test)
    split0_onnx = metrics.regression(
        split0.y_test, onnx_out["mean"][..., 0], onnx_out["var"][..., 0]
    )
    plot = coverage(ctx, summary, name)
    card_metrics = {
        "protocol": {
            "splits": ctx.settings["splits"],
            "test_fraction": data.TEST_FRACTION,
            "split_seed": data.SPLIT_SEED,
            "standardised_on": "each split's training part (x per feature, y)",
            "units": f"{ctx.ds.units} (original units); ll is the mean per-point log density "
            f"in 1/{ctx.ds.units}",
            "intervals": "central intervals from the quantiles of the per-point mixture over draws",
            "draws_measured": f"the {draws} shipped draws per split (every "
            f"{ctx.settings['thin']}th kept iteration of each chain)",
            "aggregate": "mean and standard error (std ddof=1 / sqrt(splits)) over splits",
        },
        "this_model": headline(summary),
        "coverage_curve": {
            f"{round(level * 100)}": summary[f"picp_{round(level * 100)}"]
            for level in metrics.CURVE_LEVELS
        },
        "comparison": comparison(ctx, summary),
        "convergence": result["convergence"],
        "sampling": {"settings": ctx.settings, "run": ctx.stats, "prior": PRIOR},
        "sghmc_distance_split0_test": result["distance"],
        "wall_seconds": {"hmc_all_splits": round(ctx.seconds, 1)},
        "shipped": {
            "trained_on": f"split 0's training part ({len(split0.y_train)} rows), the same run "
            "the protocol measured on split 0",
            "split0_test_metrics_via_onnx": headline_of(split0_onnx),
        },
        "coverage_plot": plot.name,
        "smoke": ctx.smoke,
    }
    ds = ctx.ds
    write_card(
        directory,
        name=name,
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], outputs)},
        signature=regression.card_signature(ds, draws, "hmc"),
        description=f"{ds.what}: full-batch HMC draws (4 chains, exact Metropolis-corrected "
        f"sampling) of the same heteroscedastic {ds.arch} MLP and prior as {ds.key}-sghmc, its "
        f"gold-standard reference. Returns {draws} per-draw Gaussians (mean, aleatoric var) "
        "[S, N, 1]; the predictive is their equal-weight mixture.",
        seed=regression.SEED,
        data=regression.card_data(ds, split0),
        metrics=card_metrics,
        command=COMMAND,
    )
    result["directory"] = str(directory)


def headline_of(values: dict[str, float]) -> dict[str, float]:
    return {key: values[key] for key in regression.HEADLINE}


PRIOR = (
    "Gaussian N(0, 1/λ_l) on every weight and bias of layer l, λ_l ~ "
    f"Gamma({regression.PRIOR_SHAPE}, {regression.PRIOR_RATE}) (shape, rate) per layer and "
    "chain (the SGHMC models' prior), λ_l integrated out in closed form (the weights' marginal "
    "prior is a multivariate Student-t) instead of Gibbs-sampled; likelihood N(y; mean, "
    f"softplus(raw) + {regression.SGHMC_FLOOR}) in standardised units"
)


def print_summary(key: str, result: dict[str, Any]) -> None:
    print(f"\n== {key}: HMC reference, {result['seconds']:.0f} s sampling")
    for name in ("hmc", "sghmc"):
        if name in result:
            row = result[name]
            cells = [f"{k} {regression.fmt(row[k])}" for k in ("rmse", "ll", "picp_90", "mpiw_90")]
            print(f"{name:6} " + "  ".join(cells))
    for group, values in result["convergence"]["over_splits"].items():
        print(f"  {group:28} " + "  ".join(f"{k} {v:.3g}" for k, v in values.items()))
    print(f"  sampler {json.dumps(result['stats'])}")
    found = result.get("distance")
    if found is not None:
        for label in [k for k in found if k == "sghmc" or k.startswith("floor")]:
            print(f"  {label:18} " + "  ".join(f"{k} {v:.4g}" for k, v in found[label].items()))
    if "directory" in result:
        print(f"  written to {result['directory']}")

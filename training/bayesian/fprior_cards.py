"""What the functional-prior job writes: the concrete-sghmc-fprior graph and card, its two
plots (epistemic std off the data; prior function draws against GP draws) and coverage plot,
and a `functional_prior` section added to concrete-sghmc's card (nothing else in that card
changes: its graph, checksums and metrics stay those of its own training run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from training.bayesian import fprior, metrics, regression, report
from training.bayesian.export import Predictive
from training.bayesian.export import export as export_graph
from training.bayesian.export import run as run_graph
from training.bayesian.regression import Dataset, Split
from training.export import code_revision, write_card

COMMAND = "make train-fprior"
NAME = "concrete-sghmc-fprior"
BASE = "concrete-sghmc"
FP, HIER, GP = "sghmc_functional_prior", "sghmc_hierarchical_prior", "gp"
LABELS = {
    FP: "SGHMC, GP-matched functional prior",
    HIER: "SGHMC, hierarchical prior (concrete-sghmc)",
    "gp_latent": "GP (ARD RBF), latent sd",
}
SLICE_FEATURE = "cement"
PUSH_DEFINITION = (
    "every test row pushed outside the card's feature ranges (data.feature_summary: min and "
    "max over all 1,030 rows) in one feature at a time: feature j set to max_j + k·range_j and "
    "to min_j − k·range_j (range_j = max_j − min_j), the other features unchanged; 16 copies "
    "per test row and k; k = 0 is the test rows themselves. epistemic std = the sd over the S "
    "draws of the per-draw means (the api's epistemic_std) in MPa, averaged over rows; "
    "mean ± SE over splits. gp_latent: the fitted GP's posterior sd of the latent function "
    "(its white noise left out) at the same rows, for reference: it returns to the prior "
    "amplitude √c · y_scale far from the data"
)


@dataclass
class RunResult:
    ds: Dataset
    settings: dict[str, Any]
    splits: list[Split]
    gp: fprior.GPPrior
    fitted: fprior.Fit
    distances: dict[str, Any]
    protocol: dict[str, dict[str, dict[str, float]]]  # family -> metric -> mean, se
    per_split: dict[str, list[dict[str, float]]]
    off_data: dict[str, dict[str, list[float]]]  # family -> k -> per split
    shipped: Predictive
    hierarchical_shipped: Predictive  # split 0's draws under the hierarchical prior (rerun)
    hierarchical_record: dict[str, Any]
    sampler: regression.Settings
    seconds: dict[str, float]
    smoke: bool


def headline(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {key: summary[key] for key in regression.HEADLINE}


def aggregate(values: list[float]) -> dict[str, float]:
    return metrics.summarise([{"v": float(v)} for v in values])["v"]


def off_data_section(r: RunResult, lo: np.ndarray, hi: np.ndarray) -> dict[str, Any]:
    std = {
        family: {k: aggregate(v) for k, v in per_k.items()} for family, per_k in r.off_data.items()
    }
    growth = {
        family: {
            k: aggregate(list(np.array(v) / np.array(per_k["0"])))
            for k, v in per_k.items()
            if k != "0"
        }
        for family, per_k in r.off_data.items()
    }
    return {
        "definition": PUSH_DEFINITION,
        "feature_ranges": {
            f: [float(a), float(b)] for f, a, b in zip(r.ds.features, lo, hi, strict=True)
        },
        "epistemic_std_mpa": std,
        "growth_over_test_rows": growth,
        "growth_note": "per split, the mean epistemic std at push k over that at the test rows; "
        "mean ± SE over splits",
    }


def prior_section(r: RunResult) -> dict[str, Any]:
    gp = r.gp.describe()
    sigma = r.fitted.sigma.numpy()
    return {
        "prior": "fixed Gaussian, W_l ~ N(0, σ_w,l² / fan_in_l), b_l ~ N(0, σ_b,l²); the "
        "last layer's σ's cover both output units (mean and variance)"
        + ("; ARD variant: one σ_w1 per input feature" if r.settings["fit"]["ard"] else ""),
        "fitted_to": "the latent part c · RBF_ARD(ℓ) of the GP fitted by marginal likelihood "
        "on each split's standardised training rows (constant × ARD RBF + white, "
        "scikit-learn; the GP row of the comparison); the white noise is not matched",
        "distance": "sliced Wasserstein-1 between the network's and the GP's mean-function "
        "values at a measurement set, K random unit directions of R^M, 1-D W1 of sorted "
        "projections (training.bayesian.fprior); the paper's dual estimate with a Lipschitz "
        "critic is not used",
        "measurement_set": "half training rows, half uniform in the box the training rows span "
        "(standardised units; widened by `widen` × its range on each side), fresh every step",
        "fit": r.settings["fit"],
        "sigma_split0": r.fitted.describe()[0],
        "sigma_over_splits": {
            name: {
                "mean": float(sigma[:, i].mean()),
                "min": float(sigma[:, i].min()),
                "max": float(sigma[:, i].max()),
            }
            for i, name in enumerate(r.fitted.names)
        },
        "gp_split0": gp[0],
        "gp_amplitude_over_splits": aggregate([g["amplitude"] for g in gp]),
        "sliced_w1_to_gp": {
            "what": "per split on one fixed evaluation draw (measurement set, GP draws and "
            "directions shared by every row), standardised y units; mean ± SE over splits",
            "evaluation": r.settings["distance_check"],
            **{name: aggregate(v) for name, v in r.distances.items() if isinstance(v, list)},
            "marginal_sd": {
                name[3:]: {where: aggregate(v) for where, v in values.items()}
                for name, values in r.distances.items()
                if name.startswith("sd_")
            },
            "marginal_sd_note": "sd of f over each prior's draws at a measurement point, mean "
            "over the set's training rows and over its uniform box points (standardised y)",
            "names": {
                "fitted": "the fitted prior (this model)",
                "unit_sigma": "every σ = 1: N(0, 1/fan_in) weights, N(0, 1) biases, the start "
                "of the fit",
                "sghmc_hierarchical": "concrete-sghmc's prior, λ_l ~ Gamma(1, 1) then "
                "N(0, 1/λ_l) (heavy-tailed: a few draws with tiny λ dominate)",
                "gp_floor": "a second, independent set of GP draws: the estimator's floor at "
                "this many draws",
            },
        },
        "fit_trace_first_last": [r.fitted.trace[0], r.fitted.trace[-1]] if r.fitted.trace else [],
    }


def verdict(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    fp, base = table[FP], table[HIER]

    def diff(key: str) -> float:
        return fp[key]["mean"] - base[key]["mean"]

    return {
        "rmse_lower": diff("rmse") < 0,
        "ll_higher": diff("ll") > 0,
        "picp_90_closer_to_0.9": abs(fp["picp_90"]["mean"] - 0.9)
        < abs(base["picp_90"]["mean"] - 0.9),
        "difference_functional_minus_hierarchical": {
            k: diff(k) for k in ("rmse", "ll", "crps", "picp_90", "mpiw_90")
        },
    }


def base_card(out: Path) -> dict[str, Any] | None:
    path = out / BASE / report.MODEL_VERSION / "card.json"
    return json.loads(path.read_text()) if path.exists() else None


def rerun_check(
    card: dict[str, Any] | None, table: dict[str, Any], splits: int
) -> dict[str, Any] | None:
    """How far this job's rerun of the hierarchical-prior protocol is from concrete-sghmc's
    card (same code, seed and splits: equal up to floating-point differences between runs)."""
    if card is None or card["metrics"]["protocol"]["splits"] != splits:
        return None
    recorded = card["metrics"]["this_model"]
    gaps = {k: abs(table[HIER][k]["mean"] - recorded[k]["mean"]) for k in regression.HEADLINE}
    return {"max_abs_difference_of_means": max(gaps.values()), "per_metric": gaps}


def write_all(
    r: RunResult, out: Path, docs: Path, hmc_distances: Callable[..., dict[str, Any] | None]
) -> dict[str, Any]:
    split0 = r.splits[0]
    directory = report.model_dir(out, NAME)
    outputs = export_graph(r.shipped, split0.x_test, directory / "model.onnx")
    onnx_out = run_graph(directory / "model.onnx", split0.x_test)
    split0_onnx = metrics.regression(
        split0.y_test, onnx_out["mean"][..., 0], onnx_out["var"][..., 0]
    )
    x_all, _ = r.ds.load()
    lo, hi = x_all.min(0), x_all.max(0)
    table = {family: headline(summary) for family, summary in r.protocol.items()}
    card = base_card(out)
    hmc = hmc_distances(out, split0, directory / "model.onnx")
    away = off_data_section(r, lo, hi)
    plots = {
        "off_data": off_data_plot(away, docs / f"{NAME}-offdata.png", r),
        "prior_draws": prior_plot(r, lo, hi, docs / f"{NAME}-prior.png"),
        "coverage": coverage(r, docs / f"{NAME}-coverage.png"),
    }
    comparison: dict[str, Any] = dict(table)
    if card is not None:
        others = card["metrics"]["comparison"]
        comparison.update({k: v for k, v in others.items() if k not in ("sghmc", "gp")})
        comparison["source_of_the_others"] = (
            f"{BASE}'s card (same seeded splits and metrics; not rerun here)"
        )
    rerun = rerun_check(card, table, r.sampler.splits)
    card_metrics: dict[str, Any] = {
        "protocol": regression.protocol_note(r.ds, r.sampler.splits),
        "this_model": table[FP],
        "coverage_curve": {
            f"{round(level * 100)}": r.protocol[FP][f"picp_{round(level * 100)}"]
            for level in metrics.CURVE_LEVELS
        },
        "comparison": comparison,
        "against_the_hierarchical_prior": verdict(table),
        "hierarchical_rerun_vs_its_card": rerun,
        **regression.anchors(r.ds),
        "functional_prior": prior_section(r),
        "off_data": away,
        "distance_to_hmc_split0_test": hmc,
        "training": {
            "sampler": r.sampler.sampler.describe(),
            "chains": r.sampler.chains,
            "draws": r.sampler.chains * r.sampler.sampler.draws,
            "minibatch": r.sampler.batch,
            "floor_standardised": regression.SGHMC_FLOOR,
            "seed": regression.SEED,
            "same_as": f"{BASE}'s sampler settings, chains, minibatch, floor and seed; only the "
            "prior differs (fixed, no hyper-parameter updates)",
        },
        "wall_seconds": {k: round(v, 1) for k, v in r.seconds.items()},
        "shipped": {
            "trained_on": f"split 0's training part ({len(split0.y_train)} rows), the same run "
            "the protocol measured on split 0",
            "split0_test_metrics_via_onnx": {k: split0_onnx[k] for k in regression.HEADLINE},
        },
        "plots": {k: v.name for k, v in plots.items()},
        "coverage_plot": plots["coverage"].name,
        "smoke": r.smoke,
    }
    if r.ds.targets is not None:
        card_metrics["targets"] = r.ds.targets
        card_metrics["targets_met"] = regression.targets_met(r.protocol[FP], r.ds.targets)
    if r.sampler.gp_rows is not None:
        card_metrics["gp_note"] = f"smoke run: GP fitted on {r.sampler.gp_rows} training rows"
    draws = r.shipped.draws
    write_card(
        directory,
        name=NAME,
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], outputs)},
        signature=regression.card_signature(r.ds, draws, "sghmc"),
        description=f"{r.ds.what}: stochastic-gradient HMC draws of a heteroscedastic "
        f"{r.ds.arch} MLP under a GP-matched functional prior (per-layer Gaussian weight prior "
        "fitted by sliced Wasserstein-1 to a GP's prior over functions, Tran et al. 2022). "
        f"Returns {draws} per-draw Gaussians (mean, aleatoric var) [S, N, 1]; the predictive is "
        "their equal-weight mixture.",
        seed=regression.SEED,
        data=regression.card_data(r.ds, split0),
        metrics=card_metrics,
        command=COMMAND,
    )
    result = {
        "table": table,
        "verdict": card_metrics["against_the_hierarchical_prior"],
        "off_data": away,
        "distances": card_metrics["functional_prior"]["sliced_w1_to_gp"],
        "sigma": card_metrics["functional_prior"]["sigma_over_splits"],
        "hmc": hmc,
        "rerun": rerun,
        "seconds": r.seconds,
        "directory": str(directory),
        "module": r.shipped,
    }
    if card is not None:
        add_section(out, card, r, table, away, hmc, rerun)
    return result


def add_section(
    out: Path,
    card: dict[str, Any],
    r: RunResult,
    table: dict[str, Any],
    away: dict[str, Any],
    hmc: dict[str, Any] | None,
    rerun: dict[str, Any] | None,
) -> None:
    card["metrics"]["functional_prior"] = {
        "what": f"this model's prior against a GP-matched functional prior ({NAME}), same "
        "network, sampler, seed and splits (issue 51, item 2); added by the functional-prior "
        "job, which changed nothing else in this card",
        "splits": r.sampler.splits,
        "this_prior_rerun": table[HIER],
        "this_prior_rerun_vs_this_card": rerun,
        "functional_prior": table[FP],
        "gp": table[GP],
        "off_data": away,
        "distance_to_hmc_split0_test": hmc,
        "fprior_model": NAME,
        "smoke": r.smoke,
        "command": COMMAND,
        "code_revision": code_revision(),
    }
    path = out / BASE / report.MODEL_VERSION / "card.json"
    path.write_text(json.dumps(card, indent=2) + "\n")


def coverage(r: RunResult, path: Path) -> Path:
    curves = {LABELS[f]: regression.curve(r.protocol[f]) for f in (FP, HIER)}
    curves["GP (reference)"] = regression.curve(r.protocol[GP])
    report.coverage_plot(curves, path, f"{NAME}: interval coverage, {r.sampler.splits} splits")
    return path


def off_data_plot(away: dict[str, Any], path: Path, r: RunResult) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    for family, values in away["epistemic_std_mpa"].items():
        ks = [int(k) for k in values]
        mean = np.array([v["mean"] for v in values.values()])
        se = np.array([v["se"] for v in values.values()])
        style = ":" if family == "gp_latent" else "-"
        ax.errorbar(ks, mean, yerr=se, marker="o", ms=3, linestyle=style, label=LABELS[family])
    ax.set_xlabel("k: one feature k × its range outside the data")
    ax.set_ylabel("mean epistemic std (MPa)")
    ax.set_yscale("log")
    ax.set_xticks([0, *[int(k) for k in list(away["epistemic_std_mpa"][FP])[1:]]])
    ax.set_title(f"{NAME}: epistemic std off the data, {r.sampler.splits} splits", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def slice_rows(split: Split, lo: np.ndarray, hi: np.ndarray, j: int, points: int) -> np.ndarray:
    """Rows along feature j from lo_j − range_j to hi_j + range_j, the others at the
    training median (original units)."""
    rows = np.repeat(np.median(split.x_train, axis=0)[None], points, axis=0)
    span = hi[j] - lo[j]
    rows[:, j] = np.linspace(lo[j] - span, hi[j] + span, points)
    return rows


def prior_plot(r: RunResult, lo: np.ndarray, hi: np.ndarray, path: Path) -> Path:
    """Split 0, along one feature: 8 draws of the GP prior, the fitted network prior and the
    hierarchical prior (MPa: y_shift + y_scale · f), and both posteriors' mean ± 2 epistemic sd."""
    split = r.splits[0]
    j = r.ds.features.index(SLICE_FEATURE)
    rows = slice_rows(split, lo, hi, j, 200)
    z = torch.as_tensor((rows - split.x_shift) / split.x_scale, dtype=torch.float32)[None]
    g = torch.Generator().manual_seed(regression.SEED + 7)
    n = 8
    gp0 = fprior.GPPrior(r.gp.amplitude[:1], r.gp.lengthscale[:1], r.gp.noise[:1])
    with torch.no_grad():
        panels = {
            "GP prior (fitted c, ℓ)": fprior.gp_draws(gp0, z, n, 1e-5, g)[0],
            "network, fitted functional prior": fprior.network_draws(
                r.fitted.log_sigma[:1], r.ds.sizes, z, n, g
            )[0],
            "network, hierarchical prior (concrete-sghmc)": fprior.hierarchical_draws(
                r.ds.sizes, 1, n, z, regression.PRIOR_SHAPE, regression.PRIOR_RATE, g
            )[0],
        }
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    x = rows[:, j]
    for ax, (title, draws) in zip(axes, panels.items(), strict=False):
        ax.plot(x, split.y_shift + split.y_scale * draws.numpy().T, lw=0.8)
        ax.axvspan(lo[j], hi[j], color="0.9", zorder=0)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(f"{SLICE_FEATURE} (kg/m³), others at the median")
    axes[0].set_ylabel("prior function draws (MPa)")
    limits = axes[0].get_ylim()
    axes[1].set_ylim(limits)
    ax = axes[3]
    for label, model in (("functional prior", r.shipped), ("hierarchical", r.hierarchical_shipped)):
        with torch.no_grad():
            mean, _ = model(torch.as_tensor(rows, dtype=torch.float32))
        means = mean[..., 0].double().numpy()
        mu, sd = means.mean(0), means.std(0)
        ax.plot(x, mu, label=f"{label}: mean")
        ax.fill_between(x, mu - 2 * sd, mu + 2 * sd, alpha=0.3, label=f"{label}: ± 2 epistemic sd")
    ax.axvspan(lo[j], hi[j], color="0.9", zorder=0)
    ax.set_title("posterior, split 0", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(result: dict[str, Any]) -> None:
    print(f"\n== {NAME}: functional prior vs hierarchical prior")
    for family, row in result["table"].items():
        cells = [f"{k} {regression.fmt(row[k])}" for k in ("rmse", "ll", "picp_90", "mpiw_90")]
        print(f"{family:26} " + "  ".join(cells))
    wins = {k: v for k, v in result["verdict"].items() if not k.startswith("difference")}
    print(f"  verdict {json.dumps(wins)}")
    print("  epistemic std (MPa) at push k:")
    for family, values in result["off_data"]["epistemic_std_mpa"].items():
        print(
            f"    {family:26} " + "  ".join(f"k={k} {regression.fmt(v)}" for k, v in values.items())
        )
    d = result["distances"]
    print(
        "  sliced W1 to the GP: "
        + "  ".join(
            f"{k} {regression.fmt(d[k])}"
            for k in ("fitted", "unit_sigma", "sghmc_hierarchical", "gp_floor")
        )
    )
    for name, values in d["marginal_sd"].items():
        line = "  ".join(f"{where} {regression.fmt(v)}" for where, v in values.items())
        print(f"  prior sd of f, {name:20} {line}")
    print(f"  sigma over splits {json.dumps(result['sigma'])}")
    if result["hmc"] is not None:
        for key in ("sghmc_functional_prior", "sghmc_hierarchical_prior"):
            row = result["hmc"][key]
            print(f"  to HMC {key:26} " + "  ".join(f"{k} {v:.4g}" for k, v in row.items()))
    print(f"  rerun vs card {result['rerun']}")
    print(f"  seconds {json.dumps({k: round(v, 1) for k, v in result['seconds'].items()})}")
    print(f"  written to {result['directory']}")

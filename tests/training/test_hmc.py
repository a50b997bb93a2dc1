"""The HMC reference (training.bayesian.hmc, hmc_job, diagnostics, distance): the sampler
recovers a conjugate posterior, the diagnostics and the Wasserstein distance match closed
forms, a --smoke run writes concrete-hmc and only adds a section to the SGHMC cards, and the
shipped models/concrete-hmc serves through the predictive kind in ONNX Runtime."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from app.kinds.catalog import get_kind
from app.kinds.predictive.summaries import summarize_regression
from app.registry.cards import read_card
from app.runtime.checks import checked_graphs
from tests.helpers import ROOT
from training.bayesian import data, diagnostics, distance, hmc, hmc_job, metrics, regression

SGHMC = ("concrete-sghmc", "diabetes-sghmc")


def linear_posterior(
    rows: int = 60, dim: int = 5
) -> tuple[torch.Tensor, torch.Tensor, float, float, np.ndarray, np.ndarray]:
    """y = X w + N(0, σ²), w ~ N(0, I / α): the posterior is N(m, S) in closed form."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, dim)) * np.array([1.0, 3.0, 0.3, 1.0, 1.0])
    x[:, 4] = x[:, 3] + 0.3 * rng.normal(size=rows)  # two correlated coordinates
    sigma, alpha = 0.5, 1.0
    y = x @ rng.normal(size=dim) + sigma * rng.normal(size=rows)
    cov = np.linalg.inv(x.T @ x / sigma**2 + alpha * np.eye(dim))
    mean = cov @ x.T @ y / sigma**2
    return torch.tensor(x), torch.tensor(y), sigma, alpha, mean, cov


def test_hmc_recovers_the_conjugate_linear_regression_posterior() -> None:
    x, y, sigma, alpha, mean, cov = linear_posterior()

    def potential(theta: list[torch.Tensor]) -> torch.Tensor:
        (w,) = theta
        residual = y - w @ x.T
        return 0.5 * (residual * residual).sum(1) / sigma**2 + 0.5 * alpha * (w * w).sum(1)

    kept: list[torch.Tensor] = []
    config = hmc.Config(warmup=300, draws=1000, leapfrog=8)
    start = [torch.full((4, 5), 3.0, dtype=torch.float64)]  # far from the posterior
    generator = torch.Generator().manual_seed(0)
    _, stats = hmc.sample(
        start,
        potential,
        config,
        generator,
        record=lambda t, k: kept.append(t[0].clone()),
        progress=False,
    )
    draws = torch.stack(kept).transpose(0, 1).numpy()  # [chains, draws, dim]
    assert draws.shape == (4, 1000, 5)
    assert (diagnostics.rhat(draws) < 1.01).all()
    ess = diagnostics.ess(draws)
    flat = draws.reshape(-1, 5)
    # the mean within 4 Monte Carlo standard errors, coordinate by coordinate
    mc_error = np.sqrt(np.diag(cov) / ess)
    assert (np.abs(flat.mean(0) - mean) < 4 * mc_error).all()
    # the covariance, whitened by the true one, within 10% of the identity
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, np.linalg.solve(chol, np.cov(flat.T)).T)
    assert np.abs(white - np.eye(5)).max() < 0.1
    assert float(stats.accept.min()) > 0.6
    # the adapted inverse mass is the posterior variance (up to window noise)
    np.testing.assert_allclose(stats.inverse_mass[0][0].numpy(), np.diag(cov), rtol=0.5)


def test_hmc_with_a_wrong_gradient_is_caught_by_the_test_above() -> None:
    """The check is not vacuous: a sampler on a mis-scaled potential (σ off by 1.5) misses
    the closed-form covariance by far more than the tolerance."""
    x, y, sigma, alpha, _, cov = linear_posterior()

    def potential(theta: list[torch.Tensor]) -> torch.Tensor:
        (w,) = theta
        residual = y - w @ x.T
        return 0.5 * (residual * residual).sum(1) / (1.5 * sigma) ** 2 + 0.5 * alpha * (w * w).sum(
            1
        )

    kept: list[torch.Tensor] = []
    config = hmc.Config(warmup=200, draws=400, leapfrog=8)
    hmc.sample(
        [torch.zeros(4, 5, dtype=torch.float64)],
        potential,
        config,
        torch.Generator().manual_seed(1),
        record=lambda t, k: kept.append(t[0].clone()),
        progress=False,
    )
    flat = torch.stack(kept).reshape(-1, 5).numpy()
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, np.linalg.solve(chol, np.cov(flat.T)).T)
    assert np.abs(white - np.eye(5)).max() > 0.5


def test_slow_windows_double_and_end_before_the_last_fast_window() -> None:
    assert hmc.slow_windows(hmc.Config(1000, 1, 1)) == [
        (75, 100),
        (100, 150),
        (150, 250),
        (250, 450),
        (450, 950),
    ]
    short = hmc.slow_windows(hmc.Config(40, 1, 1))
    assert short == [(6, 36)]


def test_rhat_and_ess_of_known_chains() -> None:
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 1000, 3))
    assert (np.abs(diagnostics.rhat(iid) - 1) < 0.01).all()
    assert (np.abs(diagnostics.ess(iid) / 4000 - 1) < 0.15).all()
    phi, n = 0.9, 4000
    ar = np.zeros((4, n))
    noise = rng.normal(size=ar.shape)
    for t in range(1, n):
        ar[:, t] = phi * ar[:, t - 1] + noise[:, t]
    expected = 4 * n * (1 - phi) / (1 + phi)
    assert abs(float(diagnostics.ess(ar)) / expected - 1) < 0.2
    stuck = rng.normal(size=(4, 500))
    stuck[0] += 1.0
    assert float(diagnostics.rhat(stuck)) > 1.05


def test_wasserstein1_of_gaussians_and_mixtures() -> None:
    means_a = np.array([[0.0, 1.0, 5.0]])
    var_a = np.array([[1.0, 4.0, 0.25]])
    means_b = np.array([[0.3, 1.0, 5.0]])
    var_b = np.ones((1, 3))
    # equal sds: |Δμ|; equal means: |Δσ| E|Z| = |Δσ| √(2/π)
    want = [0.3, math.sqrt(2 / math.pi), 0.5 * math.sqrt(2 / math.pi)]
    np.testing.assert_allclose(
        distance.wasserstein1(means_a, var_a, means_b, var_b), want, atol=1e-5
    )
    # two mixtures against the sorted-sample estimate
    rng = np.random.default_rng(0)
    ma, va = np.array([[-1.0], [2.0]]), np.array([[0.25], [1.0]])
    mb, vb = np.array([[0.0]]), np.array([[2.0]])
    pick = rng.integers(0, 2, 400_000)
    xa = np.sort(rng.normal(ma[pick, 0], np.sqrt(va[pick, 0])))
    xb = np.sort(rng.normal(0.0, math.sqrt(2.0), 400_000))
    assert abs(distance.wasserstein1(ma, va, mb, vb)[0] - np.abs(xa - xb).mean()) < 0.01
    same = distance.to_reference(ma, va, ma, va)
    assert same["mean_w1"] < 1e-6
    assert same["mean_abs_diff_width_90"] == 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hmc")
    for name in SGHMC:
        shutil.copytree(ROOT / "models" / name, root / "models" / name)
    argv = ["--out", str(root / "models"), "--docs", str(root / "docs"), "--smoke"]
    return root, hmc_job.main(argv)


def test_smoke_run_writes_concrete_hmc_with_its_card(smoke: tuple[Path, dict[str, Any]]) -> None:
    root, results = smoke
    directory = root / "models" / "concrete-hmc" / "1"
    card = read_card(directory)
    sig = card.signature.as_dict()
    assert (card.kind, card.format, sig["method"], sig["task"]) == (
        "predictive",
        "onnx",
        "hmc",
        "regression",
    )
    assert sig["features"] == data.CONCRETE_FEATURES
    assert card.command == "make train-hmc"
    m = card.metrics
    assert {"hmc", "sghmc", "gp"} <= set(m["comparison"])
    assert set(m["this_model"]) == set(regression.HEADLINE)
    conv = m["convergence"]["over_splits"]
    assert {"predictive_mean_test_rows", "train_loglik", "raw_weights"} <= set(conv)
    assert m["sghmc_distance_split0_test"]["rows_match_card"] is True
    assert (root / "docs" / m["coverage_plot"]).read_bytes()[:4] == b"\x89PNG"
    assert (directory / "model.onnx").stat().st_size < 25 * 2**20
    assert not (root / "models" / "diabetes-hmc").exists()  # diabetes ships no model
    assert results["diabetes"]["distance"]["sghmc"]["rows"] == 44


@pytest.mark.parametrize("name", SGHMC)
def test_smoke_run_only_adds_a_section_to_the_sghmc_card(
    smoke: tuple[Path, dict[str, Any]], name: str
) -> None:
    root, _ = smoke
    before = (ROOT / "models" / name / "1" / "card.json").read_text()
    after = json.loads((root / "models" / name / "1" / "card.json").read_text())
    section = after["metrics"].pop("distance_to_hmc")
    if "distance_to_hmc" in json.loads(before)["metrics"]:  # the shipped card has it already
        before_card = json.loads(before)
        before_card["metrics"].pop("distance_to_hmc")
        before = json.dumps(before_card, indent=2) + "\n"
    assert json.dumps(after, indent=2) + "\n" == before
    found = section["distance_split0_test"]
    assert found["rows_match_card"] is True
    for key in ("mean_abs_diff_predictive_mean", "mean_abs_diff_width_90", "mean_w1"):
        assert found["sghmc"][key] >= 0
    assert section["smoke"] is True


def test_shipped_concrete_hmc_serves_through_the_predictive_kind() -> None:
    """models/concrete-hmc/1 in a real ONNX Runtime session, checked against the predictive
    contract, run by the kind and summarised as the api does; its split-0 test RMSE is the
    card's."""
    directory = ROOT / "models" / "concrete-hmc" / "1"
    card = read_card(directory)
    graphs = checked_graphs(directory, card, "cpu", 1, verify_files=True)
    kind = get_kind(card.kind).graph
    signature = card.signature.as_dict()
    x, y = data.load_concrete()
    test = data.uci_splits(len(x), 1)[0][1]
    out = kind.run(signature, graphs, {"x": x[test].astype(np.float32)})
    assert out["mean"].shape == (len(test), signature["draws"], 1)
    summary = summarize_regression(out["mean"], out["var"], [0.9])
    assert (summary.epistemic_std > 0).all()
    assert (summary.interval[0, :, 0, 0] < summary.mean[:, 0]).all()
    rmse = float(np.sqrt(np.mean((summary.mean[:, 0] - y[test]) ** 2)))
    recorded = card.metrics["shipped"]["split0_test_metrics_via_onnx"]
    assert rmse == pytest.approx(recorded["rmse"], rel=1e-5)
    mean, var = out["mean"][..., 0].T, out["var"][..., 0].T
    assert metrics.regression(y[test], mean, var)["picp_90"] == pytest.approx(recorded["picp_90"])

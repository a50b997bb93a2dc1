"""The GP-matched functional prior (training.bayesian.fprior, fprior_job, fprior_cards): the
sliced Wasserstein-1 estimate against its closed form, the fit following the GP's amplitude,
the fixed prior's density, the pushed rows' definition, a --smoke run that writes
concrete-sghmc-fprior and only adds a section to concrete-sghmc's card, and the shipped
models/concrete-sghmc-fprior serving through the predictive kind in ONNX Runtime."""

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
from training.bayesian import data, fprior, fprior_job, metrics, regression


def test_sliced_w1_of_isotropic_gaussians_is_the_closed_form() -> None:
    """Every projection of N(0, a² I) is N(0, a²): W1 to N(0, b²) is |a − b| √(2/π)."""
    g = torch.Generator().manual_seed(0)
    a = 1.5 * torch.randn(1, 20_000, 6, generator=g)
    b = 0.5 * torch.randn(1, 20_000, 6, generator=g)
    got = float(fprior.sliced_w1(a, b, 32, g)[0])
    assert got == pytest.approx(1.0 * math.sqrt(2 / math.pi), rel=0.03)
    same = 1.5 * torch.randn(1, 20_000, 6, generator=g)
    assert float(fprior.sliced_w1(a, same, 32, g)[0]) < 0.05


def toy_gp(amplitude: float) -> fprior.GPPrior:
    return fprior.GPPrior(
        torch.tensor([amplitude], dtype=torch.float64),
        torch.full((1, 3), 1.5, dtype=torch.float64),
        torch.tensor([0.1], dtype=torch.float64),
    )


def prior_sd(log_sigma: torch.Tensor, sizes: list[int], x: torch.Tensor) -> float:
    draws = fprior.network_draws(log_sigma, sizes, x, 4000, torch.Generator().manual_seed(9))
    return float(draws.std(1).mean())


def test_the_fit_follows_the_gp_amplitude() -> None:
    """A GP with 4x the amplitude (2x the sd) gives a fitted network prior whose functions
    are 2x larger (within 15%), and the fit lowers the distance from its σ = 1 start. A
    gradient of the wrong sign or scale would not land there."""
    sizes = [3, 50, 2]
    x = torch.randn(1, 200, 3, generator=torch.Generator().manual_seed(1))
    config = fprior.FitConfig(steps=100, lr=0.05, measure=16, functions=96, projections=16)
    sds = []
    for amplitude in (1.0, 4.0):
        fit = fprior.fit(toy_gp(amplitude), x, sizes, config, torch.Generator().manual_seed(2))
        sds.append(prior_sd(fit.log_sigma, sizes, x[:, :16]))
        check = fprior.FitConfig(0, 0.0, 16, 512, 64)
        found = fprior.distances(toy_gp(amplitude), x, sizes, fit.log_sigma, check, (1, 1), 3)
        assert found["fitted"][0] < found["unit_sigma"][0]
    assert sds[1] / sds[0] == pytest.approx(2.0, rel=0.15)


def test_fixed_prior_is_the_gaussian_log_density() -> None:
    sizes = [3, 4, 2]
    sigma = torch.tensor([[0.5, 2.0, 1.5, 0.25]])
    prior = fprior.fixed_prior(sigma, sizes, chains=2)
    theta = [torch.randn(2, 3, 4), torch.randn(2, 4), torch.randn(2, 4, 2), torch.randn(2, 2)]
    sds = [0.5 / math.sqrt(3), 2.0, 1.5 / math.sqrt(4), 0.25]
    want = torch.stack(  # −log N(t; 0, sd²) up to its constant
        [(0.5 * (t / sd) ** 2).flatten(1).sum(1) for sd, t in zip(sds, theta, strict=True)]
    ).sum(0)
    got = prior(theta)
    assert got.shape == (2,)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    assert not torch.allclose(got[0], got[1])


def test_pushed_rows_leave_the_range_by_k_ranges_in_one_feature() -> None:
    x = np.array([[1.0, 10.0], [2.0, 20.0]])
    lo, hi = np.array([0.0, 10.0]), np.array([4.0, 30.0])
    assert fprior_job.pushed(x, lo, hi, 0) is x
    out = fprior_job.pushed(x, lo, hi, 2)
    assert out.shape == (8, 2)
    np.testing.assert_array_equal(out[0:2, 0], [4.0 + 8.0] * 2)  # max + 2·range
    np.testing.assert_array_equal(out[2:4, 0], [0.0 - 8.0] * 2)  # min − 2·range
    np.testing.assert_array_equal(out[4:6, 1], [30.0 + 40.0] * 2)
    np.testing.assert_array_equal(out[0:4, 1], [10.0, 20.0] * 2)  # the other feature kept


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("fprior")
    for name in ("concrete-sghmc", "concrete-hmc"):
        shutil.copytree(ROOT / "models" / name, root / "models" / name)
    argv = ["--out", str(root / "models"), "--docs", str(root / "docs"), "--smoke"]
    return root, fprior_job.main(argv)


def test_smoke_run_writes_the_model_and_its_card(smoke: tuple[Path, dict[str, Any]]) -> None:
    root, result = smoke
    directory = root / "models" / "concrete-sghmc-fprior" / "1"
    card = read_card(directory)
    sig = card.signature.as_dict()
    assert (card.kind, card.format, sig["method"], sig["task"]) == (
        "predictive",
        "onnx",
        "sghmc",
        "regression",
    )
    assert sig["features"] == data.CONCRETE_FEATURES
    assert sig["draws"] == 4  # smoke: 4 chains x 1 draw
    assert card.command == "make train-fprior"
    m = card.metrics
    assert set(m["this_model"]) == set(regression.HEADLINE)
    assert {"sghmc_functional_prior", "sghmc_hierarchical_prior", "gp"} <= set(m["comparison"])
    away = m["off_data"]["epistemic_std_mpa"]
    for family in ("sghmc_functional_prior", "sghmc_hierarchical_prior", "gp_latent"):
        assert list(away[family]) == ["0", "1", "2", "4"]
        assert away[family]["4"]["mean"] > away[family]["0"]["mean"]
    prior = m["functional_prior"]
    assert set(prior["sigma_split0"]) == set(fprior.NAMES)
    assert len(prior["gp_split0"]["lengthscale"]) == 8
    assert prior["sliced_w1_to_gp"]["gp_floor"]["mean"] < prior["sliced_w1_to_gp"]["fitted"]["mean"]
    hmc = m["distance_to_hmc_split0_test"]
    assert hmc["sghmc_functional_prior"]["rows"] == 103
    for plot in m["plots"].values():
        assert (root / "docs" / plot).read_bytes()[:4] == b"\x89PNG"
    assert (directory / "model.onnx").stat().st_size < 25 * 2**20
    assert result["module"].draws == 4


def test_smoke_run_only_adds_a_section_to_concrete_sghmc(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    root, _ = smoke
    before = json.loads((ROOT / "models" / "concrete-sghmc" / "1" / "card.json").read_text())
    before["metrics"].pop("functional_prior", None)  # the shipped card has it already
    after = json.loads((root / "models" / "concrete-sghmc" / "1" / "card.json").read_text())
    section = after["metrics"].pop("functional_prior")
    assert json.dumps(after, indent=2) == json.dumps(before, indent=2)
    assert section["smoke"] is True
    assert section["fprior_model"] == "concrete-sghmc-fprior"
    assert set(section["functional_prior"]) == set(regression.HEADLINE)
    assert section["this_prior_rerun_vs_this_card"] is None  # 2 smoke splits, not the card's 20


def test_shipped_model_serves_through_the_predictive_kind() -> None:
    """models/concrete-sghmc-fprior/1 in a real ONNX Runtime session, run by the kind and
    summarised as the api does: its split-0 test metrics are the card's, and its epistemic std
    grows off the data as the card says."""
    directory = ROOT / "models" / "concrete-sghmc-fprior" / "1"
    card = read_card(directory)
    graphs = checked_graphs(directory, card, "cpu", 1, verify_files=True)
    kind = get_kind(card.kind).graph
    signature = card.signature.as_dict()
    x, y = data.load_concrete()
    test = data.uci_splits(len(x), 1)[0][1]
    out = kind.run(signature, graphs, {"x": x[test].astype(np.float32)})
    assert out["mean"].shape == (len(test), signature["draws"], 1)
    summary = summarize_regression(out["mean"], out["var"], [0.9])
    rmse = float(np.sqrt(np.mean((summary.mean[:, 0] - y[test]) ** 2)))
    recorded = card.metrics["shipped"]["split0_test_metrics_via_onnx"]
    assert rmse == pytest.approx(recorded["rmse"], rel=1e-5)
    mean, var = out["mean"][..., 0].T, out["var"][..., 0].T
    assert metrics.regression(y[test], mean, var)["ll"] == pytest.approx(recorded["ll"], rel=1e-5)
    far = fprior_job.pushed(x[test], x.min(0), x.max(0), 4).astype(np.float32)
    pushed = kind.run(signature, graphs, {"x": far})
    far_std = summarize_regression(pushed["mean"], pushed["var"], [0.9]).epistemic_std
    assert far_std.mean() > 3 * summary.epistemic_std.mean()
    assert card.metrics["smoke"] is False
    assert card.metrics["protocol"]["splits"] == 20


def test_the_ard_variant_has_one_weight_sd_per_input_feature() -> None:
    """σ [S, D + 3]: W1's rows get their own σ / √D (draws and density agree)."""
    sizes = [3, 50, 2]
    sigma = torch.tensor([[0.5, 1.0, 3.0, 0.2, 1.0, 0.1]])
    draws = fprior.prior_params(sigma.log(), sizes, 4000, torch.Generator().manual_seed(0))
    sd_rows = draws[0].std(dim=(0, 2)) * math.sqrt(3)
    np.testing.assert_allclose(sd_rows.numpy(), [0.5, 1.0, 3.0], rtol=0.03)
    assert float(draws[1].std()) == pytest.approx(0.2, rel=0.03)
    prior = fprior.fixed_prior(sigma, sizes, chains=1)
    w1 = torch.zeros(1, 3, 50)
    w1[0, 2, 0] = 1.0  # a unit weight on the third feature: 0.5 · 3 / 3²
    theta = [w1, torch.zeros(1, 50), torch.zeros(1, 50, 2), torch.zeros(1, 2)]
    assert float(prior(theta)[0]) == pytest.approx(0.5 * 3 / 9)
    assert fprior.names(6, ["a", "b", "c"])[:3] == ["sigma_w1[a]", "sigma_w1[b]", "sigma_w1[c]"]

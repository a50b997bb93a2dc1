"""The Bayesian predictive jobs (training.bayesian), run once with --smoke: ONNX Runtime
matches the PyTorch per-draw loop with a symbolic row axis, MC dropout's masks are explicit
multiplications that make the draws differ, the cards carry the contract's fields; plus unit
tests of the SGHMC sampler and of the metric functions against closed forms."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_diabetes

from app.registry.cards import read_card
from training.bayesian import __main__ as cli
from training.bayesian import data, metrics, sghmc
from training.bayesian.report import Result

NAMES = (
    "concrete-sghmc",
    "concrete-ensemble",
    "concrete-mcdropout",
    "diabetes-sghmc",
    "digits-sghmc",
    "digits-ensemble",
)
METHODS = {
    "concrete-sghmc": "sghmc",
    "concrete-ensemble": "ensemble",
    "concrete-mcdropout": "mc_dropout",
    "diabetes-sghmc": "sghmc",
    "digits-sghmc": "sghmc",
    "digits-ensemble": "ensemble",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    root = tmp_path_factory.mktemp("bayesian")
    argv = ["--out", str(root / "models"), "--docs", str(root / "docs"), "--smoke"]
    return {result.name: result for result in cli.main(argv)}


def inputs(name: str, rows: int) -> np.ndarray:
    rng = np.random.default_rng(rows)
    if name.startswith("digits"):
        return rng.integers(0, 17, size=(rows, 64)).astype(np.float32)
    x, _ = data.load_diabetes_xy() if name.startswith("diabetes") else data.load_concrete()
    return x[rng.integers(0, len(x), size=rows)].astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_matches_per_draw_loop(runs: dict[str, Result], name: str) -> None:
    result = runs[name]
    module = result.module
    assert module is not None
    path = result.directory / "model.onnx"
    graph = onnx.load(str(path)).graph
    rows_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert rows_dim.dim_param, "row axis not symbolic"
    assert not rows_dim.HasField("dim_value")
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        assert dims[0].dim_value == module.draws
        assert dims[1].dim_param, f"{out.name}: row axis not symbolic"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for rows in (1, 257):
        x = inputs(name, rows)
        got = session.run(names, {"x": x})
        with torch.no_grad():
            loop = [module.forward_draw(torch.as_tensor(x), s) for s in range(module.draws)]
        for i, value in enumerate(got):
            want = np.stack([draw[i].numpy() for draw in loop])
            assert value.shape == want.shape
            assert value.shape[:2] == (module.draws, rows)
            np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-5)
        if "var" in names:
            assert (got[names.index("var")] > 0).all()


def test_mc_dropout_has_no_dropout_op_and_draws_differ(runs: dict[str, Result]) -> None:
    path = runs["concrete-mcdropout"].directory / "model.onnx"
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Dropout" not in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    mean, _ = session.run(["mean", "var"], {"x": inputs("concrete", 32)})
    assert mean.shape[0] >= 2
    assert mean.var(axis=0).mean() > 1e-6  # epistemic variance
    assert not np.allclose(mean[0], mean[1])


def test_cards(runs: dict[str, Result]) -> None:
    for name in NAMES:
        card = read_card(runs[name].directory)
        assert card.name == name
        assert card.kind == "predictive"
        assert card.format == "onnx"
        assert set(card.graphs) == {"predict"}
        spec = card.graphs["predict"]
        assert spec.file == "model.onnx"
        assert spec.inputs == ["x"]
        sig = card.signature.as_dict()
        assert sig["method"] == METHODS[name]
        assert sig["draws"] == runs[name].module.draws  # type: ignore[union-attr]
        assert len(sig["features"]) == sig["input_dim"]
        if not name.startswith("digits"):
            assert spec.outputs == ["mean", "var"]
            assert sig["task"] == "regression"
            if name.startswith("concrete"):
                assert sig["input_dim"] == 8
                assert sig["features"] == data.CONCRETE_FEATURES
                assert sig["targets"] == ["compressive_strength"]
                assert sig["target_units"] == "MPa"
            else:
                assert sig["input_dim"] == 10
                assert sig["features"] == load_diabetes().feature_names
                assert sig["targets"] == ["disease_progression"]
                assert sig["target_units"] == "score"
            table = card.metrics["comparison"]
            assert {"gp", "bayesian_ridge", "map_network", METHODS[name]} <= set(table)
            for key in ("rmse", "ll", "crps", "picp_90", "mpiw_95"):
                assert set(card.metrics["this_model"][key]) == {"mean", "se"}
            assert "trained_on" in card.metrics["shipped"]
        else:
            assert spec.outputs == ["logits"]
            assert sig["task"] == "classification"
            assert sig["classes"] == [str(i) for i in range(10)]
            assert sig["input_range"] == [0, 16]
            assert sig["features"][-1] == "pixel_63"
            for key in ("accuracy", "nll", "brier", "ece", "ood_auroc_mi_letters"):
                assert key in card.metrics["this_model"]
            assert "map_network" in card.metrics["comparison"]
        assert card.command == "make train-bayesian"
        assert card.seed is not None
        assert card.data
        assert (runs[name].directory / "model.onnx").stat().st_size < 25 * 2**20


def test_docs_pngs(runs: dict[str, Result]) -> None:
    for name in NAMES:
        key = "reliability_plot" if name.startswith("digits") else "coverage_plot"
        plot = runs[name].metrics[key]
        docs = runs[name].directory.parents[2] / "docs"
        assert (docs / plot).read_bytes()[:4] == b"\x89PNG"


def test_sghmc_recovers_a_gaussian() -> None:
    """U(θ) = (θ − μ)² / 2σ², gradient observed with noise: draws ≈ N(μ, σ²)."""
    mu, sigma = 1.5, 0.7
    generator = torch.Generator().manual_seed(0)

    def potential(theta: list[torch.Tensor], step: int) -> torch.Tensor:
        (t,) = theta
        noise = 0.5 * torch.randn(t.shape, generator=generator)  # a minibatch-like error
        return ((t - mu) ** 2 / (2 * sigma**2) + noise * t).sum()

    config = sghmc.Config(lr=0.01, alpha=0.1, burn_in=500, thin=20, draws=50)
    draws = sghmc.sample([torch.zeros(400)], potential, config, generator, progress=False)[0]
    assert draws.shape == (50, 400)
    assert abs(draws.mean().item() - mu) < 0.05
    assert abs(draws.var().item() / sigma**2 - 1) < 0.15


def test_gibbs_precision_is_gamma_posterior() -> None:
    generator = torch.Generator().manual_seed(0)
    params = [torch.full((4000, 10, 10), 0.5), torch.zeros(4000, 10)]
    lam = sghmc.gibbs_precisions(params, 1.0, 1.0, generator)[0]
    shape, rate = 1.0 + 110 / 2, 1.0 + 100 * 0.25 / 2
    assert abs(lam.mean().item() - shape / rate) < 0.05 * shape / rate


def test_picp_of_a_known_interval() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200_000)
    mean, var = np.zeros((1, len(y))), np.ones((1, len(y)))
    for level in (0.5, 0.9, 0.95):
        lo, hi = metrics.interval(level, mean[:, :10], var[:, :10])
        np.testing.assert_allclose(hi, -lo, atol=1e-6)
        z = float(hi[0])
        assert abs(math.erf(z / math.sqrt(2)) - level) < 1e-6
        picp, mpiw = metrics.picp_mpiw(np.full(len(y), -z), np.full(len(y), z), y)
        assert abs(picp - level) < 0.005
        assert abs(mpiw - 2 * z) < 1e-9
    picp, _ = metrics.picp_mpiw(np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([0.5, 2]))
    assert picp == 0.5


def test_crps_of_a_gaussian_matches_closed_form() -> None:
    rng = np.random.default_rng(1)
    y, mu, sd = rng.normal(size=64), rng.normal(size=64), rng.uniform(0.3, 3, size=64)
    got = metrics.crps_mixture(y, mu[None], sd[None] ** 2)
    np.testing.assert_allclose(got, metrics.crps_gaussian(y, mu, sd), atol=1e-12)
    # a known value: CRPS of N(0, 1) at its mean is (√2 − 1)/√π
    assert (
        abs(metrics.crps_gaussian(0.0, 0.0, 1.0) - (math.sqrt(2) - 1) / math.sqrt(math.pi)) < 1e-12
    )
    # a mixture's closed form against the sample estimate E|X − y| − ½E|X − X'|
    means, sds = np.array([[-1.0], [2.0]]), np.array([[0.5], [1.0]])
    pick = rng.integers(0, 2, size=400_000)
    xs = rng.normal(means[pick, 0], sds[pick, 0])
    estimate = np.abs(xs - 0.3).mean() - 0.5 * np.abs(xs[::2] - xs[1::2]).mean()
    assert abs(metrics.crps_mixture(np.array([0.3]), means, sds**2)[0] - estimate) < 0.01


def test_mixture_loglik_and_quantile() -> None:
    mean, var = np.array([[0.0], [0.0]]), np.array([[1.0], [1.0]])
    ll = metrics.mixture_logpdf(np.array([0.0]), mean, var)
    assert abs(ll[0] + 0.5 * math.log(2 * math.pi)) < 1e-12
    median = metrics.mixture_quantile(0.5, np.array([[-2.0], [2.0]]), np.ones((2, 1)))
    assert abs(median[0]) < 1e-9


def test_ece_of_calibrated_predictions_is_near_zero() -> None:
    rng = np.random.default_rng(2)
    n = 200_000
    conf = rng.uniform(0.1, 1.0, size=n)
    probs = np.zeros((n, 10))
    probs[:, 0] = conf
    probs[:, 1:] = ((1 - conf) / 9)[:, None]
    y = np.where(rng.uniform(size=n) < conf, 0, rng.integers(1, 10, size=n))
    # top class is 0 whenever conf > 0.1 (the rest share 1 − conf): calibrated by construction
    assert metrics.ece(probs, y) < 0.01
    assert metrics.ece(np.eye(10)[y], (y + 1) % 10) == pytest.approx(1.0)


def test_mutual_information() -> None:
    same = np.tile(np.array([[[0.7, 0.3]]]), (4, 5, 1))
    assert np.allclose(metrics.mutual_information(same), 0.0)
    split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert abs(metrics.mutual_information(split)[0] - math.log(2)) < 1e-9


def test_letters_and_permuted_digits() -> None:
    letters = data.render_letters()
    assert letters.shape == (52, 64)
    assert letters.min() >= 0
    assert letters.max() <= 16
    assert (letters.sum(1) > 0).all()
    d = data.load_digits_split()
    assert d.x_permuted.shape == d.x_test.shape
    np.testing.assert_array_equal(np.sort(d.x_permuted, 1), np.sort(d.x_test, 1))

"""The digits generative jobs (training.generative), run once with --smoke: ONNX Runtime
matches PyTorch with a symbolic batch axis, the directories pass the sampler contract, the
cards carry their metrics, and the flow's density is a density."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.registry.cards import read_card
from app.runtime.models import check_artifact
from tests.helpers import ROOT
from training.generative import __main__ as cli
from training.generative import baselines, data, evaluate, flow
from training.generative.report import Result

NAMES = ("vae-digits", "cvae-digits", "flow-digits")
METRIC_KEYS = {
    "vae-digits": {
        "test_log_px_nats",
        "test_bits_per_dim",
        "sgvb",
        "iwae5",
        "iwae5_beats_sgvb",
        "bernoulli_mixture",
        "vae_beats_mixture",
        "is_samples",
        "schedule",
    },
    "cvae-digits": {
        "conditional_accuracy",
        "conditional_accuracy_per_class",
        "frechet_distance",
        "frechet_distance_floor_train_vs_test",
        "classifier_test_accuracy",
        "in_house",
        "schedule",
    },
    "flow-digits": {
        "test_bits_per_dim",
        "test_bits_per_dim_midpoint",
        "uniform_bits_per_dim",
        "gmm_test_bits_per_dim",
        "flow_beats_gmm",
        "schedule",
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    root = tmp_path_factory.mktemp("generative")
    argv = ["--out", str(root / "models"), "--docs", str(root / "docs"), "--smoke"]
    return {result.name: result for result in cli.main(argv)}


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def sample_inputs(name: str, rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rows)
    z_dim = 64 if name == "flow-digits" else 8
    feeds = {"z": rng.standard_normal((rows, z_dim)).astype(np.float32)}
    if name == "cvae-digits":
        feeds["label"] = rng.integers(0, 10, rows).astype(np.int64)
    return feeds


@pytest.mark.parametrize("name", NAMES)
def test_sample_graph_matches_pytorch_with_a_symbolic_batch_axis(
    runs: dict[str, Result], name: str
) -> None:
    result = runs[name]
    sess = session(result.directory / "sample.onnx")
    assert all(isinstance(i.shape[0], str) for i in sess.get_inputs())
    for rows in (1, 257):
        feeds = sample_inputs(name, rows)
        (got,) = sess.run(["x"], feeds)
        with torch.no_grad():
            want = result.graphs["sample"](*(torch.from_numpy(v) for v in feeds.values()))
        assert got.shape == (rows, 8, 8)
        assert got.min() >= 0.0
        assert got.max() <= 1.0
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-5)


def test_flow_log_prob_graph_matches_pytorch(runs: dict[str, Result]) -> None:
    result = runs["flow-digits"]
    sess = session(result.directory / "log_prob.onnx")
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    for rows in (1, 257):
        x = np.random.default_rng(rows).integers(0, 17, (rows, 64)).astype(np.float32)
        (got,) = sess.run(["log_prob"], {"x": x})
        with torch.no_grad():
            want = result.graphs["log_prob"](torch.from_numpy(x)).numpy()
        assert got.shape == (rows,)
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_flow_log_prob_is_finite_and_prefers_digits_to_noise(runs: dict[str, Result]) -> None:
    sess = session(runs["flow-digits"].directory / "log_prob.onnx")
    digits = data.load_split().x_test
    noise = np.random.default_rng(0).integers(0, 17, digits.shape).astype(np.float32)
    (real,) = sess.run(["log_prob"], {"x": digits})
    (fake,) = sess.run(["log_prob"], {"x": noise})
    assert np.isfinite(real).all()
    assert np.isfinite(fake).all()
    assert fake.mean() < real.mean()


@pytest.mark.parametrize("name", NAMES)
def test_directory_passes_the_sampler_contract_and_carries_metrics(
    runs: dict[str, Result], name: str
) -> None:
    directory = runs[name].directory
    card = read_card(directory)
    check_artifact(directory, card)
    assert card.name == name
    assert card.kind == "sampler"
    assert METRIC_KEYS[name] <= set(card.metrics)
    assert isinstance(card.data, dict)
    assert card.data["split_seed"] == data.SPLIT_SEED
    assert (card.data["train_size"], card.data["test_size"]) == (1500, 297)
    assert card.signature.display_scale == 4
    assert card.command == "make train-generative"
    docs = directory.parents[2] / "docs"
    assert (docs / f"{name}-samples.png").stat().st_size > 0
    assert (docs / f"{name}-loss.png").stat().st_size > 0


def test_flow_card_describes_the_log_prob_graph(runs: dict[str, Result]) -> None:
    card = read_card(runs["flow-digits"].directory)
    assert card.signature.as_dict()["log_prob"] == {
        "input_dim": 64,
        "levels": 17,
        "graph": "log_prob",
    }
    assert card.graphs["log_prob"].inputs == ["x"]
    assert card.graphs["log_prob"].outputs == ["log_prob"]
    assert card.signature.z_dim == 64


def test_flow_density_is_the_change_of_variables() -> None:
    """log p(y) = log N(f(y)) + log |det df/dy| with the Jacobian from autograd, and the
    inverse undoes the transform (random weights, so the couplings are not the identity)."""
    torch.manual_seed(0)
    model = flow.RealNVP(couplings=4, hidden=16).double().eval()
    for layer in model.layers:
        torch.nn.init.normal_(layer.net[-1].weight, std=0.1)
    y = torch.rand(64, dtype=torch.float64) * 0.9 + 0.05
    jacobian = torch.autograd.functional.jacobian(lambda v: model.transform(v[None])[0][0], y)
    u, log_det = model.transform(y[None])
    assert log_det.item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-8)
    base = -0.5 * (u.pow(2) + math.log(2 * math.pi)).sum().item()
    assert model.log_prob(y[None]).item() == pytest.approx(base + log_det.item(), abs=1e-8)
    torch.testing.assert_close(model.inverse(u)[0], y)


def test_bernoulli_mixture_sums_to_one_over_all_binary_images() -> None:
    x = (np.random.default_rng(0).random((200, 6)) < 0.3).astype(np.float64)
    model = baselines.fit_bernoulli_mixture(x, 3, iterations=20)
    every = np.array(list(itertools.product([0.0, 1.0], repeat=6)))
    assert np.exp(model.log_likelihood(every)).sum() == pytest.approx(1.0, abs=1e-9)


def test_importance_sampled_log_likelihood_of_a_known_model() -> None:
    """With the exact posterior as proposal, every importance weight equals p(x)."""

    class Exact:
        num_labels = 0

        def log_weights(self, x: torch.Tensor, k: int, *_: object) -> torch.Tensor:
            return torch.full((k, len(x)), -3.0)

    ll = evaluate.is_log_likelihood(Exact(), np.zeros((5, 64), np.float32), 1200, chunk=500)  # type: ignore[arg-type]
    np.testing.assert_allclose(ll, -3.0, atol=1e-5)


def test_frechet_distance_is_zero_for_the_same_features_and_grows_with_a_shift() -> None:
    a = np.random.default_rng(0).standard_normal((500, 5))
    assert evaluate.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert evaluate.frechet_distance(a, a + 1.0) == pytest.approx(5.0, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_registers_and_is_small(name: str) -> None:
    directory = ROOT / "models" / name / "1"
    assert (directory / "card.json").exists(), f"{directory} missing: make train-generative"
    check_artifact(directory, read_card(directory))
    size = sum(f.stat().st_size for f in directory.iterdir())
    assert size < 25 * 2**20

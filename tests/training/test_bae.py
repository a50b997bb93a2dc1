"""The Bayesian autoencoder job (training.bayesian.bae), run once with --smoke: the artifact passes
the autoencoder kind's check and ONNX Runtime matches the per-draw PyTorch decoders; plus unit
tests of the discretised Gaussian likelihood (a distribution over the 17 levels), the posterior
log p(x) and the sliced Wasserstein distance against closed forms, and of the kind's checks on a
card that breaks the contract."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from app.kinds.autoencoder.graph import AutoencoderKind
from app.kinds.autoencoder.response import summarize
from app.noise import standard_normal_rows
from app.runtime.checks import directory_problems
from training.bayesian import bae
from training.bayesian.report import Result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Result:
    root = tmp_path_factory.mktemp("bae")
    return bae.main(["--out", str(root / "models"), "--docs", str(root / "docs"), "--smoke"])


def test_artifact_passes_the_autoencoder_check(run: Result) -> None:
    card, problems = directory_problems(run.directory)
    assert problems == []
    assert card is not None
    assert card.kind == "autoencoder"
    signature = card.signature.as_dict()
    assert signature["input_dim"] == 64
    assert signature["levels"] == 17
    assert signature["draws"] == 4  # smoke: 2 chains x 2 draws
    assert set(card.graphs) == {"reconstruct", "decode"}
    assert set(run.metrics["ood"]["auroc"]) == {"inverted", "noise", "letters"}
    assert all(0.0 <= v <= 1.0 for v in run.metrics["headline"]["ood_auroc_bae_nll"].values())
    assert run.metrics["prior"]["sigma"] in bae.PRIOR_GRID
    for plot in run.metrics["plots"]:
        assert (run.directory.parents[2] / "docs" / plot).stat().st_size > 1000


def test_onnx_matches_each_draw_alone(run: Result) -> None:
    """The stacked graph gives S different draws, and its log_lik is the discretised Gaussian
    of the input under each draw's decoded mean and variance."""
    session = ort.InferenceSession(str(run.directory / "model.onnx"))
    x = np.random.default_rng(3).integers(0, 17, (5, 64)).astype(np.float32)
    mean, var, log_lik = session.run(["mean", "var", "log_lik"], {"x": x})
    assert mean.shape == var.shape == (4, 5, 64)
    assert log_lik.shape == (4, 5)
    draws_differ = float(np.abs(mean[0] - mean[-1]).max())
    assert draws_differ > 1e-4  # the draws are not one network copied
    lik = bae.discretised_log_lik(
        torch.from_numpy(x)[None], torch.from_numpy(mean), torch.from_numpy(np.sqrt(var))
    ).sum(-1)
    np.testing.assert_allclose(lik.numpy(), log_lik, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("mean", "std"), [(0.0, 0.3), (7.3, 1.0), (16.0, 0.05), (30.0, 4.0)])
def test_discretised_gaussian_is_a_distribution_over_the_levels(mean: float, std: float) -> None:
    levels = torch.arange(17, dtype=torch.float64)
    mass = bae.discretised_log_lik(
        levels, torch.full_like(levels, mean), torch.full_like(levels, std)
    ).exp()
    assert float(mass.sum()) == pytest.approx(1.0, abs=1e-6)
    if 0 < mean < 16:  # the level nearest the mean is the most likely
        assert int(mass.argmax()) == round(mean)


def test_discretised_gaussian_bin_mass_matches_erf() -> None:
    x, mean, std = torch.tensor([5.0]), torch.tensor([6.2]), torch.tensor([1.5])
    cdf = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    want = math.log(cdf((5.5 - 6.2) / 1.5) - cdf((4.5 - 6.2) / 1.5))
    assert float(bae.discretised_log_lik(x, mean, std)) == pytest.approx(want, rel=1e-6)
    far = bae.discretised_log_lik(torch.tensor([0.0]), torch.tensor([16.0]), torch.tensor([0.05]))
    assert torch.isfinite(far).all()
    assert float(far) < -1000


def test_posterior_log_px_is_the_mixture_and_the_server_agrees() -> None:
    log_lik = np.array([[-10.0, -1000.0], [-12.0, -1001.0], [-11.0, -1002.0]])  # [S=3, N=2]
    want = np.log(np.exp([-10.0, -12.0, -11.0]).mean())
    got = bae.posterior_log_px(log_lik)
    assert got[0] == pytest.approx(want)
    assert got[1] == pytest.approx(-1000.0 + np.log(np.exp([0.0, -1.0, -2.0]).mean()))
    mean = np.zeros((2, 3, 4))
    mean[:, 1] = 2.0  # draws 0, 2 at 0 and draw 1 at 2: std sqrt(8/9)
    s = summarize(mean, np.full((2, 3, 4), 4.0), log_lik.T)
    np.testing.assert_allclose(s["log_likelihood"], got)
    np.testing.assert_allclose(s["epistemic_std"], math.sqrt(8 / 9))
    np.testing.assert_allclose(s["aleatoric_std"], 2.0)
    np.testing.assert_allclose(s["std"], math.sqrt(8 / 9 + 4))


def test_sliced_wasserstein_of_a_shift() -> None:
    """SW₂ of a cloud and its copy shifted by t is the root mean square of t·θ over the unit
    directions θ: |t| / sqrt(D) in expectation; zero against itself."""
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(400, 16, generator=rng)
    shift = torch.zeros(16)
    shift[0] = 4.0
    same = bae.sliced_wasserstein(a, a.clone(), 512, torch.Generator().manual_seed(1))
    moved = bae.sliced_wasserstein(a, a + shift, 512, torch.Generator().manual_seed(1))
    assert same == 0.0
    assert moved == pytest.approx(4.0 / math.sqrt(16), rel=0.1)


def test_the_check_lists_a_card_that_breaks_the_contract(run: Result, tmp_path: Path) -> None:
    broken = shutil.copytree(run.directory, tmp_path / "broken")
    card = json.loads((broken / "card.json").read_text())
    card["signature"].update(draws=7, image_shape=[8, 9])
    (broken / "card.json").write_text(json.dumps(card))
    _, problems = directory_problems(broken)
    assert any("image_shape [8, 9]" in p for p in problems), problems
    card["signature"]["image_shape"] = [8, 8]
    (broken / "card.json").write_text(json.dumps(card))
    _, problems = directory_problems(broken)
    assert any("expected [7, 1, 64]" in p for p in problems), problems


def test_decode_graph_holds_the_reconstruct_graphs_decoders(run: Result) -> None:
    """decode.onnx's weights are the S stacked decoders of model.onnx (every stored tensor of it
    is one of model.onnx's); on seeded z it gives [S, N, 64], var > 0, draws that differ, and a
    row alone equals it in a batch (no random op)."""
    stored = {
        numpy_helper.to_array(t).tobytes()
        for t in onnx.load(str(run.directory / "model.onnx")).graph.initializer
    }
    decoders = onnx.load(str(run.directory / "decode.onnx")).graph.initializer
    big = [t for t in decoders if numpy_helper.to_array(t).size >= 64]
    assert len(big) >= 6  # 3 layers' weights and biases, [S, in, out] and [S, out]
    assert all(numpy_helper.to_array(t).tobytes() in stored for t in big)
    session = ort.InferenceSession(str(run.directory / "decode.onnx"))
    z = standard_normal_rows(7, 3, bae.Z_DIM)
    mean, var = session.run(["mean", "var"], {"z": z})
    assert mean.shape == var.shape == (4, 3, 64)
    assert (var > 0).all()
    assert float(np.abs(mean[0] - mean[-1]).max()) > 1e-4
    kind, graphs = AutoencoderKind(), {"decode": _Session(session)}
    batched = kind.run({}, graphs, {"z": z})
    alone = kind.run({}, graphs, {"z": z[1:2]})  # the kind pads one row (ORT's M=1 path)
    for name in ("mean", "var"):
        np.testing.assert_array_equal(
            batched[name], {"mean": mean, "var": var}[name].swapaxes(0, 1)
        )
        np.testing.assert_array_equal(alone[name][0], batched[name][1])


class _Session:
    """An ONNX Runtime session as the kinds' Graph.run sees it."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feeds), strict=True))


def test_the_check_lists_a_broken_decode_graph(run: Result, tmp_path: Path) -> None:
    broken = shutil.copytree(run.directory, tmp_path / "broken-decode")
    card = json.loads((broken / "card.json").read_text())
    card["graphs"]["decode"] = {**card["graphs"]["reconstruct"], "inputs": ["x"]}
    (broken / "card.json").write_text(json.dumps(card))
    _, problems = directory_problems(broken)
    assert any("graphs.decode takes exactly one input, `z`" in p for p in problems), problems
    card = json.loads((run.directory / "card.json").read_text())
    del card["signature"]["latent_dim"]
    (broken / "card.json").write_text(json.dumps(card))
    _, problems = directory_problems(broken)
    assert any("signature.latent_dim" in p for p in problems), problems
    del card["graphs"]["decode"]  # an old card, without the optional role, is valid
    (broken / "card.json").write_text(json.dumps(card))
    assert directory_problems(broken)[1] == []

"""The PixelCNN job (training.generative.pixelcnn) at --smoke size, through ONNX Runtime: the
step graph is causal (changing x at positions >= p leaves the logits at p alone; a network
with its masks removed fails the same check), its log-likelihood of the test rows equals the
torch model's, a row's logits do not depend on its batch, the card follows the
`autoregressive` contract, and sampling follows the contract's inverse-CDF rule."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch

from app.kinds.catalog import KINDS
from app.registry.cards import sha256_file
from training.generative import __main__ as cli
from training.generative import data, pixelcnn
from training.generative.report import Result

RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}
Logits = Callable[[np.ndarray], np.ndarray]


def smoke_run(root: pytest.TempPathFactory, name: str) -> Result:
    out = root.mktemp(name)
    argv = ["--out", str(out / "models"), "--docs", str(out / "docs"), "--smoke"]
    (result,) = cli.main([*argv, "--only", "pixelcnn"])
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Result:
    return smoke_run(tmp_path_factory, "pixelcnn")


@pytest.fixture(scope="module")
def graph(run: Result) -> Logits:
    sess = pixelcnn.session(run.directory / pixelcnn.STEP)
    return lambda x: pixelcnn.step_logits(sess, x)


def leaks(logits: Logits, cuts: tuple[int, ...], seed: int = 0) -> list[int]:
    """The cuts p where redrawing x[p:] (every position changed) moved a logit at <= p."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, data.LEVELS, (6, data.DIM))
    base = logits(x)
    found = []
    for p in cuts:
        changed = x.copy()
        changed[:, p:] = (x[:, p:] + rng.integers(1, data.LEVELS, x[:, p:].shape)) % data.LEVELS
        if np.abs(logits(changed)[:, : p + 1] - base[:, : p + 1]).max() > 1e-6:
            found.append(p)
    return found


CUTS = (0, 1, 5, 7, 8, 9, 27, 40, 62, 63)


def test_the_step_graph_is_causal(graph: Logits) -> None:
    assert leaks(graph, CUTS) == []
    # and it does look at the past: the logits after a cut move when x[cut] changes
    x = np.random.default_rng(1).integers(0, data.LEVELS, (4, data.DIM))
    changed = x.copy()
    changed[:, 20] = (x[:, 20] + 5) % data.LEVELS
    assert np.abs(graph(changed)[:, 21:] - graph(x)[:, 21:]).max() > 1e-4


@pytest.mark.parametrize("which", ["vertical", "horizontal"])
def test_the_causality_check_catches_an_unmasked_first_layer(which: str) -> None:
    torch.manual_seed(0)
    model = pixelcnn.Settings.smoke().build().eval()
    getattr(model.layers[0], which).mask.fill_(1.0)  # type A mask removed: sees its own pixel

    def logits(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.position_logits(torch.from_numpy(x)).numpy()

    assert leaks(logits, CUTS) != []


def test_graph_log_likelihood_equals_torch_on_the_test_rows(run: Result) -> None:
    x = data.load_split().x_test.astype(np.int64)
    sess = pixelcnn.session(run.directory / pixelcnn.STEP)
    got = pixelcnn.graph_log_prob(sess, x)
    with torch.no_grad():
        logits = run.graphs["step"](torch.from_numpy(x))
        want = torch.log_softmax(logits.double(), -1).gather(-1, torch.from_numpy(x)[..., None])
    assert got.shape == (297,)
    np.testing.assert_allclose(got, want.sum((1, 2)).numpy(), rtol=0, atol=1e-3)
    bits = -got.mean() / (data.DIM * math.log(2))
    assert run.metrics["test_bits_per_dim"] == pytest.approx(bits, abs=1e-4)
    assert 0 < bits < 2 * math.log2(data.LEVELS)


def test_a_row_does_not_depend_on_its_batch(graph: Logits) -> None:
    x = np.random.default_rng(2).integers(0, data.LEVELS, (257, data.DIM))
    whole = graph(x)
    assert whole.shape == (257, data.DIM, data.LEVELS)
    assert whole.dtype == np.float32
    for rows in (1, 2, 64):
        np.testing.assert_allclose(graph(x[5 : 5 + rows])[0], whole[5], rtol=0, atol=1e-5)


def test_the_graph_has_a_symbolic_batch_axis_and_no_random_op(run: Result) -> None:
    model = onnx.load(str(run.directory / pixelcnn.STEP))
    assert not {node.op_type for node in model.graph.node} & RANDOM_OPS
    (x,) = model.graph.input
    (logits,) = model.graph.output
    assert (x.name, logits.name) == ("x", "logits")
    assert x.type.tensor_type.elem_type == onnx.TensorProto.INT64
    dims = x.type.tensor_type.shape.dim
    assert dims[0].dim_param
    assert dims[1].dim_value == data.DIM


def test_card_follows_the_autoregressive_contract(run: Result) -> None:
    card = json.loads((run.directory / "card.json").read_text())
    assert (card["name"], card["kind"], card["command"]) == (
        "pixelcnn-digits",
        "autoregressive",
        "make train-pixelcnn",
    )
    step = card["graphs"]["step"]
    assert list(card["graphs"]) == ["step"]
    assert (step["file"], step["inputs"], step["outputs"]) == ("step.onnx", ["x"], ["logits"])
    assert step["sha256"] == sha256_file(run.directory / "step.onnx")
    contract = {"shape": [8, 8], "vocabulary": 17, "order": "raster", "classes": None}
    assert {k: card["signature"][k] for k in contract} == contract
    assert (card["data"]["train_size"], card["data"]["test_size"]) == (1500, 297)
    metrics = card["metrics"]
    assert metrics["uniform_bits_per_dim"] == pytest.approx(4.0875)
    for key in ("test_bits_per_dim", "valid_bits_per_dim", "train_bits_per_dim"):
        assert isinstance(metrics[key], float)
    docs = run.directory.parents[2] / "docs"
    for png in ("samples", "loss"):
        assert (docs / f"pixelcnn-digits-{png}.png").stat().st_size > 0
    if "autoregressive" in KINDS:  # once the kind is served, its own contract check too
        from app.registry.cards import read_card
        from app.runtime.models import check_artifact

        check_artifact(run.directory, read_card(run.directory))


def test_inverse_cdf_takes_the_first_level_whose_cumulative_probability_exceeds_u() -> None:
    logits = np.log(np.array([[0.2, 0.3, 0.5]] * 6, np.float32))
    u = np.array([0.0, 0.19, 0.21, 0.49, 0.51, 0.999])
    assert pixelcnn.inverse_cdf(logits, u, 1.0).tolist() == [0, 0, 1, 1, 2, 2]
    cold = pixelcnn.inverse_cdf(logits[1:], u[1:], 1e-3)  # temperature -> 0: the argmax
    assert cold.tolist() == [2] * 5
    hot = pixelcnn.inverse_cdf(logits[:4], np.array([0.32, 0.34, 0.65, 0.67]), 1e3)
    assert hot.tolist() == [0, 1, 1, 2]  # temperature -> inf: uniform thirds


def test_uniforms_are_each_rows_philox_stream() -> None:
    u = pixelcnn.uniforms(seed=7, rows=3, steps=64)
    words = np.random.Philox(key=np.array([7, 2], dtype=np.uint64)).random_raw(64)
    np.testing.assert_array_equal(u[2], ((words >> np.uint64(11)) + 0.5) / 2.0**53)
    assert 0.0 < u.min()
    assert u.max() < 1.0


def test_samples_are_reproducible_and_a_row_does_not_depend_on_n(run: Result) -> None:
    sess = pixelcnn.session(run.directory / pixelcnn.STEP)
    five = pixelcnn.sample(sess, 5, seed=3)
    assert five.shape == (5, 64)
    assert 0 <= five.min()
    assert five.max() <= 16
    np.testing.assert_array_equal(pixelcnn.sample(sess, 2, seed=3), five[:2])
    assert not np.array_equal(pixelcnn.sample(sess, 2, seed=4), five[:2])


SHIPPED = pixelcnn.SHIPPED / pixelcnn.NAME / "1"


@pytest.mark.skipif(not (SHIPPED / "card.json").exists(), reason="pixelcnn-digits not shipped")
def test_the_shipped_graph_is_causal_batch_free_and_scores_its_card() -> None:
    sess = pixelcnn.session(SHIPPED / pixelcnn.STEP)

    def logits(x: np.ndarray) -> np.ndarray:
        return pixelcnn.step_logits(sess, x)

    assert leaks(logits, CUTS) == []
    x = data.load_split().x_test.astype(np.int64)
    whole = logits(x)
    np.testing.assert_allclose(logits(x[7:8])[0], whole[7], rtol=0, atol=1e-5)
    card = json.loads((SHIPPED / "card.json").read_text())
    assert card["graphs"]["step"]["sha256"] == sha256_file(SHIPPED / pixelcnn.STEP)
    bits = pixelcnn.bits_per_dim(pixelcnn.graph_log_prob(sess, x))
    assert card["metrics"]["test_bits_per_dim"] == pytest.approx(bits, abs=1e-4)
    assert card["metrics"]["torch_vs_onnx_max_abs_log_px_nats"] < 1e-3

"""The DCGAN job (training.generative.dcgan) at --smoke size: ONNX Runtime matches PyTorch
with a symbolic batch axis, the graph holds no random op, the directory passes the sampler
contract, a second run writes the same bytes, and the card measures it beside the VAE and the
flow; the sample-quality measures on cases with known answers."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from app.registry.cards import read_card, sha256_file
from app.runtime.models import check_artifact
from training.generative import __main__ as cli
from training.generative import data, dcgan, gan, quality
from training.generative.report import Result

RANDOM_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
}


def smoke_run(root: pytest.TempPathFactory, name: str) -> Result:
    out = root.mktemp(name)
    argv = ["--out", str(out / "models"), "--docs", str(out / "docs"), "--smoke", "--only", "dcgan"]
    (result,) = cli.main(argv)
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Result:
    return smoke_run(tmp_path_factory, "dcgan")


def test_sample_graph_matches_pytorch_with_a_symbolic_batch_axis(run: Result) -> None:
    sess = ort.InferenceSession(
        str(run.directory / "sample.onnx"), providers=["CPUExecutionProvider"]
    )
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    for rows in (1, 257):
        z = np.random.default_rng(rows).standard_normal((rows, dcgan.Z_DIM)).astype(np.float32)
        (got,) = sess.run(["x"], {"z": z})
        with torch.no_grad():
            want = run.graphs["sample"](torch.from_numpy(z)).numpy()
        assert got.shape == (rows, 8, 8)
        assert 0.0 <= got.min() <= got.max() <= 1.0
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_a_row_does_not_depend_on_its_batch(run: Result) -> None:
    sess = ort.InferenceSession(
        str(run.directory / "sample.onnx"), providers=["CPUExecutionProvider"]
    )
    z = np.random.default_rng(0).standard_normal((64, dcgan.Z_DIM)).astype(np.float32)
    (whole,) = sess.run(["x"], {"z": z})
    (alone,) = sess.run(["x"], {"z": z[5:6]})
    np.testing.assert_allclose(alone[0], whole[5], rtol=0, atol=1e-6)


def test_the_graph_holds_no_random_op(run: Result) -> None:
    ops = {node.op_type for node in onnx.load(str(run.directory / "sample.onnx")).graph.node}
    assert not ops & RANDOM_OPS, ops


def test_directory_passes_the_sampler_contract_and_carries_the_comparison(run: Result) -> None:
    card = read_card(run.directory)
    check_artifact(run.directory, card)
    assert (card.name, card.kind, card.command) == (dcgan.NAME, "sampler", "make train-dcgan")
    assert card.signature.z_dim == dcgan.Z_DIM
    assert isinstance(card.data, dict)
    assert (card.data["train_size"], card.data["test_size"]) == (1500, 297)
    metrics = card.metrics
    for key in ("frechet_distance", "frechet_distance_floor_train_vs_test", "confidence_mean"):
        assert isinstance(metrics[key], float)
    assert {"vae-digits", "flow-digits", "real_test"} <= set(metrics["compared"])
    assert set(metrics["verdict"]["frechet_distance"]) >= {dcgan.NAME, "vae-digits", "best"}
    assert {"nearest_neighbour_binary", "nearest_neighbour_levels"} <= set(metrics)
    docs = run.directory.parents[2] / "docs"
    for png in ("samples", "loss"):
        assert (docs / f"{dcgan.NAME}-{png}.png").stat().st_size > 0


def test_a_second_run_writes_the_same_graph(
    run: Result, tmp_path_factory: pytest.TempPathFactory
) -> None:
    again = smoke_run(tmp_path_factory, "dcgan-again")
    assert sha256_file(again.directory / "sample.onnx") == sha256_file(
        run.directory / "sample.onnx"
    )


def test_levels_read_back_from_the_dequantised_scale() -> None:
    levels = np.random.default_rng(0).integers(0, 17, (50, 64)).astype(np.float32)
    y = data.dequantise(levels, np.random.default_rng(1))
    np.testing.assert_array_equal(quality.levels_of_unit(y), levels)
    assert quality.levels_of_unit(np.array([[1.0, 0.0]])).tolist() == [[16.0, 0.0]]


def test_copies_of_training_rows_fall_below_the_test_rows_distances() -> None:
    rng = np.random.default_rng(0)
    train, test = rng.random((300, 64)), rng.random((100, 64))
    copies = quality.nearest_neighbour(train[:50], train, test)
    fresh = quality.nearest_neighbour(rng.random((50, 64)), train, test)
    assert (copies["exact_copies"], copies["share_below_test_p5"]) == (50, 1.0)
    assert fresh["exact_copies"] == 0
    assert fresh["share_below_test_p5"] < 0.3


def test_confidence_and_diversity_of_the_real_digits() -> None:
    ref = quality.reference(data.load_split(), classifier_epochs=5)
    real = quality.real_test(ref)
    assert real["class_entropy_nats"] > 2.2  # the test digits spread over the ten classes
    one_class = quality.confidence_diversity(ref.classifier, ref.test_binary[:1].repeat(40, 0))
    assert one_class["class_entropy_nats"] == 0.0
    assert one_class["classifier_score"] == pytest.approx(1.0, abs=1e-6)


def test_recalibrated_batch_norm_uses_fixed_statistics() -> None:
    torch.manual_seed(0)
    generator = gan.Generator(4, width=4)
    gan.recalibrate(generator, batches=3, rows=16)
    assert not generator.training
    z = torch.randn(8, 4)
    with torch.no_grad():
        torch.testing.assert_close(generator.images(z)[:1], generator.images(z[:1]))

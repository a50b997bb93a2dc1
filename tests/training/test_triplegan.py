"""The Triple-GAN job (training.generative.triplegan_job) at --smoke size: both exported graphs
match PyTorch in ONNX Runtime with a symbolic batch axis, the sampler holds no random op and a
row depends on its own (z, label) alone, each directory passes its kind's artifact check (the
checks the registry runs at load) and is served through its kind over HTTP, and the card
carries the comparison; the labelled split and the losses' pieces on cases with known answers."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from app.noise import standard_normal_rows
from app.registry.cards import read_card
from app.runtime.models import check_artifact
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import live_api, worker_thread
from training.generative import data, triplegan_job
from training.generative import triplegan as tg
from training.generative.report import Result

RANDOM_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    out = tmp_path_factory.mktemp("triplegan")
    argv = ["--out", str(out / "models"), "--docs", str(out / "docs"), "--smoke"]
    return {r.name: r for r in triplegan_job.main(argv)}


def session(path: object) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_sampler_graph_matches_pytorch_has_no_random_op_and_rows_are_independent(
    results: dict[str, Result],
) -> None:
    run = results[triplegan_job.NAME]
    sess = session(run.directory / "sample.onnx")
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    rows = 37
    z = np.random.default_rng(0).standard_normal((rows, tg.Z_DIM)).astype(np.float32)
    labels = (np.arange(rows) % 10).astype(np.int64)
    (got,) = sess.run(["x"], {"z": z, "label": labels})
    with torch.no_grad():
        want = run.graphs["sample"](torch.from_numpy(z), torch.from_numpy(labels)).numpy()
    assert got.shape == (rows, 8, 8)
    assert 0.0 <= got.min() <= got.max() <= 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    (alone,) = sess.run(["x"], {"z": z[5:6], "label": labels[5:6]})
    np.testing.assert_allclose(alone[0], got[5], rtol=0, atol=1e-6)
    (relabelled,) = sess.run(["x"], {"z": z[5:6], "label": np.array([6], np.int64)})
    assert not np.allclose(relabelled[0], got[5])  # the label reaches the image
    ops = {node.op_type for node in onnx.load(str(run.directory / "sample.onnx")).graph.node}
    assert not ops & RANDOM_OPS, ops


def test_classifier_graph_gives_one_draw_of_logits_and_matches_pytorch(
    results: dict[str, Result],
) -> None:
    run = results[triplegan_job.CLASSIFIER_NAME]
    sess = session(run.directory / "model.onnx")
    x = data.load_split().x_test[:9]
    (logits,) = sess.run(["logits"], {"x": x})
    assert logits.shape == (1, 9, 10)
    with torch.no_grad():
        want = run.graphs["predict"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)
    (one,) = sess.run(["logits"], {"x": x[3:4]})  # dropout and noise are off in the graph
    np.testing.assert_allclose(one[0, 0], logits[0, 3], rtol=0, atol=1e-5)


def test_both_directories_pass_their_kinds_checks_and_carry_the_comparison(
    results: dict[str, Result],
) -> None:
    sampler = results[triplegan_job.NAME]
    predictive = results[triplegan_job.CLASSIFIER_NAME]
    s_card, p_card = read_card(sampler.directory), read_card(predictive.directory)
    check_artifact(sampler.directory, s_card)
    check_artifact(predictive.directory, p_card)
    assert (s_card.kind, s_card.signature.num_labels, s_card.command) == (
        "sampler",
        10,
        "make train-triplegan",
    )
    assert (p_card.kind, p_card.signature.draws, p_card.signature.classes) == (
        "predictive",
        1,
        [str(i) for i in range(10)],
    )
    table = p_card.metrics["comparison"]["test"]
    assert set(table) == {"labels_only", "labels_entropy", "triple_gan", "all_labels"}
    for row in table.values():
        assert {"error", "nll", "ece"} <= set(row)
    assert isinstance(
        p_card.metrics["comparison"]["verdict"]["beats_labels_only_beyond_noise"], bool
    )
    nearness = s_card.metrics["labelled_nearness"]
    assert 0.0 <= nearness["real_test"]["share_nearer_a_labelled_row"] <= 1.0
    assert isinstance(s_card.metrics["conditional_accuracy"], float)
    assert {"cvae-digits", "dcgan-digits", "real_test"} <= set(s_card.metrics["compared"])
    docs = sampler.directory.parents[2] / "docs"
    for png in ("samples", "loss"):
        assert (docs / f"{triplegan_job.NAME}-{png}.png").stat().st_size > 0


def test_both_models_serve_through_their_kinds(
    results: dict[str, Result], settings: Settings
) -> None:
    sampler = results[triplegan_job.NAME].directory
    predictive = results[triplegan_job.CLASSIFIER_NAME].directory
    register_directory(settings, sampler, "production")
    register_directory(settings, predictive, "production")
    x = data.load_split().x_test[:3]
    with worker_thread(settings), live_api(settings) as client:
        sample = client.post(
            f"/v1/models/{triplegan_job.NAME}/sample",
            json={"n": 4, "seed": 7, "labels": [0, 3, 3, 9], "format": "array"},
        )
        predict = client.post(
            f"/v1/models/{triplegan_job.CLASSIFIER_NAME}/predict",
            json={"inputs": x.tolist()},
        )
        bad = client.post(
            f"/v1/models/{triplegan_job.NAME}/sample",
            json={"n": 2, "seed": 7, "labels": [0, 10]},
        )
        listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    # the page's Sample tab offers the api's kind == "sampler" models, labels from num_labels
    entry = listed[triplegan_job.NAME]
    assert entry["kind"] == "sampler"
    assert [v["signature"]["num_labels"] for v in entry["versions"]] == [10]
    assert listed[triplegan_job.CLASSIFIER_NAME]["kind"] == "predictive"
    assert sample.status_code == 200, sample.text
    served = np.array(sample.json()["samples"], np.float32)
    (direct,) = session(sampler / "sample.onnx").run(
        ["x"],
        {"z": standard_normal_rows(7, 4, tg.Z_DIM), "label": np.array([0, 3, 3, 9], np.int64)},
    )
    np.testing.assert_allclose(served, direct, rtol=0, atol=1e-6)
    assert predict.status_code == 200, predict.text
    (logits,) = session(predictive / "model.onnx").run(["logits"], {"x": x})
    probs = torch.softmax(torch.from_numpy(logits[0]), -1).numpy()
    body = predict.json()
    got = np.array([row["probs"] for row in body["predictions"]])
    np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_labelled_split_takes_ten_of_each_class_and_leaves_the_rest_unlabelled() -> None:
    digits = data.load_split()
    split = tg.labelled_split(digits, 10, 100)
    assert np.bincount(split.y_labelled, minlength=10).tolist() == [10] * 10
    assert len(split.x_unlabelled) == 1400
    np.testing.assert_array_equal(split.x_labelled, digits.x_train[split.labelled_index])
    again = tg.labelled_split(digits, 10, 100)
    np.testing.assert_array_equal(again.labelled_index, split.labelled_index)
    other = tg.labelled_split(digits, 10, 101)
    assert not np.array_equal(other.labelled_index, split.labelled_index)


def test_entropy_and_the_summary_on_known_answers() -> None:
    uniform = torch.zeros(2, 10)
    sure = torch.tensor([[50.0] + [0.0] * 9])
    assert tg.entropy(uniform).tolist() == pytest.approx([np.log(10)] * 2, abs=1e-6)
    assert tg.entropy(sure).item() == pytest.approx(0.0, abs=1e-6)
    table = tg.summarise([{"error": 0.1}, {"error": 0.3}])
    assert table["error"]["mean"] == pytest.approx(0.2)
    assert table["error"]["sd"] == pytest.approx(np.std([0.1, 0.3], ddof=1), abs=1e-4)
    probs = np.eye(10)[[0, 1, 2]] * 0.9 + 0.01
    metrics = tg.classification_metrics(probs, np.array([0, 1, 3]))
    assert metrics["error"] == pytest.approx(1 / 3, abs=1e-4)


def test_labelled_nearness_tells_copies_of_the_labelled_rows_from_fresh_digits() -> None:
    split = tg.labelled_split(data.load_split(), 10, 100)
    copies = triplegan_job.labelled_nearness(split.x_labelled[:30] + 0.5, split)
    unlabelled = triplegan_job.labelled_nearness(split.x_unlabelled[:30] + 0.5, split)
    assert copies["share_nearer_a_labelled_row"] == 1.0
    assert unlabelled["share_nearer_a_labelled_row"] == 0.0


def test_paired_differences_count_a_steady_small_win_and_not_a_noisy_one() -> None:
    base = [{"error": e, "nll": 0.2} for e in (0.10, 0.06, 0.08)]
    steady = triplegan_job.paired(
        [{"error": e - 0.01, "nll": 0.2} for e in (0.10, 0.06, 0.08)], base
    )
    assert (steady["lower_error_in_seeds"], steady["beyond_noise"]) == ("3 of 3", True)
    noisy = triplegan_job.paired([{"error": e, "nll": 0.2} for e in (0.05, 0.09, 0.07)], base)
    assert noisy["mean_error_difference"] == pytest.approx(-0.01, abs=1e-9)
    assert not noisy["beyond_noise"]

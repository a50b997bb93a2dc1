"""The artifact check (registration, uploads, `hanmo models check`): graphs run on random
inputs at two batch sizes, and every problem of a directory is reported at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.errors import ContractViolation
from app.registry.cards import read_card
from app.runtime.models import check_artifact
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, save_sampler
from training.export import write_card

SHIPPED = sorted(card.parent for card in (ROOT / "models").glob("*/*/card.json"))


def _image_nodes() -> tuple[list[object], list[object]]:
    """z [n, 16] -> `flat` [n, 784] in (0, 1): the sane part of the broken samplers below."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((16, 784)).astype(np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["z", "w"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["flat"]),
    ]
    return nodes, [weights]


def log_one_minus_norm_sampler(directory: Path) -> Path:
    """x = sigmoid(z W) + log(1 − Σz²): fine at z = 0 (the old check's input), NaN for noise."""
    nodes, inits = _image_nodes()
    inits += [
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array([-1, 28, 28], np.int64), "shape"),
    ]
    nodes += [
        helper.make_node("Mul", ["z", "z"], ["z2"]),
        helper.make_node("ReduceSum", ["z2"], ["norm"], keepdims=1),  # [n, 1] (axes default: all)
        helper.make_node("Sub", ["one", "norm"], ["rest"]),
        helper.make_node("Log", ["rest"], ["log"]),
        helper.make_node("Add", ["flat", "log"], ["sum"]),
        helper.make_node("Reshape", ["sum", "shape"], ["x"]),
    ]
    return _save(nodes, inits, directory, "log-norm", ["n", 28, 28])


def value_shaped_sampler(directory: Path) -> Path:
    """x [n, 784 + ⌊10·max|z|⌋]: its width follows the noise's values (zero padding)."""
    nodes, inits = _image_nodes()
    inits += [
        numpy_helper.from_array(np.array(10.0, np.float32), "ten"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([0], np.int64), "start"),
        numpy_helper.from_array(np.array([1], np.int64), "stop"),
    ]
    nodes += [
        helper.make_node("Abs", ["z"], ["abs"]),
        helper.make_node("ReduceMax", ["abs"], ["max"], keepdims=0),
        helper.make_node("Mul", ["max", "ten"], ["scaled"]),
        helper.make_node("Floor", ["scaled"], ["floored"]),
        helper.make_node("Cast", ["floored"], ["width"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["width", "axis0"], ["width1"]),
        helper.make_node("Shape", ["z"], ["zshape"]),
        helper.make_node("Slice", ["zshape", "start", "stop"], ["rows"]),
        helper.make_node("Concat", ["rows", "width1"], ["pad_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["pad_shape"], ["pad"]),
        helper.make_node("Cast", ["pad"], ["pad32"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["flat", "pad32"], ["x"], axis=1),
    ]
    return _save(nodes, inits, directory, "value-shaped", ["n", "w"])


def _save(
    nodes: list[object], inits: list[object], directory: Path, name: str, shape: list[object]
) -> Path:
    graph = helper.make_graph(
        nodes,  # type: ignore[arg-type]
        name,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        inits,  # type: ignore[arg-type]
    )
    return save_sampler(graph, directory, name)


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(ContractViolation) as refused:
        check_artifact(directory, read_card(directory))
    problems: list[str] = refused.value.extensions["problems"]
    assert all(problem in refused.value.detail for problem in problems)
    return problems


def edit_card(directory: Path, **signature: object) -> dict[str, object]:
    card = json.loads((directory / "card.json").read_text())
    card["signature"].update(signature)
    (directory / "card.json").write_text(json.dumps(card))
    return dict(card)


def test_sampler_that_is_nan_on_noise_is_refused(tmp_path: Path) -> None:
    problems = problems_of(log_one_minus_norm_sampler(tmp_path / "log"))
    assert len(problems) == 1
    assert problems[0].startswith("graphs.sample output `x`: ")
    assert "NaN or Inf on N=1 random inputs" in problems[0]


def test_sampler_whose_output_shape_follows_input_values_is_refused(tmp_path: Path) -> None:
    problems = problems_of(value_shaped_sampler(tmp_path / "wide"))
    assert any(
        p.startswith("graphs.sample output `x`: shape (3, ")
        and "on N=3 but (1, " in p
        and p.endswith("the output must not depend on input values")
        for p in problems
    ), problems


def log_regression(directory: Path, data: dict[str, object] | None) -> Path:
    """A 2-feature regression with S=4 draws: mean = log(x) summed, var = 1; finite for the
    positive rows its data describes, NaN for negative ones."""
    draws = numpy_helper.from_array(np.ones((4, 1, 2), np.float32), "draws")
    nodes = [
        helper.make_node("Log", ["x"], ["log"]),
        helper.make_node("Mul", ["draws", "log"], ["terms"]),  # [4, n, 2]
        helper.make_node("ReduceSum", ["terms", "last"], ["mean"], keepdims=1),  # [4, n, 1]
        helper.make_node("Mul", ["mean", "zero"], ["nought"]),
        helper.make_node("Add", ["nought", "one"], ["var"]),
    ]
    inits = [
        draws,
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    outputs = [
        helper.make_tensor_value_info(o, TensorProto.FLOAT, [4, "n", 1]) for o in ("mean", "var")
    ]
    graph = helper.make_graph(
        nodes,
        "logreg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    directory.mkdir(parents=True)
    onnx.save(model, directory / "model.onnx")
    write_card(
        directory,
        name="log-regression",
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], ["mean", "var"])},
        signature={"task": "regression", "input_dim": 2, "draws": 4, "features": ["a", "b"]},
        data=data,
        code_revision="test",
    )
    return directory


def test_predictive_rows_follow_the_cards_feature_summary(tmp_path: Path) -> None:
    summary = {f: {"min": 1.0, "median": 5.0, "max": 10.0} for f in ("b", "a")}
    near_data = log_regression(tmp_path / "summary", {"feature_summary": summary})
    check_artifact(near_data, read_card(near_data))  # positive rows: finite
    problems = problems_of(log_regression(tmp_path / "normal", None))
    assert problems[0].startswith("graphs.predict output `mean`: ")
    assert "are NaN or Inf on N=" in problems[0]


def test_card_with_two_mistakes_lists_both(
    settings: Settings, tiny_dir: Path, tmp_path: Path
) -> None:
    wrong = shutil.copytree(tiny_dir, tmp_path / "wrong")
    edit_card(wrong, z_dim=8, num_labels=10)
    with pytest.raises(ContractViolation) as refused:
        register_directory(settings, wrong, "production")
    detail = refused.value.detail
    assert detail.startswith("2 problems: (1) ")
    assert "input `z`: axis 1 is 16, the card says 8" in detail
    assert "input `label` must exist exactly when signature.num_labels is set" in detail


def test_cli_check_passes_a_shipped_model() -> None:
    done = _cli_check(ROOT / "models" / "vae-digits" / "1")
    assert (done.returncode, done.stdout) == (0, "ok: vae-digits (sampler), sample (sample.onnx)\n")


def test_cli_check_lists_every_problem_of_a_broken_directory(
    tiny_dir: Path, tmp_path: Path
) -> None:
    broken = shutil.copytree(tiny_dir, tmp_path / "broken")
    card = edit_card(broken, z_dim=8, sample_shape=[28, -28])
    card["files"] = {"atlas.npz": "0" * 64}
    (broken / "card.json").write_text(json.dumps(card))
    done = _cli_check(broken)
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert len(lines) == 3, lines
    assert lines[0] == "file 'atlas.npz' named in card.json is missing: add it beside card.json"
    assert lines[1].startswith("signature.sample_shape must be a list of positive sizes")
    assert lines[2] == "graphs.sample input `z`: axis 1 is 16, the card says 8"


def test_cli_check_reports_card_fields_that_do_not_parse(tmp_path: Path) -> None:
    directory = tmp_path / "fields"
    directory.mkdir()
    (directory / "card.json").write_text(json.dumps({"name": "Bad Name!", "kind": "gan"}))
    lines = _cli_check(directory).stdout.splitlines()
    assert {line.split(":")[0] for line in lines} == {
        "card.json field `name`",
        "card.json field `kind`",
        "card.json field `graphs`",
    }


@pytest.mark.parametrize("directory", SHIPPED, ids=lambda d: f"{d.parent.name}-{d.name}")
def test_every_shipped_model_passes_the_check(directory: Path) -> None:
    from app.runtime.checks import directory_problems

    assert directory_problems(directory)[1] == []


def _cli_check(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "check", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

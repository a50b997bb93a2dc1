"""hanmo_client.export: a user's own torch modules become model directories that hanmo's own
registration check (`hanmo models check`, run here in-process) accepts as they are; modules
that break a kind's contract are refused before anything is written, saying how."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from hanmo_client import export
from torch import nn

from app.registry.cards import read_card, sha256_file
from app.runtime.checks import directory_problems


class Decoder(nn.Module):
    """(z [N, 4], label [N]) -> a flat [N, 16] sample, reshaped by the card to [4, 4]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(3, 4)
        self.out = nn.Linear(4, 16)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(z + self.embed(label)))


class MeanOnly(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean: torch.Tensor = self.net(x / 100)[:, 0]
        return mean  # [N]: export adds the column


class StackedClassifier(nn.Module):
    """Four draws of a linear classifier at once: logits [S=4, N, C=3]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Parameter(torch.randn(4, 5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nd,sdc->snc", x / 16, self.w)


def test_a_conditional_sampler_passes_hanmo_check_with_its_card(tmp_path: Path) -> None:
    out = export.export_sampler(
        Decoder(), 4, tmp_path / "cond", name="my-cond", sample_shape=[4, 4], num_labels=3,
        image=True, display_scale=2, seed=0, metrics={"loss": 1.5},
    )  # fmt: skip
    card, problems = directory_problems(out)
    assert problems == []
    assert card is not None
    assert card.graphs["sample"].inputs == ["z", "label"]
    assert card.graphs["sample"].sha256 == sha256_file(out / "model.onnx")
    assert read_card(out).digest() == card.digest()
    signature = json.loads((out / "card.json").read_text())["signature"]
    assert signature == {
        "z_dim": 4, "num_labels": 3, "sample_shape": [4, 4], "image": True,
        "display_scale": 2, "latent": "standard_normal",
    }  # fmt: skip
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim] == ["N", ""]
    assert all(not node.metadata_props for node in graph.node)  # no local paths in the bytes


class Noisy(nn.Module):
    """A decoder that samples inside: Bernoulli pixels rather than their means."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        means = torch.sigmoid(z.repeat(1, 4))
        return torch.bernoulli(means)


def test_a_decoder_that_draws_its_own_noise_is_refused(tmp_path: Path) -> None:
    noisy = Noisy()
    with pytest.raises(ValueError, match="different x for the same z"):
        export.export_sampler(noisy, 4, tmp_path / "noisy", name="noisy", sample_shape=[16])
    assert not (tmp_path / "noisy").exists()


def test_a_sample_shape_that_disagrees_with_the_decoder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"sample_shape is \[8, 8\]"):
        export.export_sampler(nn.Linear(4, 16), 4, tmp_path / "s", name="s", sample_shape=[8, 8])


def test_members_stack_into_draws_with_a_feature_summary(tmp_path: Path) -> None:
    rows = np.array([[10.0, 1.0], [30.0, 2.0], [20.0, 2.0], [40.0, 1.0]], np.float32)
    out = export.export_predictive(
        [MeanOnly(0), MeanOnly(1)], tmp_path / "ens", name="my-ens", task="regression",
        input_dim=2, features=["a", "b"], targets=["y"], noise_var=0.25, x_train=rows,
        data="four rows",
    )  # fmt: skip
    assert directory_problems(out)[1] == []
    card = json.loads((out / "card.json").read_text())
    assert card["signature"]["draws"] == 2
    assert card["data"] == {
        "source": "four rows",
        "feature_summary": {
            "a": {"min": 10.0, "median": 25.0, "max": 40.0},
            "b": {"min": 1.0, "median": 1.5, "max": 2.0},
        },
    }
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    mean, var = session.run(["mean", "var"], {"x": rows})
    assert mean.shape == var.shape == (2, 4, 1)
    assert np.all(var == np.float32(0.25))
    with torch.no_grad():
        want = MeanOnly(1)(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(mean[1, :, 0], want, rtol=1e-5)


def test_a_stacked_classifier_passes_hanmo_check(tmp_path: Path) -> None:
    out = export.export_predictive(
        StackedClassifier(), tmp_path / "cls", name="my-cls", task="classification",
        input_dim=5, classes=["r", "g", "b"], input_range=(0, 16), method="laplace",
    )  # fmt: skip
    assert directory_problems(out)[1] == []
    signature = json.loads((out / "card.json").read_text())["signature"]
    assert (signature["draws"], signature["classes"]) == (4, ["r", "g", "b"])
    assert signature["input_range"] == [0.0, 16.0]


def test_regression_members_without_a_positive_var_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="noise_var"):
        export.export_predictive(
            [MeanOnly(0)], tmp_path / "m", name="m", task="regression", input_dim=2
        )
    with pytest.raises(ValueError, match="`var` must be positive"):
        export.export_predictive(
            [MeanOnly(0)], tmp_path / "m", name="m", task="regression", input_dim=2,
            noise_var=0.0,
        )  # fmt: skip
    assert not (tmp_path / "m").exists()


def test_card_fields_that_disagree_with_the_graph_are_refused_before_any_file(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="3 features for input_dim 2"):
        export.export_predictive(
            [MeanOnly(0)], tmp_path / "f", name="f", task="regression", input_dim=2,
            features=["a", "b", "c"], noise_var=1.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="2 targets for 1 output columns"):
        export.export_predictive(
            [MeanOnly(0)], tmp_path / "f", name="f", task="regression", input_dim=2,
            targets=["y", "z"], noise_var=1.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="name 'My Model' must match"):
        export.export_sampler(nn.Linear(4, 16), 4, tmp_path / "f", name="My Model", sample_shape=[])
    assert not (tmp_path / "f").exists()


def test_importing_the_client_or_its_export_module_loads_no_torch() -> None:
    code = "import sys, hanmo_client, hanmo_client.export; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr

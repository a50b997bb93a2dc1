"""Shared output of the generative jobs: ONNX export of a graph, samples read back through
ONNX Runtime, the PNG sample grid and loss curves (matplotlib, Agg), and the job result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from training.export import export_onnx, write_card
from training.generative import data

COMMAND = "make train-generative"
SIGNATURE_BASE: dict[str, Any] = {"sample_shape": [8, 8], "image": True, "display_scale": 4}
MODEL_VERSION = "1"


@dataclass
class Result:
    """A finished job: its model directory, card metrics, the exported PyTorch modules by
    graph role (for parity checks against ONNX Runtime) and its wall time."""

    name: str
    directory: Path
    metrics: dict[str, Any]
    graphs: dict[str, nn.Module] = field(default_factory=dict)
    seconds: float = 0.0


def write_sampler_card(
    directory: Path,
    name: str,
    z_dim: int,
    description: str,
    preprocessing: str,
    metrics: dict[str, Any],
    command: str = COMMAND,
) -> None:
    """card.json of an unconditional digits sampler with one graph, sample.onnx: z -> x."""
    write_card(
        directory,
        name=name,
        kind="sampler",
        fmt="onnx",
        graphs={"sample": ("sample.onnx", ["z"], ["x"])},
        signature={
            "z_dim": z_dim,
            "num_labels": None,
            **SIGNATURE_BASE,
            "latent": "standard_normal",
        },
        description=description,
        seed=0,
        data=data.describe(preprocessing),
        metrics=metrics,
        command=command,
    )


def model_dir(out: Path, name: str) -> Path:
    directory = out / name / MODEL_VERSION
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
) -> None:
    """training.export.export_onnx, then a check that ONNX Runtime reproduces PyTorch."""
    export_onnx(module.eval(), args, path, inputs, outputs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(outputs, {n: a.numpy() for n, a in zip(inputs, args, strict=True)})
    with torch.no_grad():
        want = module(*args).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def run_onnx(path: Path, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (value,) = session.run([output], feeds)
    return np.asarray(value)


def save_grid(images: np.ndarray, path: Path, columns: int, title: str) -> None:
    """images [N, 8, 8] in [0, 1] (white ink on black) as a grid PNG."""
    rows = -(-len(images) // columns)
    canvas = np.ones((rows * 9 + 1, columns * 9 + 1), np.float32) * 0.35
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[1 + r * 9 : 1 + r * 9 + 8, 1 + c * 9 : 1 + c * 9 + 8] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(columns * 0.45 + 0.4, rows * 0.45 + 0.6))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_curves(
    curves: dict[str, tuple[list[float], list[float]]], path: Path, ylabel: str, title: str
) -> None:
    """Loss curves: label -> (epochs, values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    later: list[float] = []
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=label, linewidth=1.2)
        later += ys[len(ys) // 20 :]
    if later:  # zoom past the first few epochs' drop
        low, high = min(later), max(later)
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.1 * (high - low + 1e-9))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def curve(values: list[float]) -> tuple[list[float], list[float]]:
    return [float(i + 1) for i in range(len(values))], list(values)


def points(pairs: list[tuple[int, float]], sign: float = 1.0) -> tuple[list[float], list[float]]:
    return [float(e) for e, _ in pairs], [sign * v for _, v in pairs]


def rounded(value: float, digits: int = 4) -> float:
    return round(float(value), digits)

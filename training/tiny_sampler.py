"""A tiny MLP sampler (16 -> 256 -> 784, sigmoid, 28x28): the serving path's test and
benchmark model. Its weights are seeded, not trained: it measures serving, not modelling."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import nn

from training.export import export_onnx, export_torchscript, write_card

Z_DIM, HIDDEN, SIDE = 16, 256, 28


class TinyDecoder(nn.Module):
    def __init__(self, num_labels: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_labels, Z_DIM) if num_labels else None
        self.net = nn.Sequential(
            nn.Linear(Z_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, SIDE * SIDE), nn.Sigmoid()
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and label is not None:
            z = z + self.embed(label)
        return self.net(z).reshape(-1, SIDE, SIDE)


def build(
    directory: Path,
    name: str = "tiny-sampler",
    fmt: str = "onnx",
    num_labels: int = 0,
    seed: int = 0,
) -> Path:
    """Write model.onnx (or model.pt) and card.json into `directory`."""
    torch.manual_seed(seed)
    module = TinyDecoder(num_labels).eval()
    args: tuple[torch.Tensor, ...] = (torch.randn(4, Z_DIM),)
    inputs = ["z"]
    if num_labels:
        args += (torch.arange(4) % num_labels,)
        inputs.append("label")
    directory.mkdir(parents=True, exist_ok=True)
    filename = "model.onnx" if fmt == "onnx" else "model.pt"
    if fmt == "onnx":
        export_onnx(module, args, directory / filename, inputs, ["x"])
    else:
        export_torchscript(module, args, directory / filename)
    write_card(
        directory,
        name=name,
        kind="sampler",
        fmt=fmt,
        graphs={"sample": (filename, inputs, ["x"])},
        signature={
            "z_dim": Z_DIM,
            "num_labels": num_labels or None,
            "sample_shape": [SIDE, SIDE],
            "image": True,
        },
        description="tiny seeded MLP sampler for serving tests and benchmarks",
        seed=seed,
        data="none (untrained, seeded weights)",
        command=f"python -m training.tiny_sampler {directory} --format {fmt}",
    )
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--name", default="tiny-sampler")
    parser.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    parser.add_argument("--num-labels", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build(args.directory, args.name, args.format, args.num_labels, args.seed)


if __name__ == "__main__":
    main()


class TinySampleGraph(nn.Module):
    """y = sigmoid(mu + sigma * z): a logit-normal over 8x8 images."""

    def __init__(self, mu: torch.Tensor, log_sigma: torch.Tensor) -> None:
        super().__init__()
        self.mu, self.log_sigma = nn.Parameter(mu), nn.Parameter(log_sigma)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mu + self.log_sigma.exp() * z).reshape(-1, 8, 8)


class TinyLogProbGraph(TinySampleGraph):
    """log P(levels) by the midpoint rule: log p(y) at y = (x + 0.5)/17, minus 64 ln 17."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x + 0.5) / LEVELS
        u = torch.log(y) - torch.log1p(-y)
        sigma = self.log_sigma.exp()
        normal = -0.5 * ((u - self.mu) / sigma) ** 2 - self.log_sigma - HALF_LOG_2PI
        log_det = -torch.log(y) - torch.log1p(-y)  # du/dy
        return (normal + log_det).sum(dim=1) - DIM * math.log(LEVELS)


LEVELS, DIM, HALF_LOG_2PI = 17, 64, 0.5 * math.log(2 * math.pi)


def build_density(directory: Path, name: str = "tiny-density", seed: int = 0) -> Path:
    """A seeded logit-normal density with `sample` and `log_prob` graphs (the flow contract)."""
    torch.manual_seed(seed)
    mu, log_sigma = torch.randn(DIM) * 0.5, torch.full((DIM,), -0.5) + 0.1 * torch.randn(DIM)
    directory.mkdir(parents=True, exist_ok=True)
    export_onnx(
        TinySampleGraph(mu, log_sigma),
        (torch.randn(4, DIM),),
        directory / "sample.onnx",
        ["z"],
        ["x"],
    )
    export_onnx(
        TinyLogProbGraph(mu, log_sigma),
        (torch.rand(4, DIM) * 16,),
        directory / "log_prob.onnx",
        ["x"],
        ["log_prob"],
    )
    write_card(
        directory,
        name=name,
        kind="sampler",
        fmt="onnx",
        graphs={
            "sample": ("sample.onnx", ["z"], ["x"]),
            "log_prob": ("log_prob.onnx", ["x"], ["log_prob"]),
        },
        signature={
            "z_dim": DIM,
            "num_labels": None,
            "sample_shape": [8, 8],
            "image": True,
            "display_scale": 4,
            "log_prob": {"input_dim": DIM, "levels": LEVELS, "graph": "log_prob"},
        },
        description="tiny seeded logit-normal density for serving tests",
        seed=seed,
        data="none (untrained, seeded parameters)",
        command="tests only",
    )
    return directory

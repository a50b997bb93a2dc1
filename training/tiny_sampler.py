"""A tiny MLP sampler (16 -> 256 -> 784, sigmoid, 28x28): the serving path's test and
benchmark model. Its weights are seeded, not trained: it measures serving, not modelling."""

from __future__ import annotations

import argparse
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

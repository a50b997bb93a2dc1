"""Tiny predictive models with S stacked draws in one graph, for serving tests: seeded
weights, not trained. Regression: `mean` and `var` [S, N, 1]; classification: `logits`
[S, N, C]."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from training.export import export_onnx, write_card


class StackedMLP(nn.Module):
    """S one-hidden-layer MLPs evaluated at once: x [N, D] -> [S, N, O]."""

    def __init__(self, draws: int, inputs: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(draws, inputs, hidden) / inputs**0.5)
        self.b1 = nn.Parameter(0.1 * torch.randn(draws, 1, hidden))
        self.w2 = nn.Parameter(torch.randn(draws, hidden, outputs) / hidden**0.5)
        self.b2 = nn.Parameter(0.1 * torch.randn(draws, 1, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.einsum("nd,sdh->snh", x, self.w1) + self.b1)
        return torch.einsum("snh,sho->sno", h, self.w2) + self.b2


class Regression(nn.Module):
    def __init__(self, draws: int, inputs: int) -> None:
        super().__init__()
        self.net = StackedMLP(draws, inputs, 16, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out[..., :1] * 5.0 + 20.0, nn.functional.softplus(out[..., 1:]) + 0.1


class Classification(nn.Module):
    def __init__(self, draws: int, inputs: int, classes: int) -> None:
        super().__init__()
        self.net = StackedMLP(draws, inputs, 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x / 8.0) * 3.0


def build(directory: Path, task: str, name: str, draws: int = 8, seed: int = 0) -> Path:
    """Write model.onnx and card.json for a tiny `regression` or `classification` model."""
    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    if task == "regression":
        inputs, outputs = 3, ["mean", "var"]
        module: nn.Module = Regression(draws, inputs)
        extra = {"targets": ["y"], "target_units": "units", "features": ["a", "b", "c"]}
    else:
        inputs, outputs = 4, ["logits"]
        module = Classification(draws, inputs, 3)
        extra = {
            "classes": ["red", "green", "blue"],
            "input_range": [0, 16],
            "features": [f"pixel_{i}" for i in range(inputs)],
        }
    export_onnx(module, (torch.randn(5, inputs),), directory / "model.onnx", ["x"], outputs)
    write_card(
        directory,
        name=name,
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], outputs)},
        signature={"task": task, "input_dim": inputs, "draws": draws, "method": "seeded", **extra},
        description="tiny seeded stacked-draw model for serving tests",
        seed=seed,
        data="none (untrained)",
        command="tests only",
    )
    return directory

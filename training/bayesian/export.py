"""The served graph: all S posterior draws of a stacked MLP in one ONNX graph, input x in
the original feature units (standardised inside with baked constants), per-draw outputs in
the original target units. Checked against ONNX Runtime after export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.export import export_checked


class Predictive(nn.Module):
    """Layer weights either per draw (W [S, in, out], b [S, out]: SGHMC, ensembles) or shared
    (W [in, out], b [out]) with per-draw hidden masks [S, H] (MC dropout, applied as
    explicit multiplications, never a Dropout op). Regression outputs (mean, var) [S, N, 1]:
    mean = y_shift + y_scale·raw₀, var = y_scale²·(softplus(raw₁) + floor). Classification
    outputs logits [S, N, K]."""

    def __init__(
        self,
        params: list[Tensor],
        x_shift: np.ndarray,
        x_scale: np.ndarray,
        draws: int,
        *,
        task: str,
        masks: list[Tensor] | None = None,
        y_shift: float = 0.0,
        y_scale: float = 1.0,
        floor: float = 0.0,
    ) -> None:
        super().__init__()
        self.task = task
        self.draws = draws
        self.layers = len(params) // 2
        self.floor = float(floor)
        self.register_buffer("x_shift", torch.as_tensor(x_shift, dtype=torch.float32))
        self.register_buffer("x_scale", torch.as_tensor(x_scale, dtype=torch.float32))
        self.register_buffer("y_shift", torch.tensor(float(y_shift)))
        self.register_buffer("y_scale", torch.tensor(float(y_scale)))
        for i, p in enumerate(params):
            self.register_buffer(f"p{i}", p.detach().to(torch.float32).clone())
        self.masked = masks is not None
        for i, m in enumerate(masks or []):
            self.register_buffer(f"m{i}", m.detach().to(torch.float32).clone())

    def param(self, i: int) -> Tensor:
        return getattr(self, f"p{i}")

    def head(self, raw: Tensor) -> tuple[Tensor, ...]:
        if self.task == "classification":
            return (raw,)
        mean = self.y_shift + self.y_scale * raw[..., 0:1]
        var = self.y_scale * self.y_scale * (F.softplus(raw[..., 1:2]) + self.floor)
        return mean, var

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        z = (x - self.x_shift) / self.x_scale
        h = z.unsqueeze(0).expand(self.draws, -1, -1)
        for i in range(self.layers):
            w, b = self.param(2 * i), self.param(2 * i + 1)
            if w.dim() == 3:
                h = torch.matmul(h, w) + b.unsqueeze(1)
            else:
                h = torch.matmul(h, w) + b
            if i < self.layers - 1:
                h = torch.relu(h)
                if self.masked:
                    h = h * getattr(self, f"m{i}").unsqueeze(1)
        return self.head(h)

    def forward_draw(self, x: Tensor, s: int) -> tuple[Tensor, ...]:
        """Draw s alone, without the stacked matmuls: the reference loop for parity tests."""
        h = (x - self.x_shift) / self.x_scale
        for i in range(self.layers):
            w, b = self.param(2 * i), self.param(2 * i + 1)
            if w.dim() == 3:
                w, b = w[s], b[s]
            h = h @ w + b
            if i < self.layers - 1:
                h = torch.relu(h)
                if self.masked:
                    h = h * getattr(self, f"m{i}")[s]
        return tuple(t[0] for t in self.head(h.unsqueeze(0)))


def outputs_of(task: str) -> list[str]:
    return ["mean", "var"] if task == "regression" else ["logits"]


def export(module: Predictive, example: np.ndarray, path: Path) -> list[str]:
    """export_onnx with the dynamic row axis, then ONNX Runtime against PyTorch at the example
    rows and at N = 1. Returns the output names."""
    x = torch.as_tensor(example, dtype=torch.float32)
    return export_checked(module, x, path, "x", outputs_of(module.task), 1e-4)


def run(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {"x": np.asarray(x, np.float32)})
    return dict(zip(names, values, strict=True))

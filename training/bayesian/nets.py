"""Stacked MLPs: P independent networks (chains, ensemble members, splits) held as weight
tensors with a leading axis, run with batched matmuls. Layer i: W [P, in, out], b [P, out]."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def init_mlp(p: int, sizes: list[int], generator: torch.Generator) -> list[Tensor]:
    """[W1, b1, W2, b2, ...] for P networks; W ~ N(0, 1 / fan_in), b = 0."""
    params: list[Tensor] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = torch.randn(p, fan_in, fan_out, generator=generator) / math.sqrt(fan_in)
        params += [w, torch.zeros(p, fan_out)]
    return params


def forward(params: list[Tensor], x: Tensor, masks: list[Tensor] | None = None) -> Tensor:
    """x [P, N, D] -> [P, N, out]; ReLU between layers; masks[i] (broadcastable to
    [P, N, H_i]) multiplies hidden layer i after its activation (dropout)."""
    h = x
    layers = len(params) // 2
    for i in range(layers):
        h = torch.baddbmm(params[2 * i + 1].unsqueeze(1), h, params[2 * i])
        if i < layers - 1:
            h = torch.relu(h)
            if masks is not None:
                h = h * masks[i]
    return h


def hetero(out: Tensor, floor: float) -> tuple[Tensor, Tensor]:
    """Heteroscedastic head: (mean, variance = softplus(raw) + floor) of the last axis' 2 units."""
    return out[..., 0], F.softplus(out[..., 1]) + floor


def gaussian_nll(mean: Tensor, var: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (torch.log(2 * math.pi * var) + (y - mean) ** 2 / var)


def l2(params: list[Tensor]) -> Tensor:
    """Sum of squares of every parameter, per network: [P]."""
    return sum(t.pow(2).flatten(1).sum(1) for t in params)  # type: ignore[return-value]

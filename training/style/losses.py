"""Pixel losses for glyphs in [0, 1] (ink = 1): L1, ink-weighted L1, projection profiles, SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian(sigma: float = 1.5, size: int = 11) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


_WINDOW = _gaussian()


def _ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w = _WINDOW.to(x)
    x, y = x.unsqueeze(1), y.unsqueeze(1)
    mx, my = F.conv2d(x, w, padding=5), F.conv2d(y, w, padding=5)
    sxx = F.conv2d(x * x, w, padding=5) - mx**2
    syy = F.conv2d(y * y, w, padding=5) - my**2
    sxy = F.conv2d(x * y, w, padding=5) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s[..., 5:-5, 5:-5]


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of [N, H, W] images with data range 1 (gaussian window σ = 1.5, as evaluated)."""
    return _ssim_map(x, y).mean()


def ssim_per_glyph(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[N] SSIM of each of [N, H, W] images, as ``ssim`` computes their mean."""
    return _ssim_map(x, y).mean((1, 2, 3))


def glyph_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    l1 = (pred - target).abs()
    ink = (1.0 + 4.0 * torch.maximum(target, pred.detach())) * l1
    profile = (pred.mean(1) - target.mean(1)).abs().mean() + (
        pred.mean(2) - target.mean(2)
    ).abs().mean()
    parts = {
        "l1": l1.mean(),
        "ink_l1": ink.mean() / 5.0,
        "profile": profile,
        "ssim": 1.0 - ssim(pred, target),
    }
    total = sum(weights.get(k, 0.0) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}

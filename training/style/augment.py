"""Synthetic styles: one random slant, width and stroke weight per training episode, applied
alike to its references and its target (never to the content glyphs).

The training fonts are a few dozen styles, so the encoder can get by naming the nearest one;
a held-out font that leans (Smiley Sans) or is narrower or heavier than every training font
is then drawn as its nearest neighbour. Drawing a continuum of variants makes the references
the only way to know how far a target leans or how heavy it is.

Each transformed glyph is renormalised as ``app.glyphs.fit`` does (ink box's longer side to
``EM_RATIO`` of the canvas, centred), in the same single resampling, so an augmented glyph is
in the frame a served reference would be in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.glyphs import EM_RATIO


@dataclass(frozen=True)
class Restyle:
    p: float = 0.5  # share of episodes restyled; the rest keep the font as it is
    slant: float = 0.3  # shear: horizontal shift per unit of height, uniform in ±slant
    width: float = 0.25  # log of the horizontal scale, uniform in ±width
    weight: float = 0.6  # partial 3×3 dilation (>0) or erosion (<0), uniform in ±weight


def _affine(glyphs: torch.Tensor, slant: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """glyphs [B, M, H, W]; slant, width [B] → sheared, scaled and refitted glyphs."""
    b, m, h, w = glyphs.shape
    x = glyphs.reshape(b * m, 1, h, w)
    sl = slant.repeat_interleave(m)
    sx = torch.exp(width).repeat_interleave(m)
    # forward map in normalised coordinates (x right, y down): x' = sx * x - slant * y
    fwd = torch.zeros(b * m, 2, 2)
    fwd[:, 0, 0], fwd[:, 0, 1], fwd[:, 1, 1] = sx, -sl, 1.0
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    ink = x[:, 0] > 0.2
    u = fwd[:, 0, 0, None, None] * gx + fwd[:, 0, 1, None, None] * gy
    v = gy.expand_as(u)
    inf = torch.tensor(float("inf"))
    lo_u = torch.where(ink, u, inf).amin((1, 2))
    hi_u = torch.where(ink, u, -inf).amax((1, 2))
    lo_v = torch.where(ink, v, inf).amin((1, 2))
    hi_v = torch.where(ink, v, -inf).amax((1, 2))
    empty = ~ink.any(2).any(1)
    # the box's longer side (pixel edges included) to EM_RATIO of the canvas, centred
    side = torch.maximum(hi_u - lo_u + 2 / w, hi_v - lo_v + 2 / h)
    scale = torch.where(empty, torch.ones_like(side), 2 * EM_RATIO / side)
    cu = torch.where(empty, torch.zeros_like(lo_u), (lo_u + hi_u) / 2)
    cv = torch.where(empty, torch.zeros_like(lo_v), (lo_v + hi_v) / 2)
    # output p = scale * (fwd @ q - c)  ⇒  q = fwd⁻¹ (p / scale + c)
    inv = torch.linalg.inv(fwd)
    theta = torch.zeros(b * m, 2, 3)
    theta[:, :, :2] = inv / scale[:, None, None]
    theta[:, :, 2] = (inv @ torch.stack([cu, cv], 1).unsqueeze(-1)).squeeze(-1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(b, m, h, w)


def _weight(glyphs: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    b, m, h, w = glyphs.shape
    x = glyphs.reshape(b * m, 1, h, w)
    dilated = F.max_pool2d(x, 3, 1, 1)
    eroded = -F.max_pool2d(-x, 3, 1, 1)
    a = amount.repeat_interleave(m)[:, None, None, None]
    out = torch.where(a > 0, x + a * (dilated - x), x + a.abs() * (eroded - x))
    return out.reshape(b, m, h, w)


def restyle(
    glyphs: torch.Tensor, cfg: Restyle, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """glyphs [B, M, H, W] in [0, 1] (each row one episode: its references and its target) →
    restyled glyphs and the parameters drawn [B, 3] (slant, log width, weight; zero where the
    episode kept its font)."""
    b = glyphs.shape[0]
    on = (torch.rand(b, generator=generator) < cfg.p).float()
    params = (torch.rand(b, 3, generator=generator) * 2 - 1) * torch.tensor(
        [cfg.slant, cfg.width, cfg.weight]
    )
    params = params * on[:, None]
    # episodes left as they are stay byte for byte what the bank holds
    idx = torch.nonzero(on).squeeze(1)
    out = glyphs.clone()
    if idx.numel():
        p = params[idx]
        out[idx] = _weight(_affine(glyphs[idx], p[:, 0], p[:, 1]), p[:, 2]).clamp(0.0, 1.0)
    return out, params

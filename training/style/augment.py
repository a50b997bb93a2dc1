"""Synthetic styles: one random slant, width, box fill, stroke weight, stroke contrast,
smooth warp and smooth stroke pressure per training episode, applied alike to its references
and its target (never to the content glyphs).

The training fonts are a few dozen styles, so the encoder can get by naming the nearest one;
a held-out font that leans (Smiley Sans) or is narrower or heavier than every training font
is then drawn as its nearest neighbour. Drawing a continuum of variants makes the references
the only way to know how far a target leans or how heavy it is.

Box fill and stroke contrast came second (2026-12-01) and are off by default, since they
lost: a face that fills its square whatever the character's natural proportions (ZCOOL
QingKe HuangYou's geometric forms, the issue's named failure, were drawn with the content
font's proportions), and horizontals thinner or thicker than verticals (the brush and kai
hands), which a uniform weight cannot say.

``blend`` (2026-12-03, ``TrainConfig.blend``) makes styles between two training fonts: their
glyphs' signed distances interpolated, so strokes both fonts draw land between the two.

Each transformed glyph is renormalised as ``app.glyphs.fit`` does (ink box's longer side to
``EM_RATIO`` of the canvas, centred), in the same single resampling, so an augmented glyph is
in the frame a served reference would be in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from app.glyphs import EM_RATIO


@dataclass(frozen=True)
class Restyle:
    p: float = 0.5  # share of episodes restyled; the rest keep the font as it is
    slant: float = 0.3  # shear: horizontal shift per unit of height, uniform in ±slant
    width: float = 0.25  # log of the horizontal scale, uniform in ±width
    weight: float = 0.6  # partial 3×3 dilation (>0) or erosion (<0), uniform in ±weight
    # each glyph's ink box pulled towards a square: its sides scaled by (longer / side) ** fill,
    # fill uniform in [0, fill], the stretch capped at max_stretch (一 stays a line). Off: 1.0
    # lost (docs/decisions.md, "Box fill and stroke contrast did not help")
    fill: float = 0.0
    max_stretch: float = 1.6
    # partial 1×3 dilation with 3×1 erosion (>0: verticals heavier, horizontals lighter) or the
    # reverse (<0), uniform in ±contrast. Off: 0.6 lost with fill 1.0
    contrast: float = 0.0
    # a smooth displacement field, one per episode, applied to its glyphs before the slant:
    # WARP_GRID × WARP_GRID control points each moved uniformly in ±warp (normalised units, the
    # canvas spans 2), scaled by one magnitude in [0, 1], bicubic in between. Proportions and
    # stroke placement a hand keeps across characters (a wider right half, a lower centre),
    # which slant and width cannot say. Off: 0.0
    warp: float = 0.0
    # a smooth field of stroke weight, one per episode, applied after the uniform weight: the
    # same control grid's values each uniform in ±pressure, times one magnitude in [0, 1],
    # each pixel moved that far towards its 3×3 dilation (> 0) or erosion (< 0). Strokes
    # that swell and thin across the square, as a brush's pressure does, where a uniform weight
    # draws one width. Off: 0.0
    pressure: float = 0.0


def with_options(base: Restyle, text: str) -> Restyle:
    """``base`` with the options ``text`` names, ``name=value[,name=value...]`` (e.g.
    ``warp=0.1,pressure=0.8``): each a Restyle field, its value a finite number >= 0, ``p`` at
    most 1 and ``max_stretch`` at least 1. ValueError says which pair is wrong."""
    names = {f.name for f in fields(Restyle)}
    changes: dict[str, float] = {}
    for pair in text.split(","):
        name, _, value = pair.strip().partition("=")
        if name not in names:
            raise ValueError(f"{pair!r}: Restyle has no {name!r} ({', '.join(sorted(names))})")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        low, top = {"p": (0.0, 1.0), "max_stretch": (1.0, float("inf"))}.get(
            name, (0.0, float("inf"))
        )
        if not (math.isfinite(number) and low <= number <= top):
            raise ValueError(f"{pair!r}: want {name}=a number in [{low:g}, {top:g}]")
        changes[name] = number
    return replace(base, **changes)


WARP_GRID = 4


def _centres(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel centre's (y, x) in normalised coordinates (grid_sample's, align_corners=False)."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return gy, gx


def smooth_field(
    b: int, c: int, h: int, w: int, amount: float, generator: torch.Generator
) -> torch.Tensor:
    """``b`` random smooth fields [b, c, h, w]: a WARP_GRID × WARP_GRID control grid of values
    uniform in ±amount, times one magnitude drawn in [0, 1], bicubic in between."""
    points = (torch.rand(b, c, WARP_GRID, WARP_GRID, generator=generator) * 2 - 1) * amount
    points = points * torch.rand(b, 1, 1, 1, generator=generator)
    return F.interpolate(points, size=(h, w), mode="bicubic", align_corners=True)


def warp_field(b: int, h: int, w: int, amount: float, generator: torch.Generator) -> torch.Tensor:
    """``b`` random smooth displacement fields [b, h, w, 2] (x, y in normalised units)."""
    return smooth_field(b, 2, h, w, amount, generator).permute(0, 2, 3, 1)


def _warp(glyphs: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """glyphs [B, M, H, W] each sampled through its episode's field [B, H, W, 2]: the ink at
    p moves to where p − field(p) would sample it, so a positive x displacement moves ink left."""
    b, m, h, w = glyphs.shape
    gy, gx = _centres(h, w)
    grid = torch.stack([gx, gy], -1)[None] + field
    x = glyphs.reshape(b * m, 1, h, w)
    grid = grid.repeat_interleave(m, 0)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(b, m, h, w)


def _affine(
    glyphs: torch.Tensor,
    slant: torch.Tensor,
    width: torch.Tensor,
    fill: torch.Tensor | None = None,
    max_stretch: float = 1.6,
) -> torch.Tensor:
    """glyphs [B, M, H, W]; slant, width, fill [B] → sheared, scaled, box-filled and refitted
    glyphs (fill 0, the default, keeps each glyph's proportions)."""
    b, m, h, w = glyphs.shape
    x = glyphs.reshape(b * m, 1, h, w)
    sl = slant.repeat_interleave(m)
    sx = torch.exp(width).repeat_interleave(m)
    # forward map in normalised coordinates (x right, y down): x' = sx * x - slant * y
    fwd = torch.zeros(b * m, 2, 2)
    fwd[:, 0, 0], fwd[:, 0, 1], fwd[:, 1, 1] = sx, -sl, 1.0
    gy, gx = _centres(h, w)
    ink = x[:, 0] > 0.2
    u = fwd[:, 0, 0, None, None] * gx + fwd[:, 0, 1, None, None] * gy
    v = gy.expand_as(u)
    inf = torch.tensor(float("inf"))
    lo_u = torch.where(ink, u, inf).amin((1, 2))
    hi_u = torch.where(ink, u, -inf).amax((1, 2))
    lo_v = torch.where(ink, v, inf).amin((1, 2))
    hi_v = torch.where(ink, v, -inf).amax((1, 2))
    empty = ~ink.any(2).any(1)
    if fill is not None:
        # scale each axis about the origin towards a square box: extents scale with it
        span_u, span_v = hi_u - lo_u + 2 / w, hi_v - lo_v + 2 / h
        longer = torch.maximum(span_u, span_v)
        f = fill.repeat_interleave(m)
        su = torch.where(empty, 1.0, (longer / span_u) ** f).clamp(max=max_stretch)
        sv = torch.where(empty, 1.0, (longer / span_v) ** f).clamp(max=max_stretch)
        fwd = torch.stack([su, sv], 1)[:, :, None] * fwd
        lo_u, hi_u, lo_v, hi_v = lo_u * su, hi_u * su, lo_v * sv, hi_v * sv
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


def _partial(
    x: torch.Tensor, kernel: tuple[int, int], amount: torch.Tensor, grow: bool
) -> torch.Tensor:
    """x [N, 1, H, W] moved by ``amount`` (in [0, 1], broadcast per glyph) towards its
    dilation (``grow``) or erosion by a ``kernel`` box."""
    pad = (kernel[0] // 2, kernel[1] // 2)
    pooled = F.max_pool2d(x, kernel, 1, pad) if grow else -F.max_pool2d(-x, kernel, 1, pad)
    return x + amount * (pooled - x)


def stroke_weight(glyphs: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """glyphs [B, M, H, W], each row moved by its ``amount`` ([B], or [B, H, W] pixel by pixel)
    towards its 3×3 dilation (> 0) or erosion (< 0): the restyle's stroke weight and pressure."""
    b, m, h, w = glyphs.shape
    x = glyphs.reshape(b * m, 1, h, w)
    a = amount.reshape(b, 1, h, w) if amount.dim() == 3 else amount.reshape(b, 1, 1, 1)
    a = a.repeat_interleave(m, 0)
    out = torch.where(a > 0, _partial(x, (3, 3), a, True), _partial(x, (3, 3), a.abs(), False))
    return out.reshape(b, m, h, w)


def _contrast(glyphs: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """amount > 0 widens vertical strokes (a partial 1×3 dilation) and thins horizontal ones
    (a partial 3×1 erosion); amount < 0 does the reverse."""
    b, m, h, w = glyphs.shape
    x = glyphs.reshape(b * m, 1, h, w)
    a = amount.repeat_interleave(m)[:, None, None, None]
    grow, shrink = ((1, 3), (3, 1)), ((3, 1), (1, 3))  # (dilate, erode) kernels for a > 0, a < 0
    out = x
    for sign, (dk, ek) in zip((1.0, -1.0), (grow, shrink), strict=True):
        s = (a * sign).clamp(min=0.0)
        out = _partial(_partial(out, dk, s, True), ek, s, False)
    return out.reshape(b, m, h, w)


def restyle(
    glyphs: torch.Tensor, cfg: Restyle, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """glyphs [B, M, H, W] in [0, 1] (each row one episode: its references and its target) →
    restyled glyphs and the parameters drawn [B, 5] (slant, log width, weight, fill, contrast;
    zero where the episode kept its font)."""
    b = glyphs.shape[0]
    on = (torch.rand(b, generator=generator) < cfg.p).float()
    params = (torch.rand(b, 3, generator=generator) * 2 - 1) * torch.tensor(
        [cfg.slant, cfg.width, cfg.weight]
    )
    more = torch.zeros(b, 2)
    if cfg.fill or cfg.contrast:  # drawn only when on, so the defaults keep the old stream
        u = torch.rand(b, 2, generator=generator)
        more = torch.stack([u[:, 0] * cfg.fill, (u[:, 1] * 2 - 1) * cfg.contrast], 1)
    params = torch.cat([params, more], 1) * on[:, None]
    # episodes left as they are stay byte for byte what the bank holds
    idx = torch.nonzero(on).squeeze(1)
    out = glyphs.clone()
    if idx.numel():
        p = params[idx]
        # an option that is off costs nothing: the steps it adds are skipped, not run at zero
        fill = p[:, 3] if cfg.fill else None
        source = glyphs[idx]
        _, _, h, w = source.shape
        if cfg.warp:  # drawn only when on, so the default keeps the old stream
            source = _warp(source, warp_field(len(idx), h, w, cfg.warp, generator))
        styled = stroke_weight(_affine(source, p[:, 0], p[:, 1], fill, cfg.max_stretch), p[:, 2])
        if cfg.pressure:  # drawn only when on, after the warp's field
            field = smooth_field(len(idx), 1, h, w, cfg.pressure, generator)[:, 0]
            styled = stroke_weight(styled, field)
        if cfg.contrast:
            styled = _contrast(styled, p[:, 4])
        out[idx] = styled.clamp(0.0, 1.0)
    return out, params


def signed_distance(glyph: np.ndarray) -> np.ndarray:
    """glyph [H, W] in [0, 1] → its signed distance to the ink's edge in pixels (> 0 inside),
    the edge pixels' own coverage kept: ``np.clip(d + 0.5, 0, 1)`` gives the glyph back."""
    ink = glyph >= 0.5
    inside = ndimage.distance_transform_edt(ink) - 1.0
    outside = 1.0 - ndimage.distance_transform_edt(~ink)
    return np.asarray(np.where(ink, inside, outside) + (glyph - 0.5), np.float64)


def blend(a: np.ndarray, b: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Glyphs of the same characters in two fonts, a and b [M, H, W] in [0, 1], and a weight →
    the glyphs of a style between the two: their signed distances interpolated (w of a's), so a
    stroke that both draw lands between its two places at a weight between theirs (an average
    of the pixels would draw both, faint); and how much of the ink each keeps, its ink over
    the two fonts' ink interpolated alike. Where the fonts put a thin stroke apart, the
    interpolation loses it (kept well under 1), a break neither style draws:
    ``training.style.train.Episodes`` writes blended episodes from characters that keep it."""
    d = np.stack(
        [w * signed_distance(x) + (1 - w) * signed_distance(y) for x, y in zip(a, b, strict=True)]
    )
    mixed = np.clip(d + 0.5, 0.0, 1.0)
    expected = w * a.sum((1, 2)) + (1 - w) * b.sum((1, 2))
    return mixed, mixed.sum((1, 2)) / np.maximum(expected, 1e-6)


def refit(glyphs: torch.Tensor) -> torch.Tensor:
    """glyphs [B, M, H, W] → each refitted to the served frame (``app.glyphs.fit``'s: ink box's
    longer side to ``EM_RATIO`` of the canvas, centred), as a restyled glyph is."""
    zero = torch.zeros(len(glyphs))
    return _affine(glyphs, zero, zero).clamp(0.0, 1.0)

"""The style-transfer networks.

* ``StyleEncoder``: each reference glyph, paired with its character's content glyphs (the N
  content fonts, ``training.data.fonts.CONTENTS``), goes through a small CNN; the
  per-reference codes are averaged over k (so one model serves 1–16 references) into a
  Gaussian style latent (mean, log-variance), regularised like a VAE.
* ``Generator``: a U-Net over the target's content glyphs; the style code and SA-VAE's
  structural code (IDS layout + component bag) modulate every scale with FiLM, and the style
  picks the mix of content fonts the output starts from. With ``warp`` (off: it did not help,
  docs/decisions.md) it also moves the content glyphs: an affine map and a displacement field.
  With ``match`` (off by default) it also reads the references locally: each 16 px position of
  the target looks up the reference positions whose content glyphs look like its own and reads
  how the references draw them there (``MatchAttend``); with ``slots`` the references'
  positions are first pooled into that many slots by content, so the style vector has a fixed
  width and the graphs export.

Both export to ONNX as separate graphs: the encoder runs once per request (or never, for a
saved style), the generator batches target rows across requests.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1),
        nn.GroupNorm(math.gcd(8, cout), cout),
        nn.SiLU(),
    )


class ContentKeys(nn.Module):
    """Content glyphs [T, N, H, W] → features [T, dim, H/4, W/4] that say which stroke or
    component each 16 px position (64 px input) shows: the key a target position and a
    reference position are matched by. One instance is shared by the encoder (the references'
    content glyphs) and the generator (the target's), so both sides match in the same space."""

    def __init__(self, n_content: int, width: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            block(n_content, width, 2),
            block(width, width, 2),
            block(width, width),
            nn.Conv2d(width, dim, 1),
        )

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        return self.net(content)


class StyleEncoder(nn.Module):
    """Global style: the per-reference codes averaged over K into a Gaussian latent. With
    ``tokens`` > 0 it also writes local style: ``tokens`` learned queries attend over every
    position of every reference's 8 px feature map (each position knows its content glyph, an
    input here), so a token can hold how this hand draws one kind of stroke or component.
    The style vector is then [global (dim) | tokens × token_dim], still one flat vector. With a
    shared ``ContentKeys`` (``match``) it instead appends a memory of every reference's 16 px
    positions, each its content key and its value (what the reference draws there): [global |
    K · 256 × 2 · key_dim], so its length grows with K. With ``slots`` > 0 that memory is
    pooled to a fixed size (``pool_memory``): [global | slots × (2 · key_dim + 1)], whatever K."""

    def __init__(
        self,
        dim: int = 128,
        width: int = 32,
        n_content: int = 1,
        tokens: int = 0,
        token_dim: int = 64,
        keys: ContentKeys | None = None,
        key_dim: int = 32,
        slots: int = 0,
    ) -> None:
        super().__init__()
        if slots and keys is None:
            raise ValueError("slots pool the content-matched memory: they want match")
        if tokens and keys is not None:
            raise ValueError("tokens and match are two kinds of local style: one at a time")
        w = width
        self.net = nn.Sequential(
            block(1 + n_content, w, 2),  # 32
            block(w, 2 * w, 2),  # 16
            block(2 * w, 2 * w),
            block(2 * w, 4 * w, 2),  # 8
            block(4 * w, 4 * w),
            block(4 * w, 6 * w, 2),  # 4
        )
        self.head = nn.Linear(6 * w, 2 * dim)
        self.global_dim = dim
        self.tokens = tokens
        self.token_dim = token_dim
        # the style vector's width: the global code, then the tokens or the pooled memory (an
        # unpooled memory's length is K's, not a width)
        self.dim = dim + tokens * token_dim + slots * (2 * key_dim + 1)
        if tokens:
            self.queries = nn.Parameter(torch.randn(tokens, token_dim) * 0.5)
            self.pos = nn.Parameter(torch.zeros(1, 4 * w, 8, 8))
            self.kv = nn.Linear(4 * w, 2 * token_dim)
            self.proj = nn.Linear(token_dim, token_dim)
        self.keys = keys
        self.key_dim = key_dim
        self.slots = slots
        if keys is not None:
            self.values = nn.Conv2d(2 * w, key_dim, 1)  # from the 16 px features
        if slots:
            # the prototypes reference positions are assigned to, in the content-key space
            self.prototypes = nn.Parameter(torch.randn(slots, key_dim))

    def pool_memory(self, memory: torch.Tensor) -> torch.Tensor:
        """[B, P, 2d] reference positions (content key, value) → [B, slots, 2d + 1]: each
        position shares itself among the prototypes by a softmax over its key's match with them;
        each slot holds its share-weighted mean key and value and the log of its share of the
        P positions. A read that adds that log to its match with the mean key approximates a
        read over every position (a cluster of n alike positions weighs as n of them), and the
        shares, divided by P, do not depend on K or the references' order."""
        keys = memory[..., : self.key_dim]
        share = torch.softmax(keys @ self.prototypes.t() * self.key_dim**-0.5, dim=2)  # [B, P, S]
        mass = share.sum(1)  # [B, S]
        means = (share.transpose(1, 2) @ memory) / (mass.unsqueeze(2) + 1e-6)
        log_share = torch.log(mass / memory.shape[1] + 1e-6).unsqueeze(2)
        return torch.cat([means, log_share.to(means.dtype)], 2)

    def forward(
        self, refs: torch.Tensor, ref_content: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """refs [B, K, H, W], ref_content [B, K, N, H, W] → the style vector [B, D] (the
        global latent's mean, then the tokens) and the global latent's log-variance
        [B, global_dim], pooled over K. Only the global part is sampled and KL-regularised."""
        b, k, h, w = refs.shape
        x = torch.cat([refs.unsqueeze(2), ref_content], dim=2).reshape(b * k, -1, h, w)
        if self.keys is not None:
            at16 = self.net[:3](x)  # 16 px
            fmap = self.net[3:-1](at16)
        else:
            fmap = self.net[:-1](x)  # 8 px
        feats = self.net[-1](fmap).mean(dim=(2, 3))
        stats = self.head(feats).reshape(b, k, 2 * self.global_dim).mean(dim=1)
        mu, logvar = stats.chunk(2, dim=1)
        logvar = logvar.clamp(-8.0, 4.0)
        if self.keys is not None:
            keys = self.keys(ref_content.reshape(b * k, -1, h, w))  # [B·K, key_dim, 16, 16]
            memory = torch.cat([keys, self.values(at16)], 1).reshape(b, k, 2 * self.key_dim, -1)
            memory = memory.permute(0, 1, 3, 2).reshape(b, -1, 2 * self.key_dim)  # [B, K·256, 2d]
            if self.slots:
                memory = self.pool_memory(memory)
            return torch.cat([mu, memory.reshape(b, -1)], 1), logvar
        if not self.tokens:
            return mu, logvar
        pos = self.pos  # learned at 8 × 8 (64 px input); resampled for other sizes
        if pos.shape[-2:] != fmap.shape[-2:]:
            pos = nn.functional.interpolate(pos, size=fmap.shape[-2:], mode="bilinear")
        fmap = fmap + pos
        c = fmap.shape[1]
        keys, values = self.kv(
            fmap.reshape(b, k, c, -1).permute(0, 1, 3, 2).reshape(b, -1, c)
        ).chunk(2, dim=2)  # [B, K·64, token_dim] each
        att = torch.softmax(self.queries @ keys.transpose(1, 2) / self.token_dim**0.5, dim=2)
        tokens = self.proj(att @ values).reshape(b, -1)  # [B, tokens·token_dim]
        return torch.cat([mu, tokens], 1), logvar


class FiLM(nn.Module):
    def __init__(self, cond: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(c).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * (1.0 + gamma) + beta


class Stage(nn.Module):
    """Two convolutions, each followed by GroupNorm, FiLM and SiLU."""

    def __init__(self, cin: int, cout: int, cond: int, stride: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.n1 = nn.GroupNorm(8, cout)
        self.f1 = FiLM(cond, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.n2 = nn.GroupNorm(8, cout)
        self.f2 = FiLM(cond, cout)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.act(self.f1(self.n1(self.c1(x)), c))
        return self.act(self.f2(self.n2(self.c2(x)), c))


class CrossAttend(nn.Module):
    """Each position of a feature map reads the style tokens it matches (one head), added
    back through a zero-initialised projection so training starts from the global-only net."""

    def __init__(self, channels: int, token_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.q = nn.Conv2d(channels, token_dim, 1)
        self.k = nn.Linear(token_dim, token_dim)
        self.v = nn.Linear(token_dim, token_dim)
        self.out = nn.Conv2d(token_dim, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.scale = token_dim**-0.5

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """x [T, C, H, W], tokens [T, M, token_dim]."""
        t, _, h, w = x.shape
        q = self.q(self.norm(x)).flatten(2).transpose(1, 2)  # [T, HW, d]
        att = torch.softmax(q @ self.k(tokens).transpose(1, 2) * self.scale, dim=2)
        read = (att @ self.v(tokens)).transpose(1, 2).reshape(t, -1, h, w)
        return x + self.out(read)


class MatchAttend(nn.Module):
    """Each position of a feature map reads the reference positions whose content key matches
    its own (one head; a learned null slot for positions no reference resembles), added back
    through a zero-initialised projection so training starts from the global-only net. The
    query is the target's content key plus, from a zero start, the map's own features."""

    def __init__(self, channels: int, key_dim: int, pooled: bool = False) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.q = nn.Conv2d(channels, key_dim, 1)
        nn.init.zeros_(self.q.weight)
        nn.init.zeros_(self.q.bias)
        # pooled memory rows end in their slot's log share, a bias on the match
        self.pooled = pooled
        self.null = nn.Parameter(torch.zeros(1, 1, 2 * key_dim + int(pooled)))
        self.v = nn.Linear(key_dim, key_dim)
        self.out = nn.Conv2d(key_dim, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.key_dim = key_dim

    def forward(self, x: torch.Tensor, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x [T, C, H, W], query [T, key_dim, H, W] (the target's content keys), memory
        [T, M, 2 · key_dim] (keys, then values; pooled: then each slot's log share)."""
        t, _, h, w = x.shape
        q = (query + self.q(self.norm(x))).flatten(2).transpose(1, 2)  # [T, HW, d]
        memory = torch.cat([self.null.expand(t, 1, -1).to(memory.dtype), memory], 1)
        d = self.key_dim
        keys, values = memory[..., :d], memory[..., d : 2 * d]
        logits = q @ keys.transpose(1, 2) * d**-0.5
        if self.pooled:
            logits = logits + memory[..., 2 * d].unsqueeze(1)
        att = torch.softmax(logits, dim=2)
        read = self.v(att @ values).transpose(1, 2).reshape(t, -1, h, w)
        return x + self.out(read)


class Generator(nn.Module):
    """U-Net whose expensive work runs at half resolution: a light stem and head at full
    resolution keep stroke edges aligned with the content glyph."""

    # the warp heads' reach (tanh-bounded, grid units): the affine terms' change from the
    # identity, and the displacement field (0.25 = 1/8 of the glyph)
    AFFINE_RANGE = 0.5
    FLOW_RANGE = 0.25

    def __init__(
        self,
        style_dim: int = 128,
        struct_dim: int = 269,
        widths: tuple[int, ...] = (16, 32, 64, 128, 192),
        n_content: int = 1,
        tokens: int = 0,
        token_dim: int = 64,
        warp: bool = False,
        keys: ContentKeys | None = None,
        key_dim: int = 32,
        slots: int = 0,
    ) -> None:
        super().__init__()
        cond = 256
        self.style_dim = style_dim  # the global part of the style vector; tokens follow it
        self.tokens = tokens
        self.token_dim = token_dim
        self.cond = nn.Sequential(nn.Linear(style_dim + 64, cond), nn.SiLU(), nn.Linear(cond, cond))
        self.struct = nn.Linear(struct_dim, 64)
        # the style's weights over the content fonts for the residual below (the primary first)
        self.mix = nn.Linear(cond, n_content)
        nn.init.zeros_(self.mix.weight)
        with torch.no_grad():
            self.mix.bias.copy_(torch.tensor([2.0] + [0.0] * (n_content - 1)))
        w = widths
        self.stem = nn.Sequential(nn.Conv2d(n_content, w[0], 3, 1, 1), nn.SiLU())
        self.down = nn.ModuleList([Stage(w[i - 1], w[i], cond, stride=2) for i in range(1, len(w))])
        self.up = nn.ModuleList(
            [Stage(w[i] + w[i - 1], w[i - 1], cond) for i in range(len(w) - 1, 0, -1)]
        )
        self.out = nn.Conv2d(w[0], 1, 3, 1, 1)
        # geometry: the style moves the content glyphs instead of redrawing them. An affine map
        # of the content input (slant, width, offset) from the condition, and a displacement
        # field for the content residual from the up path's 16 px features (64 px input);
        # both start at the identity (zero-initialised heads).
        self.warp = warp
        if warp:
            self.affine = nn.Linear(cond, 6)
            self.flow = nn.Conv2d(w[2], 2, 3, 1, 1)
            for head in (self.affine, self.flow):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        # local style read at 16 and 8 px, on the way down and on the way up
        self.read_down = nn.ModuleDict()
        self.read_up = nn.ModuleDict()
        if tokens:
            for i in (1, 2):  # down stages 1, 2 end at 16 and 8 px (64 px input)
                self.read_down[str(i)] = CrossAttend(w[i + 1], token_dim)
            for j, i in enumerate(range(len(w) - 1, 0, -1)):
                if i - 1 in (2, 3):  # up stages ending at 16 and 8 px
                    self.read_up[str(j)] = CrossAttend(w[i - 1], token_dim)
        # content-matched reads at 16 px, down and up
        self.keys = keys
        self.key_dim = key_dim
        self.row = 2 * key_dim + int(slots > 0)  # a memory row: key, value (, log share)
        self.match_down = nn.ModuleDict()
        self.match_up = nn.ModuleDict()
        if keys is not None:
            self.match_down["1"] = MatchAttend(w[2], key_dim, pooled=slots > 0)
            self.match_up["1"] = MatchAttend(w[2], key_dim, pooled=slots > 0)

    @staticmethod
    def _local(
        reads: nn.ModuleDict,
        matches: nn.ModuleDict,
        stage: str,
        x: torch.Tensor,
        tokens: torch.Tensor,
        query: torch.Tensor | None,
        memory: torch.Tensor | None,
    ) -> torch.Tensor:
        """A stage's local style reads, if it has any: the tokens, the matched references."""
        if stage in reads:
            x = reads[stage](x, tokens)
        if stage in matches:
            x = matches[stage](x, query, memory)
        return x

    def forward(
        self, content: torch.Tensor, struct: torch.Tensor, style: torch.Tensor
    ) -> torch.Tensor:
        """content [T, N, H, W], struct [T, S], style [T, D] → glyphs [T, H, W] in [0, 1]."""
        tokens = style  # unread without tokens: that graph stays as before they existed
        if self.tokens:
            tokens = style[:, self.style_dim :].reshape(style.shape[0], -1, self.token_dim)
            style = style[:, : self.style_dim]
        query = memory = None
        if self.keys is not None:
            memory = style[:, self.style_dim :].reshape(style.shape[0], -1, self.row)
            style = style[:, : self.style_dim]
            query = self.keys(content)
        c = self.cond(torch.cat([style, self.struct(struct)], dim=1))
        flow = None
        if self.warp:
            eye = torch.eye(2, 3, device=content.device)
            theta = eye + self.AFFINE_RANGE * torch.tanh(self.affine(c)).reshape(-1, 2, 3)
            grid = nn.functional.affine_grid(theta, list(content.shape), align_corners=False)
            content = nn.functional.grid_sample(content, grid, align_corners=False)
        x = self.stem(content)
        skips = [x]
        for i, stage in enumerate(self.down):
            x = stage(x, c)
            x = self._local(self.read_down, self.match_down, str(i), x, tokens, query, memory)
            skips.append(x)
        skips.pop()
        for j, stage in enumerate(self.up):
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            x = stage(torch.cat([x, skips.pop()], dim=1), c)
            x = self._local(self.read_up, self.match_up, str(j), x, tokens, query, memory)
            if self.warp and j == 1:  # 16 px
                flow = self.FLOW_RANGE * torch.tanh(self.flow(x))
        # a residual on the content glyphs' logit keeps structure from the first step
        if flow is not None:
            shift = nn.functional.interpolate(flow, size=content.shape[-2:], mode="bilinear")
            ident = eye.expand(content.shape[0], 2, 3)
            grid = nn.functional.affine_grid(ident, list(content.shape), align_corners=False)
            content = nn.functional.grid_sample(
                content, grid + shift.permute(0, 2, 3, 1), align_corners=False
            )
        mix = torch.softmax(self.mix(c), dim=1).unsqueeze(-1).unsqueeze(-1)
        logit = self.out(x).squeeze(1) + 4.0 * ((mix * content).sum(1) - 0.5)
        return torch.sigmoid(logit)


class StyleTransfer(nn.Module):
    def __init__(
        self,
        style_dim: int = 128,
        struct_dim: int = 269,
        width: int = 32,
        n_content: int = 1,
        tokens: int = 0,
        warp: bool = False,
        match: int = 0,
        slots: int = 0,
    ) -> None:
        super().__init__()
        # one module in both networks (each graph exports its own copy of the weights)
        keys = ContentKeys(n_content, width, match) if match else None
        self.encoder = StyleEncoder(
            style_dim, 3 * width // 4, n_content, tokens, keys=keys, key_dim=match, slots=slots
        )
        widths = (width // 2, width, 2 * width, 4 * width, 6 * width)
        self.generator = Generator(
            style_dim,
            struct_dim,
            widths,
            n_content,
            tokens,
            warp=warp,
            keys=keys,
            key_dim=match,
            slots=slots,
        )
        self.n_content = n_content

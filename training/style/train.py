"""Training loop: episodes of (font, k references, one target) drawn from the glyph bank's
training fonts and training characters only. Fonts are drawn group first (uniform over the
near-duplicate groups, then over the group's fonts), so Noto's 14 weights weigh as two
styles, not fourteen. Half the episodes then restyle their font (a slant, width and stroke
weight of their own, ``training.style.augment``) before the step sees them. With
``TrainConfig.focus`` the groups are drawn by how badly the network fits them instead
(``Episodes.observe``); with ``TrainConfig.blend`` that share of episodes is written in a style
between its font and one of its group's nearest (``augment.blend``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full
from typing import Any

import numpy as np
import torch

from training.data.bank import GlyphBank, font_distances
from training.style.augment import Restyle, blend, refit, restyle
from training.style.losses import glyph_loss, ssim_per_glyph
from training.style.model import StyleTransfer


@dataclass
class TrainConfig:
    # 4,464 s on 2 cores on 2026-12-02 (0.45 s a step at width 48 in bfloat16; that day's
    # machine ran width 32 in float32 at 0.46 s, earlier ones at 0.76-0.93 s)
    steps: int = 10000
    batch: int = 32
    lr: float = 2e-3
    k_max: int = 8
    # 1e-3 held the style code to ~8 nats and the outputs barely changed with k (v1's card)
    kl_weight: float = 1e-5
    # 48 since 2026-12-02 (32 before; docs/decisions.md, "A wider generator in bfloat16")
    width: int = 48
    style_dim: int = 128
    # local style tokens (model.StyleEncoder); 0 = the global code alone. 16 tokens trained
    # and lost on 2026-12-01 (docs/decisions.md, "Local style tokens did not help")
    tokens: int = 0
    # learned geometry (model.Generator's affine map and displacement field); trained and
    # washed out on 2026-12-02 (docs/decisions.md, "Learned warps of the content glyph ...")
    warp: bool = False
    # content-matched local style (model.MatchAttend): the key width of each 16 px position's
    # match between the target and the references (0 = off, the shipped run). The style vector
    # then grows with k, so the serving graphs do not take it: a training screen
    match: int = 0
    # with match, the references' positions pooled by content key into this many slots
    # (model.StyleEncoder.pool_memory): a fixed-width style vector, which exports (0 = every
    # position kept, the screen of 2026-12-05)
    match_slots: int = 0
    # the networks' forward pass under bfloat16 autocast (losses, weights and optimiser stay
    # float32): 1.6x faster steps on a CPU with AMX; the exported graphs are float32. The job
    # turns it off where the device has no native bfloat16 kernels (``native_bf16``)
    bf16: bool = True
    seed: int = 0
    # groups drawn in proportion to (their recent 1 - SSIM) ** focus instead of uniformly:
    # more steps for the styles the network fits worst (0 = uniform, the shipped run)
    focus: float = 0.0
    # share of episodes whose font is blended with a training font of another group (signed
    # distances interpolated, augment.blend): styles between the training fonts (0 = none)
    blend: float = 0.0
    # synthetic styles (slant, width, stroke weight) for half the episodes: see augment.py
    restyle: Restyle | None = field(default_factory=Restyle)
    # episodes drawn by this many worker processes, each its own stream (seed + 1000 * (i + 1)),
    # while the device steps; 0 = drawn in the training process between steps, the shipped
    # run's stream. A GPU steps faster than one core draws a batch (docs/decisions.md, "A run
    # on a lent GPU"). Not with focus, which feeds the step's fit back into the draws
    loaders: int = 0
    # the weights the cycle ends with are an exponential moving average of its steps' weights
    # with this decay (Polyak averaging; 0 = the last step's weights, the shipped run's)
    ema: float = 0.0
    # SSIM at 1.0 since 2026-12-01 (0.5 before): no change beyond noise (docs/decisions.md)
    weights: dict[str, float] = field(
        default_factory=lambda: {"l1": 1.0, "ink_l1": 1.0, "profile": 1.0, "ssim": 1.0}
    )
    log_every: int = 50


def native_bf16(device: str) -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively: a CUDA GPU that supports it, or a
    CPU for which oneDNN has bfloat16 kernels (AVX-512 or AMX; torch's own test). Elsewhere
    autocast is far slower than float32: on 2026-12-02 an AMD EPYC with AVX2 alone ran a
    width-48 step in 31 s under bfloat16 against 2.05 s in float32 (``bench.style_train``)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def default_bf16(device: str) -> bool:
    """``TrainConfig.bf16`` where ``device`` runs bfloat16 natively, float32 elsewhere: what the
    job and the evaluate tools train in unless told otherwise."""
    return TrainConfig.bf16 and native_bf16(device)


# the nearest groups a blended episode's partner font is drawn from (Episodes.neighbours)
BLEND_NEIGHBOURS = 6
# a blended episode's characters are drawn from this many times its need, those whose blend
# keeps at least BLEND_KEEP of its ink first (augment.blend)
BLEND_CANDIDATES = 3
BLEND_KEEP = 0.85


def unit(a: np.ndarray) -> torch.Tensor:
    """uint8 glyphs (255 = full ink) as float32 on [0, 1]."""
    return torch.from_numpy(a.astype(np.float32) / 255.0)


class Episodes:
    """Batches of (refs, ref_content, target, target_content, target_struct) as float tensors."""

    def __init__(
        self,
        bank: GlyphBank,
        fonts: list[int],
        chars: np.ndarray,
        seed: int,
        focus: float = 0.0,
        blend: float = 0.0,
    ) -> None:
        self.bank = bank
        self.fonts = fonts
        self.rng = np.random.default_rng(seed)
        chars_set = np.asarray(chars)
        self.per_font = {f: chars_set[bank.have[f, chars_set]] for f in fonts}
        groups: dict[str, list[int]] = {}
        for f in fonts:
            groups.setdefault(bank.groups[f], []).append(f)
        self.groups = list(groups.values())
        self.names = list(groups)
        self.group_of = {f: g for g, members in enumerate(self.groups) for f in members}
        self.focus = focus
        # blending wants a second group to blend with
        self.blend = blend if len(self.groups) > 1 else 0.0
        self.near = self.neighbours(chars_set) if self.blend else []
        # each group's running 1 - SSIM (nan until its first episode) and the last batch's groups
        self.misfit = np.full(len(self.groups), np.nan)
        self.picked = np.zeros(0, np.int64)

    def neighbours(self, chars: np.ndarray, n: int = BLEND_NEIGHBOURS) -> list[np.ndarray]:
        """Each group's ``n`` nearest other groups, by the mean L1 of their first fonts' glyphs
        over up to 200 characters both draw: the partners its blends are drawn from. Distant
        fonts place their strokes apart, and their signed distances, interpolated, break
        strokes that neither style breaks."""
        first = np.array([members[0] for members in self.groups])
        dist = font_distances(self.bank, first, chars[:200])
        return [np.argsort(row, kind="stable")[: min(n, len(row) - 1)] for row in dist]

    def chances(self) -> np.ndarray | None:
        """Each group's chance of being drawn: None (uniform) without focus, else in proportion
        to its running misfit ** focus, a group not yet seen at the mean of those seen."""
        if not self.focus:
            return None
        seen = ~np.isnan(self.misfit)
        known = np.where(seen, self.misfit, self.misfit[seen].mean() if seen.any() else 1.0)
        w = np.maximum(known, 1e-3) ** self.focus
        return np.asarray(w / w.sum())

    def observe(self, misfit: np.ndarray, decay: float = 0.95) -> None:
        """The last batch's per-episode 1 - SSIM, folded into its groups' running misfit."""
        for g in np.unique(self.picked):
            m = float(misfit[self.picked == g].mean())
            old = self.misfit[g]
            self.misfit[g] = m if np.isnan(old) else decay * old + (1 - decay) * m

    def sample(self, batch: int, k: int) -> tuple[torch.Tensor, ...]:
        b = self.bank
        p = self.chances()
        if p is None:  # the shipped run's draws, call for call
            picked = self.rng.integers(len(self.groups), size=batch)
        else:
            picked = self.rng.choice(len(self.groups), size=batch, p=p)
        self.picked = picked
        fonts = np.array([self.rng.choice(self.groups[g]) for g in picked], np.int64)
        # a partner font of another group and a weight per blended episode (none drawn, and so
        # the stream unchanged, without blend)
        partners = np.full(batch, -1, np.int64)
        weights = np.ones(batch)
        if self.blend:
            for e in np.flatnonzero(self.rng.random(batch) < self.blend):
                other = self.rng.choice(self.near[self.group_of[int(fonts[e])]])
                partners[e] = self.rng.choice(self.groups[other])
                weights[e] = self.rng.uniform(0.25, 0.75)
        targets = np.empty(batch, np.int64)
        refs = np.empty((batch, k), np.int64)
        g = b.glyphs
        mixed: dict[int, np.ndarray] = {}
        for i, f in enumerate(fonts):
            pool = self.per_font[f]
            if partners[i] < 0:
                pick = self.rng.choice(len(pool), size=k + 1, replace=False)
                targets[i], refs[i] = pool[pick[0]], pool[pick[1:]]
                continue
            pool = pool[b.have[partners[i], pool]]  # characters both fonts draw
            n = min(len(pool), BLEND_CANDIDATES * (k + 1))
            cand = pool[self.rng.choice(len(pool), size=n, replace=False)]
            glyphs, kept = blend(g[f, cand] / 255.0, g[partners[i], cand] / 255.0, weights[i])
            order = np.argsort(kept < BLEND_KEEP, kind="stable")[: k + 1]
            targets[i], refs[i] = cand[order[0]], cand[order[1:]]
            mixed[i] = glyphs[np.roll(order, -1)]  # the references, then the target
        ref_glyphs, target = unit(g[fonts[:, None], refs]), unit(g[fonts, targets])
        if mixed:
            rows = list(mixed)
            both = refit(torch.from_numpy(np.stack([mixed[i] for i in rows]).astype(np.float32)))
            ref_glyphs[rows], target[rows] = both[:, :k], both[:, k]
        return (
            ref_glyphs,
            unit(b.content[refs]),
            target,
            unit(b.content[targets]),
            torch.from_numpy(b.struct[targets]),
        )


def _draw(
    episodes: Episodes,
    cfg: TrainConfig,
    rng: np.random.Generator,
    restyle_rng: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """One step's episodes, (refs, ref_content, target, content, struct), k drawn, restyled."""
    k = int(rng.integers(1, cfg.k_max + 1))
    refs, ref_content, target, content, struct = episodes.sample(cfg.batch, k)
    if cfg.restyle is not None:
        both, _ = restyle(torch.cat([refs, target[:, None]], 1), cfg.restyle, restyle_rng)
        refs, target = both[:, :k], both[:, k]
    return refs, ref_content, target, content, struct


def _loader(bank: GlyphBank, cfg: TrainConfig, worker: int, queue: Any, stop: Any) -> None:
    """A worker process's stream of draws (TrainConfig.loaders), until ``stop`` is set."""
    torch.set_num_threads(1)
    seed = cfg.seed + 1000 * (worker + 1)
    episodes = Episodes(bank, bank.font_index("train"), bank.train_chars, seed, 0.0, cfg.blend)
    rng = np.random.default_rng(seed + 1)
    restyle_rng = torch.Generator().manual_seed(seed + 2)
    while not stop.is_set():
        item = _draw(episodes, cfg, rng, restyle_rng)
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.5)
                break
            except Full:
                continue


class _Loaders:
    """``cfg.loaders`` worker processes drawing episodes into one queue (spawned: the bank
    travels to each by pickle)."""

    def __init__(self, bank: GlyphBank, cfg: TrainConfig) -> None:
        ctx = torch.multiprocessing.get_context("spawn")
        self.queue = ctx.Queue(maxsize=4 * cfg.loaders)
        self.stop = ctx.Event()
        self.procs = [
            ctx.Process(target=_loader, args=(bank, cfg, i, self.queue, self.stop), daemon=True)
            for i in range(cfg.loaders)
        ]
        for p in self.procs:
            p.start()

    def get(self) -> tuple[torch.Tensor, ...]:
        batch: tuple[torch.Tensor, ...] = self.queue.get(timeout=600)
        return batch

    def close(self) -> None:
        self.stop.set()
        # drained so each worker's queue thread can flush and exit; a draw whose worker has
        # already gone cannot be rebuilt (its shared memory went with it), and is not needed
        while any(p.is_alive() for p in self.procs):
            try:
                self.queue.get(timeout=0.1)
            except (Empty, OSError, EOFError):
                pass
        for p in self.procs:
            p.join()


def train(
    model: StyleTransfer, bank: GlyphBank, cfg: TrainConfig, log=print, device: str = "cpu"
) -> list[dict[str, float]]:
    if cfg.loaders and cfg.focus:
        raise ValueError("TrainConfig.loaders draws episodes apart from the step: not with focus")
    torch.manual_seed(cfg.seed)
    episodes = Episodes(
        bank, bank.font_index("train"), bank.train_chars, cfg.seed, cfg.focus, cfg.blend
    )
    rng = np.random.default_rng(cfg.seed + 1)
    restyle_rng = torch.Generator().manual_seed(cfg.seed + 2)
    loaders = _Loaders(bank, cfg) if cfg.loaders else None
    model.train()
    try:
        history = _steps(model, episodes, loaders, cfg, rng, restyle_rng, log, device)
    finally:
        if loaders is not None:
            loaders.close()
    if cfg.focus:
        chances = episodes.chances()
        assert chances is not None
        named = zip(episodes.names, chances, strict=True)
        log({"focus": {n: round(float(c), 4) for n, c in named}})
    model.eval()
    return history


def _steps(
    model: StyleTransfer,
    episodes: Episodes,
    loaders: _Loaders | None,
    cfg: TrainConfig,
    rng: np.random.Generator,
    restyle_rng: torch.Generator,
    log: Callable[[dict[str, float]], None],
    device: str,
) -> list[dict[str, float]]:
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))
        ),
    )
    history = []
    start = time.time()
    running: dict[str, float] = {}
    params = list(model.parameters())
    average = [p.detach().clone() for p in params] if cfg.ema else []
    for step in range(cfg.steps):
        if loaders is None:
            batch = _draw(episodes, cfg, rng, restyle_rng)
        else:
            batch = loaders.get()
        refs, ref_content, target, content, struct = (t.to(device) for t in batch)
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=cfg.bf16):
            style, logvar = model.encoder(refs, ref_content)
            style, logvar = style.float(), logvar.float()
            mu, tokens = style[:, : logvar.shape[1]], style[:, logvar.shape[1] :]
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            pred = model.generator(content, struct, torch.cat([z, tokens], 1)).float()
        loss, parts = glyph_loss(pred, target, cfg.weights)
        if cfg.focus:
            with torch.no_grad():
                episodes.observe((1.0 - ssim_per_glyph(pred, target)).cpu().numpy())
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
        total = loss + cfg.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if average:
            with torch.no_grad():  # the decay ramps up, so early weights weigh little
                decay = min(cfg.ema, (1 + step) / (10 + step))
                torch._foreach_lerp_(average, [p.detach() for p in params], 1.0 - decay)
        parts["kl"] = float(kl.detach())
        for key, v in parts.items():
            running[key] = running.get(key, 0.0) + v
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            n = cfg.log_every if (step + 1) % cfg.log_every == 0 else (step + 1) % cfg.log_every
            row = {key: round(v / n, 4) for key, v in running.items()}
            row.update(step=step + 1, seconds=round(time.time() - start, 1))
            history.append(row)
            log(row)
            running = {}
    if average:
        with torch.no_grad():
            torch._foreach_copy_(params, average)
    return history


def new_model(bank: GlyphBank, cfg: TrainConfig) -> StyleTransfer:
    """The networks ``cfg`` describes, shaped for ``bank``'s structure codes and content fonts."""
    return StyleTransfer(
        style_dim=cfg.style_dim,
        struct_dim=bank.struct.shape[1],
        width=cfg.width,
        n_content=bank.content.shape[1],
        tokens=cfg.tokens,
        warp=cfg.warp,
        match=cfg.match,
        slots=cfg.match_slots,
    )


def load_checkpoint(path: Path, bank: GlyphBank) -> StyleTransfer:
    """A checkpoint the style job cached (.cache/style/<key>.pt), as a model in eval mode, its
    width and warp heads read from the weights (the stem writes width / 2 channels)."""
    state = torch.load(path, weights_only=False)["model"]
    width = 2 * int(state["generator.stem.0.weight"].shape[0])
    match = state.get("encoder.values.weight")
    slots = state.get("encoder.prototypes")
    model = new_model(
        bank,
        TrainConfig(
            width=width,
            warp="generator.affine.weight" in state,
            match=0 if match is None else int(match.shape[0]),
            match_slots=0 if slots is None else int(slots.shape[0]),
        ),
    )
    model.load_state_dict(state)
    model.eval()
    return model

"""The adversarial pieces for 8x8 digits, shared by every GAN job here (dcgan.py; a Triple-GAN
reuses them with `num_labels`): a DCGAN generator and discriminator that optionally take a
one-hot label, the non-saturating losses, one alternating training loop that records both
players' losses per step and keeps the checkpoint with the best score, and the recalibration
of the generator's batch-norm statistics that the exported (per-row) graph relies on.

Images are [N, 1, 8, 8] in [0, 1]; the generator ends in a sigmoid."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.generative import data


def _label_maps(onehot: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """One-hot labels [N, C] as constant channels [N, C, 8, 8] (none when unconditional)."""
    if onehot is None:
        return None
    return onehot.reshape(rows, -1, 1, 1).expand(-1, -1, data.SIDE, data.SIDE)


class Generator(nn.Module):
    """z [N, z_dim] (+ one-hot label [N, C]) -> logits [N, 1, 8, 8]: a linear projection to
    2x2 feature maps, two stride-2 transposed convolutions (2 -> 4 -> 8) with batch norm and
    ReLU, and a 3x3 convolution to one channel (DCGAN's shape at 8x8)."""

    def __init__(self, z_dim: int, width: int = 64, num_labels: int = 0) -> None:
        super().__init__()
        self.z_dim, self.width, self.num_labels = z_dim, width, num_labels
        self.project = nn.Sequential(
            nn.Linear(z_dim + num_labels, 4 * width * 4, bias=False),
            nn.BatchNorm1d(4 * width * 4),
            nn.ReLU(),
        )
        self.body = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 1, 3, 1, 1),
        )

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        h = z if onehot is None else torch.cat([z, onehot], dim=-1)
        return self.body(self.project(h).reshape(-1, 4 * self.width, 2, 2))

    def images(self, z: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """Samples [N, 1, 8, 8] in [0, 1]."""
        return torch.sigmoid(self(z, onehot))


class Discriminator(nn.Module):
    """x [N, 1, 8, 8] (+ one-hot label as constant channels) -> one logit per row: a 3x3
    convolution, two stride-2 convolutions (8 -> 4 -> 2), leaky ReLU (0.2), optional dropout,
    and a linear read-out, every layer spectrally normalised (Miyato et al. 2018) so D stays
    1-Lipschitz-ish on 1,300 images. No batch norm: a row's score never depends on its batch."""

    def __init__(self, width: int = 64, num_labels: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_labels = num_labels
        sn = nn.utils.parametrizations.spectral_norm
        self.body = nn.Sequential(
            sn(nn.Conv2d(1 + num_labels, width, 3, 1, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            sn(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Flatten(),
            sn(nn.Linear(4 * width * 4, 1)),
        )

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        maps = _label_maps(onehot, len(x))
        h = x if maps is None else torch.cat([x, maps], dim=1)
        return self.body(h).reshape(-1)


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0
) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))), averaged; `real_target` < 1 is one-sided label smoothing."""
    real = F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, real_target)
    )
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z)) (Goodfellow et al. 2014, section 3)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


@dataclass(frozen=True)
class GanSchedule:
    """Adam for both players with DCGAN's betas; one discriminator step per generator step."""

    epochs: int
    batch_size: int = 64
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    real_target: float = 0.9
    ema_decay: float = 0.999  # the kept generator is this average of G's weights (0: G itself)
    eval_every: int = 10  # epochs between checkpoint scores
    seed: int = 0

    def card(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GanFit:
    """What a run did: both losses and D's mean outputs per step, (epoch, score) pairs, the
    epoch whose generator was kept (the best score, lower is better)."""

    seconds: float = 0.0
    steps: int = 0
    best_epoch: int = 0
    best_score: float = math.inf
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)  # mean D(x) on the real batch
    d_fake: list[float] = field(default_factory=list)  # mean D(G(z)) before the G step
    scores: list[tuple[int, float]] = field(default_factory=list)

    def card(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "steps": self.steps,
            "best_epoch": self.best_epoch,
            "best_score": round(self.best_score, 4),
        }


@dataclass(frozen=True)
class RealBatches:
    """The real side of the game: `rows` images, `epoch_rows(epoch)` gives that epoch's copy
    [rows, C, 8, 8] (fresh dequantisation noise, augmentation, or the same tensor each time)."""

    rows: int
    epoch_rows: Callable[[int], torch.Tensor]


@dataclass
class Players:
    """The two networks, and `average`: an exponential moving average of the generator's
    weights (its batch-norm statistics recomputed whenever it is used), the one kept."""

    generator: Generator
    discriminator: Discriminator
    average: Generator | None = None

    def kept(self) -> Generator:
        return self.generator if self.average is None else self.average


@torch.no_grad()
def update_average(players: Players, decay: float) -> None:
    if players.average is None:
        return
    for mean, current in zip(
        players.average.parameters(), players.generator.parameters(), strict=True
    ):
        mean.lerp_(current, 1.0 - decay)


def _optimisers(players: Players, schedule: GanSchedule) -> tuple[torch.optim.Adam, ...]:
    return (
        torch.optim.Adam(
            players.generator.parameters(), lr=schedule.lr_generator, betas=schedule.betas
        ),
        torch.optim.Adam(
            players.discriminator.parameters(), lr=schedule.lr_discriminator, betas=schedule.betas
        ),
    )


def _step(
    players: Players,
    optimisers: tuple[torch.optim.Adam, ...],
    real: torch.Tensor,
    schedule: GanSchedule,
    result: GanFit,
) -> None:
    """One discriminator step on (real, fresh fakes), then one generator step on new fakes."""
    g, d = players.generator, players.discriminator
    g_opt, d_opt = optimisers
    z = torch.randn(len(real), g.z_dim)
    fake = g.images(z).detach()
    real_logits, fake_logits = d(real), d(fake)
    d_loss = discriminator_loss(real_logits, fake_logits, schedule.real_target)
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = generator_loss(d(g.images(torch.randn(len(real), g.z_dim))))
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    result.d_loss.append(d_loss.item())
    result.g_loss.append(g_loss.item())
    result.d_real.append(torch.sigmoid(real_logits).mean().item())
    result.d_fake.append(torch.sigmoid(fake_logits).mean().item())
    result.steps += 1


def train(
    players: Players,
    real: RealBatches,
    schedule: GanSchedule,
    score: Callable[[Generator], float],
    desc: str = "gan",
) -> GanFit:
    """Alternating updates on minibatches of each epoch's real images (an unconditional game);
    every `eval_every` epochs `score(generator)` of the kept generator (the weight average when
    schedule.ema_decay > 0, its batch norm recalibrated; lower is better), whose best-scoring
    weights end in `players.kept()`."""
    torch.manual_seed(schedule.seed)
    order = torch.Generator().manual_seed(schedule.seed)
    optimisers = _optimisers(players, schedule)
    if schedule.ema_decay > 0:
        players.average = copy.deepcopy(players.generator).requires_grad_(False)
    result, best = GanFit(), copy.deepcopy(players.kept().state_dict())
    start = time.perf_counter()
    bar = tqdm(range(1, schedule.epochs + 1), desc=desc, leave=False)
    for epoch in bar:
        players.generator.train()
        players.discriminator.train()
        images = real.epoch_rows(epoch)
        for idx in torch.randperm(real.rows, generator=order).split(schedule.batch_size):
            if len(idx) > 1:  # batch norm needs two rows
                _step(players, optimisers, images[idx], schedule, result)
                update_average(players, schedule.ema_decay)
        if epoch % schedule.eval_every and epoch != schedule.epochs:
            continue
        value = score(_scored(players))
        result.scores.append((epoch, value))
        if value < result.best_score:
            result.best_score, result.best_epoch = value, epoch
            best = copy.deepcopy(players.kept().state_dict())
        bar.set_postfix(
            d=f"{result.d_loss[-1]:.3f}", g=f"{result.g_loss[-1]:.3f}", s=f"{value:.2f}"
        )
    players.kept().load_state_dict(best)
    players.kept().eval()
    result.seconds = time.perf_counter() - start
    return result


def _scored(players: Players) -> Generator:
    """The kept generator in eval mode; an average's batch norm first gets statistics of its
    own weights (the live generator's would not fit them)."""
    if players.average is not None:
        recalibrate(players.average, batches=10)
    return players.kept().eval()


@torch.no_grad()
def recalibrate(generator: Generator, batches: int = 50, rows: int = 256, seed: int = 0) -> None:
    """Batch-norm running statistics recomputed as exact averages over `batches` batches of
    fresh noise with the final weights: the exported graph normalises each row with these
    fixed statistics (a served sample must not depend on its batch), and the exponential
    averages kept during training lag the weights that were kept. A conditional generator
    sees the labels in equal shares."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    generator.train()
    noise = torch.Generator().manual_seed(seed)
    labels = torch.arange(rows) % max(generator.num_labels, 1)
    onehot = F.one_hot(labels, generator.num_labels).float() if generator.num_labels else None
    for _ in range(batches):
        generator(torch.randn(rows, generator.z_dim, generator=noise), onehot)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    generator.eval()


def moving_mean(values: list[float], window: int) -> np.ndarray:
    """The running mean over the last `window` values (fewer at the start)."""
    sums = np.cumsum(np.insert(np.asarray(values, np.float64), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def save_loss_plot(
    result: GanFit, steps_per_epoch: int, path: Path, title: str, score_label: str
) -> None:
    """Training stability in one figure: both players' losses per step (faint) with their
    one-epoch running means, D's mean output on real and generated batches, and the checkpoint
    score by epoch with the kept checkpoint marked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    epochs = (np.arange(result.steps) + 1) / steps_per_epoch
    for label, values, colour in (
        ("D loss", result.d_loss, "tab:blue"),
        ("G loss", result.g_loss, "tab:orange"),
    ):
        top.plot(epochs, values, color=colour, alpha=0.15, linewidth=0.5)
        top.plot(epochs, moving_mean(values, steps_per_epoch), color=colour, label=label)
    top.set_ylabel("loss (nats)")
    for label, values, colour in (
        ("D(x) real", result.d_real, "tab:green"),
        ("D(G(z)) generated", result.d_fake, "tab:red"),
    ):
        middle.plot(epochs, moving_mean(values, steps_per_epoch), color=colour, label=label)
    middle.set_ylabel("mean D output")
    middle.set_ylim(0.0, 1.0)
    marks, scores = zip(*result.scores, strict=True) if result.scores else ((), ())
    bottom.plot(marks, scores, marker=".", color="tab:purple", label="checkpoint score")
    bottom.axvline(result.best_epoch, color="grey", linestyle="--", label="kept")
    bottom.set_yscale("log")
    bottom.set_ylabel(score_label)
    bottom.set_xlabel("epoch")
    for ax in (top, middle, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    top.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

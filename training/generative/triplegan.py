"""Triple-GAN (Li, Xu, Zhu and Zhang 2017) on the 8x8 digits with 10 labels per class: a
classifier C (p_c(y | x)), a label-conditional generator G (gan.Generator with num_labels = 10)
and a discriminator D over (x, y) pairs (gan.Discriminator with num_labels = 10). The game
(paper eq. 5, with the weights of the authors' released code):

  D: -E_{(x,y) labelled} log D(x,y) - alpha E_{x unlabelled, y ~ p_c} log(1 - D(x,y))
     - (1 - alpha) E_{y ~ p(y), x = G(z,y)} log(1 - D(x,y))                  (alpha = 1/2)
  C: R_L (cross-entropy on the labelled pairs)
     + alpha_adv * alpha E_{x unlabelled} sum_y p_c(y|x) [-log D(x,y)]     (C fools D)
     + alpha_P R_P, R_P = E_{y, x = G(z,y)} [-log p_c(y|x)]  from epoch pseudo_start on
     + the released code's unlabelled terms: alpha_ent * mean entropy of p_c(y|x_u)
       - alpha_avg * entropy of the batch's mean p_c(y|x_u) (keeps the classes in use)
  G: -(1 - alpha) E log D(G(z,y), y)                      (the non-saturating form, as D's)

The expectation over y ~ p_c(y | x) is computed exactly (all ten labels per unlabelled row, the
released code's "integrate" flag) instead of the argmax approximation. Images are on the
DCGAN's scale: real rows dequantised, y = (level + u) / 17 in [0, 1), fresh every epoch.

The classifier and its training recipe are shared with the baselines (the same network on the
100 labels alone, with the entropy terms alone, and on all 1,500 labels), which run the same
number of classifier steps with the same optimiser."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.generative import data, gan

NUM_LABELS = 10
Z_DIM = 32


class Classifier(nn.Module):
    """x [N, 1, 8, 8] in [0, 1] -> logits [N, 10]: Gaussian input noise (training only), two
    3x3 convolutions (64) and a 2x2 max-pool, dropout, two 3x3 convolutions (128) and a max-pool,
    dropout, a linear read-out; leaky ReLU (0.1). No batch norm: a row's logits never depend
    on its batch, and C sees labelled, unlabelled and generated batches separately."""

    def __init__(self, width: int = 64, dropout: float = 0.5, input_noise: float = 0.15) -> None:
        super().__init__()
        self.width, self.input_noise = width, input_noise
        act = nn.LeakyReLU(0.1)
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, 1, 1),
            act,
            nn.Conv2d(width, width, 3, 1, 1),
            act,
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
            nn.Conv2d(width, 2 * width, 3, 1, 1),
            act,
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1),
            act,
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width * 4, NUM_LABELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.input_noise > 0:
            x = x + self.input_noise * torch.randn_like(x)
        return self.head(self.body(x))


@dataclass(frozen=True)
class Recipe:
    """Training settings for all three players (and the baselines' classifier)."""

    epochs: int = 120  # passes over the unlabelled rows (batch_unlabelled a step)
    batch_labelled: int = 100  # labelled rows per step (all 100 when labels = 10 per class)
    batch_unlabelled: int = 100
    batch_generated: int = 100
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.999)  # all three players, as the released code
    lr_decay_start: float = 0.6  # share of the epochs after which lr falls linearly to 0
    alpha: float = 0.5  # D's weight on C's pairs against G's
    alpha_adv: float = 0.01  # C's adversarial term (released code: alpha_cla_adversarial)
    alpha_p: float = 0.1  # R_P, the pseudo-discriminative loss on G's pairs
    pseudo_start: float = 0.33  # share of the epochs before R_P is switched on
    alpha_ent: float = 0.3  # entropy of p_c(y | x_u) (released code: alpha_unlabeled_entropy)
    alpha_avg: float = 1e-3  # entropy of the batch-mean p_c (released code: alpha_average)
    real_target: float = 0.9  # one-sided label smoothing for D's real pairs
    ema_decay: float = 0.999  # the shipped G is this average of G's weights
    classifier_width: int = 32
    gan_width: int = 32
    record_every: int = 10  # epochs between the test-accuracy points of the plot

    def card(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def smoke() -> Recipe:
        return Recipe(
            epochs=1,
            batch_labelled=20,
            batch_unlabelled=350,
            batch_generated=20,
            classifier_width=8,
            gan_width=4,
            record_every=1,
        )


@dataclass(frozen=True)
class Split:
    """The training rows cut for semi-supervised learning: labelled levels [100, 64] with
    their labels, the other training rows unlabelled (their labels are never used)."""

    x_labelled: np.ndarray
    y_labelled: np.ndarray
    x_unlabelled: np.ndarray
    labelled_index: np.ndarray  # rows of the 1,500 training digits that keep their labels


def labelled_split(digits: data.Digits, per_class: int, seed: int) -> Split:
    """`per_class` rows of each class chosen by np.random.default_rng(seed); the rest unlabelled."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(digits.y_train == c), per_class, replace=False)
                for c in range(NUM_LABELS)
            ]
        )
    )
    rest = np.setdiff1d(np.arange(len(digits.y_train)), chosen)
    return Split(digits.x_train[chosen], digits.y_train[chosen], digits.x_train[rest], chosen)


def images(levels: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
    """Levels [N, 64] as images [N, 1, 8, 8] on the [0, 1] scale: dequantised with `rng`'s
    uniform noise, or at the level's midpoint (level + 0.5) / 17 when rng is None (test)."""
    y = data.dequantise(levels, rng) if rng is not None else (levels + 0.5) / data.LEVELS
    return torch.from_numpy(np.asarray(y, np.float32)).reshape(-1, 1, data.SIDE, data.SIDE)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) per row."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


@dataclass
class Fit:
    """What a Triple-GAN run did: per-step losses, per-epoch points of the test accuracy."""

    seconds: float = 0.0
    steps: int = 0
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    c_loss: list[float] = field(default_factory=list)  # R_L alone (comparable with a baseline)
    c_adv: list[float] = field(default_factory=list)
    r_p: list[float] = field(default_factory=list)  # R_P on G's pairs (recorded before it is on)
    d_real: list[float] = field(default_factory=list)
    d_fake_g: list[float] = field(default_factory=list)
    d_fake_c: list[float] = field(default_factory=list)
    test_accuracy: list[tuple[int, float]] = field(default_factory=list)

    def card(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "steps": self.steps}


@dataclass
class Players:
    classifier: Classifier
    generator: gan.Generator
    discriminator: gan.Discriminator
    average: gan.Generator  # exponential moving average of G's weights: the one shipped


def make_players(recipe: Recipe, seed: int) -> Players:
    torch.manual_seed(seed)
    generator = gan.Generator(Z_DIM, recipe.gan_width, NUM_LABELS)
    return Players(
        Classifier(recipe.classifier_width),
        generator,
        gan.Discriminator(recipe.gan_width, NUM_LABELS),
        copy.deepcopy(generator).requires_grad_(False),
    )


def schedule_lr(recipe: Recipe, optimisers: Sequence[torch.optim.Optimizer], epoch: int) -> None:
    """Constant lr, then linear decay to 0 over the last (1 - lr_decay_start) of the epochs."""
    start = recipe.lr_decay_start * recipe.epochs
    share = 1.0 if epoch <= start else max(0.0, (recipe.epochs - epoch) / (recipe.epochs - start))
    for optimiser in optimisers:
        for group in optimiser.param_groups:
            group["lr"] = recipe.lr * share


class Batches:
    """Per-step batches: the labelled rows cycled in a fresh order, the unlabelled rows in a
    fresh permutation per epoch, both freshly dequantised each epoch."""

    def __init__(self, split: Split, recipe: Recipe, seed: int) -> None:
        self.split, self.recipe = split, recipe
        self.rng = np.random.default_rng(seed + 10)
        self.order = torch.Generator().manual_seed(seed + 11)

    def epoch(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """[(x_labelled, y_labelled, x_unlabelled)] for one pass over the unlabelled rows."""
        labelled = images(self.split.x_labelled, self.rng)
        labels = torch.from_numpy(self.split.y_labelled)
        unlabelled = images(self.split.x_unlabelled, self.rng)
        u_order = torch.randperm(len(unlabelled), generator=self.order)
        steps = []
        l_order = torch.empty(0, dtype=torch.long)
        for u in u_order.split(self.recipe.batch_unlabelled):
            if len(u) < 2:
                continue
            while len(l_order) < self.recipe.batch_labelled:
                l_order = torch.cat([l_order, torch.randperm(len(labelled), generator=self.order)])
            idx, l_order = (
                l_order[: self.recipe.batch_labelled],
                l_order[self.recipe.batch_labelled :],
            )
            steps.append((labelled[idx], labels[idx], unlabelled[u]))
        return steps


def train(
    split: Split,
    recipe: Recipe,
    seed: int,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    desc: str = "triple-gan",
) -> tuple[Players, Fit]:
    """The three-player game for recipe.epochs; `test` (levels, labels) only for the plot's
    accuracy points (nothing is chosen by it: the final weights are kept)."""
    players = make_players(recipe, seed)
    c, g, d = players.classifier, players.generator, players.discriminator
    opts = [torch.optim.Adam(m.parameters(), lr=recipe.lr, betas=recipe.betas) for m in (c, g, d)]
    c_opt, g_opt, d_opt = opts
    batches = Batches(split, recipe, seed)
    fit = Fit()
    start = time.perf_counter()
    pseudo_from = math.ceil(recipe.pseudo_start * recipe.epochs)
    for epoch in tqdm(range(1, recipe.epochs + 1), desc=desc, leave=False):
        schedule_lr(recipe, opts, epoch)
        for module in (c, g, d):
            module.train()
        for x_l, y_l, x_u in batches.epoch():
            _step(
                players, (c_opt, g_opt, d_opt), (x_l, y_l, x_u), recipe, epoch >= pseudo_from, fit
            )
            gan.update_average(gan.Players(g, d, players.average), recipe.ema_decay)
        if test is not None and (epoch % recipe.record_every == 0 or epoch == recipe.epochs):
            fit.test_accuracy.append((epoch, accuracy(c, *test)))
    c.eval()
    gan.recalibrate(players.average, seed=seed + 20)
    fit.seconds = time.perf_counter() - start
    return players, fit


def _step(
    players: Players,
    optimisers: tuple[torch.optim.Optimizer, ...],
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    recipe: Recipe,
    pseudo: bool,
    fit: Fit,
) -> None:
    """One D step, one C step, one G step (Algorithm 1 of the paper)."""
    c, g, d = players.classifier, players.generator, players.discriminator
    c_opt, g_opt, d_opt = optimisers
    x_l, y_l, x_u = batch
    alpha = recipe.alpha
    onehot_l = F.one_hot(y_l, NUM_LABELS).float()
    y_g = torch.randint(0, NUM_LABELS, (recipe.batch_generated,))
    onehot_g = F.one_hot(y_g, NUM_LABELS).float()

    # D: real labelled pairs against C's pairs (weighted by p_c) and G's pairs
    with torch.no_grad():
        y_c = torch.multinomial(torch.softmax(c(x_u), -1), 1).reshape(-1)  # y ~ p_c(y | x)
        x_g = g.images(torch.randn(len(y_g), g.z_dim), onehot_g)
    onehot_c = F.one_hot(y_c, NUM_LABELS).float()
    real = d(x_l, onehot_l)
    fake_g = d(x_g, onehot_g)
    fake_c = d(x_u, onehot_c)
    loss_real = F.binary_cross_entropy_with_logits(real, torch.full_like(real, recipe.real_target))
    loss_g = F.binary_cross_entropy_with_logits(fake_g, torch.zeros_like(fake_g))
    loss_c = F.binary_cross_entropy_with_logits(fake_c, torch.zeros_like(fake_c))
    d_loss = loss_real + (1 - alpha) * loss_g + alpha * loss_c
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()

    # C: labelled cross-entropy, fooling D on its pairs, R_P on G's pairs, unlabelled entropy
    logits_l, logits_u = c(x_l), c(x_u)
    r_l = F.cross_entropy(logits_l, y_l)
    p_u = torch.softmax(logits_u, -1)
    with torch.no_grad():
        fooled = F.softplus(-d(x_u, onehot_c))  # -log D(x, y_c), D's pairs of this step
    # Algorithm 1's one-sample estimate: -log D(x, y_c) weighted by p_c(y_c | x)
    adv = (p_u.gather(1, y_c[:, None]).reshape(-1) * fooled).mean()
    mean_p = p_u.mean(0)
    unlabelled = (
        recipe.alpha_ent * entropy(logits_u).mean()
        + recipe.alpha_avg * (mean_p * torch.log(mean_p + 1e-8)).sum()
    )
    r_p = F.cross_entropy(c(x_g), y_g)
    c_loss = r_l + recipe.alpha_adv * alpha * adv + unlabelled
    if pseudo:
        c_loss = c_loss + recipe.alpha_p * r_p
    c_opt.zero_grad()
    c_loss.backward()
    c_opt.step()

    # G: fool D on its pairs
    fake = d(g.images(torch.randn(len(y_g), g.z_dim), onehot_g), onehot_g)
    g_loss = (1 - alpha) * F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()

    fit.steps += 1
    fit.d_loss.append(d_loss.item())
    fit.g_loss.append(g_loss.item())
    fit.c_loss.append(r_l.item())
    fit.c_adv.append(adv.item())
    fit.r_p.append(r_p.item())
    fit.d_real.append(torch.sigmoid(real).mean().item())
    fit.d_fake_g.append(torch.sigmoid(fake_g).mean().item())
    fit.d_fake_c.append(torch.sigmoid(fake_c).mean().item())


@torch.no_grad()
def probabilities(classifier: Classifier, levels: np.ndarray) -> np.ndarray:
    """p_c(y | x) [N, 10] of levels rows [N, 64] (read at the level midpoints, eval mode)."""
    classifier.eval()
    return torch.softmax(classifier(images(levels, None)), -1).numpy().astype(np.float64)


def accuracy(classifier: Classifier, levels: np.ndarray, labels: np.ndarray) -> float:
    was = classifier.training
    value = float((probabilities(classifier, levels).argmax(1) == labels).mean())
    classifier.train(was)
    return value


def train_supervised(
    x: np.ndarray,
    y: np.ndarray,
    recipe: Recipe,
    steps: int,
    seed: int,
    unlabelled: np.ndarray | None = None,
    desc: str = "classifier",
) -> tuple[Classifier, list[float]]:
    """The baselines: the same classifier, optimiser and lr schedule for `steps` steps of
    recipe.batch_labelled rows of (x, y) (fresh dequantisation each pass); with `unlabelled`,
    also the two entropy terms on recipe.batch_unlabelled of those rows a step (no GAN)."""
    torch.manual_seed(seed)
    c = Classifier(recipe.classifier_width)
    opt = torch.optim.Adam(c.parameters(), lr=recipe.lr, betas=recipe.betas)
    rng = np.random.default_rng(seed + 10)
    order = torch.Generator().manual_seed(seed + 11)
    per_epoch = max(1, steps // recipe.epochs)
    losses: list[float] = []
    xs, us = images(x, rng), None
    queue = torch.empty(0, dtype=torch.long)
    ys = torch.from_numpy(y)
    c.train()
    for step in tqdm(range(steps), desc=desc, leave=False):
        if step % per_epoch == 0:
            schedule_lr(recipe, [opt], min(recipe.epochs, step // per_epoch + 1))
            xs = images(x, rng)
            us = images(unlabelled, rng) if unlabelled is not None else None
        while len(queue) < recipe.batch_labelled:
            queue = torch.cat([queue, torch.randperm(len(xs), generator=order)])
        idx, queue = queue[: recipe.batch_labelled], queue[recipe.batch_labelled :]
        loss = F.cross_entropy(c(xs[idx]), ys[idx])
        losses.append(loss.item())
        if us is not None:
            u = torch.randint(0, len(us), (recipe.batch_unlabelled,), generator=order)
            logits_u = c(us[u])
            mean_p = torch.softmax(logits_u, -1).mean(0)
            loss = loss + recipe.alpha_ent * entropy(logits_u).mean()
            loss = loss + recipe.alpha_avg * (mean_p * torch.log(mean_p + 1e-8)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return c.eval(), losses


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Test error, NLL and ECE (15 bins, as the digits-ensemble card) of probabilities [N, K]."""
    from training.bayesian import metrics

    got = metrics.classification(probs[None], labels)
    return {
        "error": round(1.0 - got["accuracy"], 4),
        "accuracy": round(got["accuracy"], 4),
        "nll": round(got["nll"], 4),
        "ece": round(got["ece"], 4),
        "brier": round(got["brier"], 4),
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Mean and sample sd over seeds of each metric, and the per-seed values."""
    out: dict[str, Any] = {"seeds": len(runs)}
    for key in runs[0]:
        values = np.array([r[key] for r in runs], np.float64)
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {
            "mean": round(float(values.mean()), 4),
            "sd": round(sd, 4),
            "runs": [round(float(v), 4) for v in values],
        }
    return out

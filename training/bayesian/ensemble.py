"""Point-estimate networks trained by Adam, P at a time (stacked weights): ensemble members,
MAP networks and MC-dropout networks. Loss per network: the mean negative log-likelihood of
a minibatch plus weight_decay·Σθ² (a Gaussian prior, per data point). Validation early
stopping: each network keeps the weights of its best validation epoch, and training stops
once no network improved for `patience` epochs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from training.bayesian import nets


@dataclass(frozen=True)
class Recipe:
    hidden: int
    epochs: int
    batch: int
    lr: float
    weight_decay: float
    patience: int
    floor: float = 0.0  # variance floor of the heteroscedastic head (standardised units)
    dropout: float = 0.0  # probability of dropping a hidden unit while training

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def loss(out: Tensor, y: Tensor, task: str, floor: float) -> Tensor:
    """Per-network mean negative log-likelihood: out [P, B, ·], y [P, B] -> [P]."""
    if task == "regression":
        mean, var = nets.hetero(out, floor)
        return nets.gaussian_nll(mean, var, y).mean(1)
    nll = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none")
    return nll.reshape(y.shape).mean(1)


def train(
    fit: tuple[Tensor, Tensor],
    valid: tuple[Tensor, Tensor],
    sizes: list[int],
    task: str,
    recipe: Recipe,
    seed: int,
    desc: str = "train",
) -> tuple[list[Tensor], dict[str, Any]]:
    """fit/valid: (x [P, n, D], y [P, n]) per network. Returns the best weights and a record
    of the stopping epochs."""
    x, y = fit
    xv, yv = valid
    p, n, _ = x.shape
    generator = torch.Generator().manual_seed(seed)
    params = [t.requires_grad_(True) for t in nets.init_mlp(p, sizes, generator)]
    best = [t.detach().clone() for t in params]
    best_loss = torch.full((p,), float("inf"))
    best_epoch = torch.zeros(p, dtype=torch.long)
    optim = torch.optim.Adam(params, lr=recipe.lr)
    rows = torch.arange(p)[:, None]
    epoch = 0
    for epoch in tqdm(range(recipe.epochs), desc=desc, leave=False):
        order = torch.argsort(torch.rand(p, n, generator=generator), dim=1)
        for start in range(0, n - recipe.batch + 1, recipe.batch):
            idx = order[:, start : start + recipe.batch]
            masks = None
            if recipe.dropout > 0:
                keep = torch.rand(p, recipe.batch, recipe.hidden, generator=generator)
                masks = [(keep >= recipe.dropout).float() / (1 - recipe.dropout)]
            out = nets.forward(params, x[rows, idx], masks)
            total = loss(out, y[rows, idx], task, recipe.floor)
            total = total + recipe.weight_decay * nets.l2(params)
            optim.zero_grad()
            total.sum().backward()
            optim.step()
        with torch.no_grad():
            current = loss(nets.forward(params, xv), yv, task, recipe.floor)
            better = current < best_loss
            best_loss = torch.where(better, current, best_loss)
            best_epoch = torch.where(better, torch.full_like(best_epoch, epoch), best_epoch)
            for b, t in zip(best, params, strict=True):
                b[better] = t[better]
        if int((epoch - best_epoch).min()) > recipe.patience:
            break
    record = {
        "epochs_run": epoch + 1,
        "best_epoch_mean": float(best_epoch.float().mean()),
        "best_epoch_range": [int(best_epoch.min()), int(best_epoch.max())],
    }
    return best, record


def as_draws(params: list[Tensor], groups: int) -> list[list[Tensor]]:
    """[P = groups·M, ...] -> per group the M networks' weights [M, ...]."""
    m = params[0].shape[0] // groups
    return [[t[g * m : (g + 1) * m] for t in params] for g in range(groups)]


def dropout_masks(draws: int, hidden: int, rate: float, seed: int) -> Tensor:
    """S fixed dropout masks [S, H] with values 0 or 1/(1 − rate)."""
    rng = np.random.default_rng(seed)
    keep = rng.random((draws, hidden)) >= rate
    return torch.as_tensor(keep / (1 - rate), dtype=torch.float32)

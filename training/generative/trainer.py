"""One training loop for every generative model here: Adam on a per-batch loss, a validation
score every few epochs, the best-scoring weights kept, early stopping by patience."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm


@dataclass(frozen=True)
class Schedule:
    max_epochs: int
    lr: float = 1e-3
    batch_size: int = 100
    eval_every: int = 10
    patience: int = 200  # epochs without a better validation score before stopping
    weight_decay: float = 0.0
    cosine: bool = False  # cosine-anneal the learning rate over max_epochs
    seed: int = 0

    def card(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fit:
    """What a run did: per-epoch mean training loss, (epoch, validation score) pairs."""

    seconds: float = 0.0
    best_epoch: int = 0
    best_score: float = -math.inf
    epochs_run: int = 0
    train_loss: list[float] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)

    def card(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
        }


def fit(
    model: nn.Module,
    schedule: Schedule,
    rows: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validate: Callable[[], float],
    desc: str,
    on_epoch: Callable[[], None] | None = None,
) -> Fit:
    """Train `model` in place; `batch_loss(indices)` gives the mean loss of a minibatch,
    `validate()` a score (higher is better), `on_epoch()` refreshes per-epoch data (noise).
    The model ends in eval mode holding the weights of its best validation score."""
    torch.manual_seed(schedule.seed)
    generator = torch.Generator().manual_seed(schedule.seed)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay
    )
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, schedule.max_epochs)
        if schedule.cosine
        else None
    )
    result, best = Fit(), copy.deepcopy(model.state_dict())
    start = time.perf_counter()
    bar = tqdm(range(1, schedule.max_epochs + 1), desc=desc, leave=False)
    for epoch in bar:
        if on_epoch is not None:
            on_epoch()
        model.train()
        total = 0.0
        for idx in torch.randperm(rows, generator=generator).split(schedule.batch_size):
            loss = batch_loss(idx)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        if scheduler is not None:
            scheduler.step()
        result.train_loss.append(total / rows)
        result.epochs_run = epoch
        if epoch % schedule.eval_every and epoch != schedule.max_epochs:
            continue
        model.eval()
        with torch.no_grad():
            score = validate()
        result.valid.append((epoch, score))
        if score > result.best_score:
            result.best_score, result.best_epoch = score, epoch
            best = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{result.train_loss[-1]:.3f}", valid=f"{score:.3f}")
        if epoch - result.best_epoch >= schedule.patience:
            break
    model.load_state_dict(best)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result

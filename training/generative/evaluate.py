"""Evaluation shared by the generative jobs: importance-sampled log p(x), an in-house digit
classifier with its penultimate features, conditional accuracy and the Fréchet distance."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.generative import data


class LatentModel(Protocol):
    num_labels: int

    def log_weights(
        self,
        x: torch.Tensor,
        k: int,
        onehot: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...


def onehot_of(labels: np.ndarray | None, num_labels: int) -> torch.Tensor | None:
    if labels is None or not num_labels:
        return None
    return F.one_hot(torch.from_numpy(labels), num_labels).float()


@torch.no_grad()
def is_log_likelihood(
    model: LatentModel,
    x: np.ndarray,
    k: int,
    labels: np.ndarray | None = None,
    chunk: int = 500,
    seed: int = 1234,
) -> np.ndarray:
    """log p(x) per image by importance sampling with q(z | x) as proposal and k draws
    (the IWAE-k estimate; k = 5,000 in the cards), computed in chunks of draws."""
    generator = torch.Generator().manual_seed(seed)  # its own stream: training's is untouched
    xs = torch.from_numpy(x)
    cs = onehot_of(labels, model.num_labels)
    parts = []
    for start in range(0, k, chunk):
        draws = model.log_weights(xs, min(chunk, k - start), cs, generator)
        parts.append(torch.logsumexp(draws, dim=0))
    return (torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)).numpy()


def bits_per_dim(log_px_nats: float) -> float:
    """-log p(x) / (64 ln 2)."""
    return -log_px_nats / (data.DIM * math.log(2))


class Classifier(nn.Module):
    """In-house digit classifier on binarised 8x8 digits, 64-128-64-10 (ReLU); its 64-d
    penultimate activations are the feature space of the Fréchet distance."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(data.DIM, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU()
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: np.ndarray) -> np.ndarray:
        return self.body(torch.from_numpy(np.asarray(x, np.float32).reshape(len(x), -1))).numpy()

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        rows = torch.from_numpy(np.asarray(x, np.float32).reshape(len(x), -1))
        return self(rows).argmax(-1).numpy()


def train_classifier(x: np.ndarray, y: np.ndarray, epochs: int = 60, seed: int = 0) -> Classifier:
    """Adam (lr 1e-3, weight decay 1e-4, batch 100) on cross-entropy, fixed epochs."""
    torch.manual_seed(seed)
    model = Classifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="classifier", leave=False):
        for idx in torch.randperm(len(xs), generator=generator).split(100):
            loss = F.cross_entropy(model(xs[idx]), ys[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2) between two feature sets; the trace
    of the root as tr((S_a^1/2 S_b S_a^1/2)^1/2), from symmetric eigenvalues (no complex
    parts, no warnings for rank-deficient covariances of small sample sets)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    half_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = np.linalg.eigvalsh(half_a @ cov_b @ half_a)
    trace_root = float(np.sqrt(np.clip(middle, 0.0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def conditional_accuracy(
    classifier: Classifier, samples: np.ndarray, labels: np.ndarray, num_labels: int = 10
) -> tuple[float, list[float]]:
    """Share of samples made for label c that the classifier calls c: overall and per class."""
    hits = classifier.predict(samples) == labels
    per_class = [float(hits[labels == c].mean()) for c in range(num_labels)]
    return float(hits.mean()), per_class

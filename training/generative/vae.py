"""Bernoulli VAE on binarised digits, MLP 64-128-128 encoder/decoder, z = 8, trained with the
IWAE bound (k = 5; k = 1 is the SGVB/ELBO VAE). Ships the IWAE-5 decoder as a sampler graph:
z [N, 8] -> Bernoulli means x [N, 8, 8]. `num_labels` makes it the conditional VAE (cvae.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.generative import baselines, data, evaluate, report
from training.generative.evaluate import onehot_of
from training.generative.trainer import Fit, Schedule, fit

Z_DIM = 8
HIDDEN = 128
LOG_2PI = math.log(2 * math.pi)


def _mlp(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, HIDDEN),
        nn.Tanh(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.Tanh(),
        nn.Linear(HIDDEN, outputs),
    )


class VAE(nn.Module):
    """q(z | x[, c]) diagonal Gaussian, p(z) = N(0, I), p(x | z[, c]) Bernoulli (logits)."""

    def __init__(self, num_labels: int = 0) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.encoder = _mlp(data.DIM + num_labels, 2 * Z_DIM)
        self.decoder = _mlp(Z_DIM + num_labels, data.DIM)

    def _cond(self, h: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        if onehot is None:
            return h
        return torch.cat([h, onehot.expand(*h.shape[:-1], onehot.shape[-1])], dim=-1)

    def log_weights(
        self,
        x: torch.Tensor,
        k: int,
        onehot: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """log p(x, z) - log q(z | x) for k reparameterised draws z ~ q: shape [k, N]."""
        mu, log_var = self.encoder(self._cond(x, onehot)).chunk(2, dim=-1)
        std = torch.exp(0.5 * log_var)
        eps = torch.randn(k, *mu.shape, dtype=mu.dtype, generator=generator)
        z = mu + std * eps
        logits = self.decoder(self._cond(z, onehot))
        log_px = -F.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
        log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + LOG_2PI + log_var).sum(-1)
        return log_px + log_pz - log_qz

    def bound(self, x: torch.Tensor, k: int, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """The IWAE-k bound per image, [N] (k = 1: the ELBO)."""
        return torch.logsumexp(self.log_weights(x, k, onehot), dim=0) - math.log(k)


class SampleGraph(nn.Module):
    """The exported sampler: z [N, 8] -> Bernoulli means x [N, 8, 8]. No noise inside."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.decoder = vae.decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z)).reshape(-1, data.SIDE, data.SIDE)


@dataclass(frozen=True)
class Settings:
    """Full-run settings; `smoke()` shrinks them to seconds for tests."""

    schedule: Schedule = field(
        default_factory=lambda: Schedule(max_epochs=1500, eval_every=25, patience=300)
    )
    is_samples: int = 5000
    valid_is_samples: int = 200
    mixture_candidates: tuple[int, ...] = (10, 20, 30, 50, 80, 120)

    @staticmethod
    def smoke() -> Settings:
        return Settings(
            schedule=Schedule(max_epochs=2, eval_every=1, patience=10),
            is_samples=50,
            valid_is_samples=10,
            mixture_candidates=(3,),
        )


@dataclass
class Trained:
    model: VAE
    k: int
    fit: Fit
    schedule: Schedule


def train(
    x: np.ndarray,
    x_valid: np.ndarray,
    k: int,
    settings: Settings,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
    num_labels: int = 0,
) -> Trained:
    """The IWAE-k bound maximised on binary rows `x` [N, 64] (optionally with `labels` for
    (x, x_valid)); the weights kept are those of the best validation log p(x) (IS estimate)."""
    torch.manual_seed(settings.schedule.seed)
    model = VAE(num_labels)
    xs, xv = torch.from_numpy(x), x_valid
    cs = onehot_of(None if labels is None else labels[0], num_labels)
    cv = None if labels is None else labels[1]

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        return -model.bound(xs[idx], k, None if cs is None else cs[idx]).mean()

    def validate() -> float:
        ll = evaluate.is_log_likelihood(model, xv, settings.valid_is_samples, cv)
        return float(ll.mean())

    name = f"{'cvae' if num_labels else 'vae'} k={k}"
    result = fit(model, settings.schedule, len(xs), batch_loss, validate, name)
    return Trained(model, k, result, settings.schedule)


def describe(trained: Trained, x_fit: np.ndarray, x_test: np.ndarray, is_k: int) -> dict[str, Any]:
    """Test (and training-row) log p(x) by IS with `is_k` draws, plus the run's bookkeeping."""
    test = float(evaluate.is_log_likelihood(trained.model, x_test, is_k).mean())
    train_rows = float(evaluate.is_log_likelihood(trained.model, x_fit, is_k).mean())
    return {
        "test_log_px_nats": report.rounded(test),
        "test_bits_per_dim": report.rounded(evaluate.bits_per_dim(test)),
        "train_log_px_nats": report.rounded(train_rows),
        "k": trained.k,
        **trained.fit.card(),
    }


NAME = "vae-digits"
PREPROCESSING = "binarised: pixel level > 7 -> 1, else 0"


def run(out: Path, docs: Path | None, smoke: bool = False, iwae50: bool = False) -> report.Result:
    """Train SGVB (k = 1) and IWAE-5 (and IWAE-50 with `iwae50`), fit the Bernoulli mixture,
    export the IWAE-5 decoder to out/vae-digits/1/ with its card, and draw docs PNGs."""
    settings = Settings.smoke() if smoke else Settings()
    digits = data.load_split()
    x_train, x_test = data.binarise(digits.x_train), data.binarise(digits.x_test)
    x_fit, x_valid = data.train_valid(x_train)
    runs = {f"iwae{k}" if k > 1 else "sgvb": k for k in (1, 5, 50) if k != 50 or iwae50}
    trained = {name: train(x_fit, x_valid, k, settings) for name, k in runs.items()}
    results = {name: describe(t, x_fit, x_test, settings.is_samples) for name, t in trained.items()}
    mixture = baselines.bernoulli_mixture_baseline(x_train, x_test, settings.mixture_candidates)
    metrics = vae_metrics(results, mixture, settings)
    directory = report.model_dir(out, NAME)
    graph = SampleGraph(trained["iwae5"].model).eval()
    report.export(graph, (torch.randn(4, Z_DIM),), directory / "sample.onnx", ["z"], ["x"])
    write_vae_card(directory, metrics)
    if docs is not None:
        draw_docs(docs, directory, trained)
    return report.Result(NAME, directory, metrics, {"sample": graph})


def vae_metrics(
    results: dict[str, dict[str, Any]], mixture: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    shipped = results["iwae5"]
    return {
        "shipped": "iwae5",
        "test_log_px_nats": shipped["test_log_px_nats"],
        "test_bits_per_dim": shipped["test_bits_per_dim"],
        "is_samples": settings.is_samples,
        "sgvb": results["sgvb"],
        **{name: r for name, r in results.items() if name != "sgvb"},
        "iwae5_beats_sgvb": shipped["test_log_px_nats"] > results["sgvb"]["test_log_px_nats"],
        "bernoulli_mixture": mixture,
        "vae_beats_mixture": min(r["test_log_px_nats"] for r in results.values())
        > mixture["test_log_px_nats"],
        "schedule": settings.schedule.card(),
        "validation": f"{data.N_VALID} training rows held out; best of IS log p(x) "
        f"(k = {settings.valid_is_samples}) every {settings.schedule.eval_every} epochs",
        "field_note_anchors_nats": {"sgvb": -16.95, "iwae5": -16.56, "iwae50": -16.21},
    }


def write_vae_card(directory: Path, metrics: dict[str, Any]) -> None:
    description = (
        "Bernoulli VAE on binarised 8x8 digits: MLP encoder/decoder 64-128-128 (tanh), "
        "z = 8, trained with the IWAE bound k = 5 (shipped) next to the SGVB (k = 1) VAE. "
        "The sample graph maps z ~ N(0, I) [N, 8] to the decoder's Bernoulli means "
        "x [N, 8, 8] in [0, 1] (not binary draws). Test log p(x) by importance sampling "
        "with q(z|x) and k = 5,000 draws; bits/dim = -log p(x) / (64 ln 2). Baseline: a "
        "mixture of Bernoullis fitted by EM (K chosen on validation rows)."
    )
    report.write_sampler_card(directory, NAME, Z_DIM, description, PREPROCESSING, metrics)


def draw_docs(docs: Path, directory: Path, trained: dict[str, Trained]) -> None:
    z = np.random.default_rng(0).standard_normal((100, Z_DIM)).astype(np.float32)
    x = report.run_onnx(directory / "sample.onnx", {"z": z}, "x")
    report.save_grid(x, docs / f"{NAME}-samples.png", 10, f"{NAME}: Bernoulli means, seed 0")
    curves = {}
    for name, t in trained.items():
        curves[f"{name} train -bound"] = report.curve(t.fit.train_loss)
        curves[f"{name} valid -log p(x)"] = report.points(t.fit.valid, -1.0)
    report.save_curves(curves, docs / f"{NAME}-loss.png", "nats / image", NAME)

"""Bayesian autoencoder on scikit-learn's digits (issue 51, items 3-4; Tran et al., "Model
selection for Bayesian autoencoders", NeurIPS 2021), our own code.

1. A VAE (encoder and decoder MLPs 64-128-128, z = 8, tanh) trained as usual by the ELBO on the
   generative models' fixed split (training/generative/data.py), the pixels' likelihood a
   discretised Gaussian on the 17 grey levels: p(level k) is the mass of N(mean, var) on
   [k - 1/2, k + 1/2] (the end bins open), mean and variance decoded per pixel. The encoder's
   mean is the BAE's deterministic encoder z(x).
2. The prior N(0, σ² / fan_in) on the decoder's weights and biases, σ chosen as the paper does:
   the σ whose prior-predictive images (decoders drawn from the prior, fed the training codes
   z(x)) are closest to the training images in sliced Wasserstein distance.
3. SGHMC (training/bayesian/sghmc.py) over the decoder's weights given the codes, chains
   started at the VAE's decoder: S draws kept, stacked in one graph (batched matmul over S).

The exported graph takes x [N, 64] (levels 0..16) and gives per draw the decoded `mean` and
`var` [S, N, 64] (level units) and `log_lik` [S, N], log p(x | z(x), θ_s) of the input under the
discretised Gaussian. The server turns them into the posterior predictive: the reconstruction
(mean over draws), the epistemic std (of the draws' means), the aleatoric std (root of the mean
decoded variance), log p(x) = logsumexp_s log_lik - log S and the anomaly score -log p(x).
A second graph (role `decode`, decode.onnx) holds the same S stacked decoders alone: z [N, 8] ->
`mean` and `var` [S, N, 64], so the server samples (z from its seeded noise, app/noise.py)
through the posterior draws: per sample the mean image and its epistemic and aleatoric std.

OOD evidence: AUROC of the score for the test digits against inverted test digits (16 - x),
uniform noise levels and the 52 letters the digits classifier's card uses, beside the plain
VAE's reconstruction error and negative ELBO on the same sets."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor, nn

from app.noise import standard_normal_rows
from training.bayesian import data, metrics, report, sghmc
from training.bayesian.export import run as run_graph
from training.export import export_checked, write_card
from training.generative import data as digits_data
from training.generative.vae import HIDDEN as VAE_HIDDEN
from training.generative.vae import _mlp as mlp  # the generative VAE's MLP: 128-128, tanh

NAME = "bae-digits"
COMMAND = "make train-bae"
SEED = 0
Z_DIM = 8
HIDDEN = VAE_HIDDEN  # the width `mlp` builds
LEVELS = digits_data.LEVELS - 1  # the top grey level, 16
FLOOR = 0.2  # added to the decoded std (level units)
SIZES = [Z_DIM, HIDDEN, HIDDEN, 2 * digits_data.DIM]
PRIOR_GRID = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
SQRT2 = math.sqrt(2.0)
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Settings:
    vae_epochs: int = 1000
    vae_batch: int = 100
    vae_lr: float = 2e-3
    eval_every: int = 20
    sampler: sghmc.Config = field(
        default_factory=lambda: sghmc.Config(lr=1e-4, alpha=0.05, burn_in=5000, thin=250, draws=12)
    )
    # the cross-check of the prior: a shorter run per σ, scored on the validation rows
    check_sampler: sghmc.Config = field(
        default_factory=lambda: sghmc.Config(lr=1e-4, alpha=0.05, burn_in=1500, thin=100, draws=4)
    )
    chains: int = 4
    minibatch: int = 128
    prior_draws: int = 64
    projections: int = 256
    elbo_samples: int = 32
    noise_rows: int = 297

    @staticmethod
    def smoke() -> Settings:
        return Settings(
            vae_epochs=3,
            eval_every=1,
            sampler=sghmc.Config(lr=2e-4, alpha=0.05, burn_in=20, thin=5, draws=2),
            check_sampler=sghmc.Config(lr=2e-4, alpha=0.05, burn_in=4, thin=2, draws=1),
            chains=2,
            prior_draws=4,
            projections=16,
            elbo_samples=2,
            noise_rows=20,
        )


# --- the likelihood ---------------------------------------------------------------------------


def ndtr(x: Tensor) -> Tensor:
    """Φ(x) through erf (one ONNX op)."""
    return 0.5 * (1.0 + torch.erf(x / SQRT2))


def discretised_log_lik(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log P(level x | N(mean, std²)) per pixel: the mass on [x - 1/2, x + 1/2], the bins of
    levels 0 and 16 open to -inf and +inf. Computed on the side of the mean where Φ is small (no
    cancellation), and by the density at x when the mass underflows."""
    lower = (x - 0.5 - mean) / std
    upper = (x + 0.5 - mean) / std
    right = lower > 0  # the whole bin above the mean: use the upper tail
    lo = torch.where(x <= 0.5, torch.full_like(lower, -1e4), lower)
    hi = torch.where(x >= LEVELS - 0.5, torch.full_like(upper, 1e4), upper)
    mass = torch.where(right, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))
    density = -0.5 * (((x - mean) / std) ** 2 + LOG_2PI) - torch.log(std)
    safe = torch.clamp(mass, min=1e-30)
    return torch.where(mass > 1e-12, torch.log(safe), density)


def head(out: Tensor) -> tuple[Tensor, Tensor]:
    """The decoder's last layer: (mean in 0..16, std > FLOOR), level units."""
    raw_mean, raw_std = out.chunk(2, dim=-1)
    return LEVELS * torch.sigmoid(raw_mean), nn.functional.softplus(raw_std) + FLOOR


# --- the VAE ----------------------------------------------------------------------------------


class VAE(nn.Module):
    """q(z | x) diagonal Gaussian from x / 16; p(z) = N(0, I); p(x | z) the discretised Gaussian."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = mlp(digits_data.DIM, 2 * Z_DIM)
        self.decoder = mlp(Z_DIM, 2 * digits_data.DIM)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.encoder(x / LEVELS).chunk(2, dim=-1)
        return mu, log_var

    def log_lik(self, x: Tensor, z: Tensor) -> Tensor:
        mean, std = head(self.decoder(z))
        return discretised_log_lik(x, mean, std).sum(-1)

    def elbo(self, x: Tensor, samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """The ELBO per row (reparameterised, `samples` draws of z averaged), [N]."""
        mu, log_var = self.encode(x)
        eps = torch.randn(samples, *mu.shape, generator=generator)
        z = mu + torch.exp(0.5 * log_var) * eps
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
        return self.log_lik(x, z).mean(0) - kl

    def reconstruction(self, x: Tensor) -> Tensor:
        """The decoded mean at z = the encoder's mean, [N, 64]."""
        mean, _ = head(self.decoder(self.encode(x)[0]))
        return mean


def train_vae(x_fit: np.ndarray, x_valid: np.ndarray, s: Settings) -> tuple[VAE, dict[str, Any]]:
    """Adam on the ELBO; the weights kept are those of the best validation ELBO."""
    torch.manual_seed(SEED)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=s.vae_lr)
    xs, xv = torch.from_numpy(x_fit), torch.from_numpy(x_valid)
    generator = torch.Generator().manual_seed(SEED)
    best, best_epoch, state = -math.inf, 0, None
    history = []
    for epoch in range(1, s.vae_epochs + 1):
        order = torch.randperm(len(xs), generator=generator)
        for i in range(0, len(xs), s.vae_batch):
            loss = -model.elbo(xs[order[i : i + s.vae_batch]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % s.eval_every == 0 or epoch == s.vae_epochs:
            with torch.no_grad():
                valid = float(model.elbo(xv, 8, torch.Generator().manual_seed(1)).mean())
            history.append((epoch, round(valid, 3)))
            if valid > best:
                best, best_epoch = valid, epoch
                state = {k: v.clone() for k, v in model.state_dict().items()}
    assert state is not None
    model.load_state_dict(state)
    model.eval()
    return model, {
        "epochs": s.vae_epochs,
        "batch": s.vae_batch,
        "lr": s.vae_lr,
        "best_epoch": best_epoch,
        "valid_elbo_nats": round(best, 3),
        "valid_history": history,
    }


# --- the decoder posterior --------------------------------------------------------------------


def decoder_params(vae: VAE, chains: int) -> list[Tensor]:
    """The VAE decoder's weights as stacked chains: [W [C, in, out], b [C, out], ...]."""
    layers = [m for m in vae.decoder if isinstance(m, nn.Linear)]
    out: list[Tensor] = []
    for layer in layers:
        out += [
            layer.weight.detach().T.contiguous().expand(chains, -1, -1).clone(),
            layer.bias.detach().expand(chains, -1).clone(),
        ]
    return out


def decode(params: list[Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
    """z [P, N, 8] (or [N, 8], shared) through P stacked decoders -> (mean, std) [P, N, 64]."""
    h = z if z.dim() == 3 else z.unsqueeze(0).expand(params[0].shape[0], -1, -1)
    layers = len(params) // 2
    for i in range(layers):
        h = torch.matmul(h, params[2 * i]) + params[2 * i + 1].unsqueeze(1)
        if i < layers - 1:
            h = torch.tanh(h)
    return head(h)


def prior_precisions(sigma: float) -> list[float]:
    """Precision fan_in / σ² of layer i's weights and biases."""
    return [SIZES[i] / sigma**2 for i in range(len(SIZES) - 1)]


def prior_draw(sigma: float, count: int, generator: torch.Generator) -> list[Tensor]:
    out: list[Tensor] = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        scale = sigma / math.sqrt(fan_in)
        out += [
            scale * torch.randn(count, fan_in, fan_out, generator=generator),
            scale * torch.randn(count, fan_out, generator=generator),
        ]
    return out


def sliced_wasserstein(a: Tensor, b: Tensor, projections: int, generator: torch.Generator) -> float:
    """SW₂ between two equal-size point clouds [N, D]: random unit directions, sorted
    projections compared."""
    directions = torch.randn(a.shape[1], projections, generator=generator)
    directions = directions / directions.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ directions, dim=0)
    pb, _ = torch.sort(b @ directions, dim=0)
    return float(((pa - pb) ** 2).mean().sqrt())


def choose_prior(codes: Tensor, x: Tensor, s: Settings) -> tuple[float, dict[str, float]]:
    """The σ of PRIOR_GRID whose prior predictive is closest to the data (SW₂ in level units):
    each training code goes through one of `prior_draws` decoders drawn from the prior, and the
    decoded means (clipped to the levels' range by the head) are compared with the images."""
    distances = {}
    for sigma in PRIOR_GRID:
        generator = torch.Generator().manual_seed(SEED + 7)
        params = prior_draw(sigma, s.prior_draws, generator)
        which = torch.arange(len(codes)) % s.prior_draws
        with torch.no_grad():
            mean, _ = decode(params, codes)  # [P, N, 64]
        fake = mean[which, torch.arange(len(codes))]
        distances[f"{sigma:g}"] = round(
            sliced_wasserstein(fake, x, s.projections, torch.Generator().manual_seed(SEED + 8)), 4
        )
    best = min(PRIOR_GRID, key=lambda g: distances[f"{g:g}"])
    return best, distances


def run_sghmc(
    vae: VAE, x: np.ndarray, sigma: float, s: Settings, config: sghmc.Config | None = None
) -> list[Tensor]:
    """Draws of the decoder's weights given the codes z(x): [S, ...] per parameter."""
    xs = torch.from_numpy(x)
    with torch.no_grad():
        codes = vae.encode(xs)[0]
    n, chains = len(xs), s.chains
    precision = prior_precisions(sigma)
    generator = torch.Generator().manual_seed(SEED)

    def potential(theta: list[Tensor], step: int) -> Tensor:
        idx = torch.randint(0, n, (chains, s.minibatch), generator=generator)
        mean, std = decode(theta, codes[idx])
        nll = -discretised_log_lik(xs[idx], mean, std).sum((1, 2)) * (n / s.minibatch)
        prior = sum(
            0.5
            * precision[i]
            * (theta[2 * i].pow(2).flatten(1).sum(1) + theta[2 * i + 1].pow(2).sum(1))
            for i in range(len(precision))
        )
        return (nll + prior).sum()

    draws = sghmc.sample(
        decoder_params(vae, chains),
        potential,
        config or s.sampler,
        generator,
        desc="bae sghmc",
        progress=False,
    )
    return [t.flatten(0, 1) for t in draws]


def prior_check(vae: VAE, x_fit: np.ndarray, x_valid: np.ndarray, s: Settings) -> dict[str, float]:
    """The other way to choose σ, reported beside the distance (not used to choose): the
    validation rows' mean log p(x) under a short SGHMC run at each σ."""
    out = {}
    for sigma in PRIOR_GRID:
        module = Reconstruct(vae, run_sghmc(vae, x_fit, sigma, s, s.check_sampler))
        with torch.no_grad():
            _, _, log_lik = module(torch.from_numpy(x_valid))
        out[f"{sigma:g}"] = round(float(posterior_log_px(log_lik.numpy()).mean()), 3)
    return out


# --- the served graph -------------------------------------------------------------------------


class Reconstruct(nn.Module):
    """x [N, 64] levels -> mean, var [S, N, 64] and log_lik [S, N]."""

    def __init__(self, vae: VAE, params: list[Tensor]) -> None:
        super().__init__()
        self.encoder = vae.encoder
        self.draws = int(params[0].shape[0])
        self.layers = len(params) // 2
        for i, p in enumerate(params):
            self.register_buffer(f"p{i}", p.detach().to(torch.float32).contiguous().clone())

    def params(self) -> list[Tensor]:
        return [getattr(self, f"p{i}") for i in range(2 * self.layers)]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.encoder(x / LEVELS)[:, :Z_DIM]
        mean, std = decode(self.params(), z)
        log_lik = discretised_log_lik(x.unsqueeze(0), mean, std).sum(-1)
        return mean, std * std, log_lik


class Decode(nn.Module):
    """z [N, 8] -> mean, var [S, N, 64]: the reconstruct graph's S stacked decoders alone (the
    same buffers), for sampling from the prior over z; no random op."""

    def __init__(self, reconstruct: Reconstruct) -> None:
        super().__init__()
        self.draws, self.layers = reconstruct.draws, reconstruct.layers
        for i, p in enumerate(reconstruct.params()):
            self.register_buffer(f"p{i}", p.clone())

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        mean, std = decode([getattr(self, f"p{i}") for i in range(2 * self.layers)], z)
        return mean, std * std


def export_decode(module: Decode, path: Path) -> list[str]:
    """export_onnx, then ONNX Runtime against PyTorch on seeded z at N = 3 and N = 1."""
    z = torch.from_numpy(standard_normal_rows(SEED, 3, Z_DIM))
    return export_checked(module, z, path, "z", ["mean", "var"], 1e-3)


def export_graph(module: Reconstruct, example: np.ndarray, path: Path) -> list[str]:
    """export_onnx, then ONNX Runtime against PyTorch at the example rows and at N = 1."""
    x = torch.as_tensor(example, dtype=torch.float32)
    return export_checked(module, x, path, "x", ["mean", "var", "log_lik"], 1e-3)


# --- scores and evaluation --------------------------------------------------------------------


def posterior_log_px(log_lik: np.ndarray) -> np.ndarray:
    """log p(x) = logsumexp over draws of log p(x | z(x), θ_s) - log S: [S, N] -> [N]."""
    top = log_lik.max(0)
    return top + np.log(np.exp(log_lik - top).mean(0))


def ood_sets(d: data.Digits, rows: int) -> dict[str, np.ndarray]:
    noise = np.random.default_rng(SEED + 11).integers(0, LEVELS + 1, (rows, digits_data.DIM))
    return {
        "inverted": (LEVELS - d.x_test).astype(np.float32),
        "noise": noise.astype(np.float32),
        "letters": np.clip(d.x_letters, 0, LEVELS).astype(np.float32),
    }


def scores(module: Reconstruct, vae: VAE, x: np.ndarray, s: Settings) -> dict[str, np.ndarray]:
    """Per row, higher = more anomalous: the BAE's -log p(x) and its mean epistemic std, and the
    plain VAE's squared reconstruction error, -ELBO and -log p(x | z(x)) of its own decoder."""
    xs = torch.from_numpy(np.asarray(x, np.float32))
    with torch.no_grad():
        mean, var, log_lik = (t.numpy().astype(np.float64) for t in module(xs))
        elbo = vae.elbo(xs, s.elbo_samples, torch.Generator().manual_seed(SEED + 3)).numpy()
        recon = vae.reconstruction(xs).numpy()
        vae_ll = vae.log_lik(xs, vae.encode(xs)[0]).numpy()
    return {
        "bae_nll": -posterior_log_px(log_lik),
        "bae_epistemic": mean.std(0).mean(-1),
        "vae_recon_error": ((recon - x) ** 2).sum(-1),
        "vae_neg_elbo": -elbo.astype(np.float64),
        "ae_nll": -vae_ll.astype(np.float64),
        "_aleatoric": np.sqrt(var.mean(0)).mean(-1),
    }


SCORE_NAMES = {
    "bae_nll": "BAE -log p(x) (the served anomaly score)",
    "bae_epistemic": "BAE mean per-pixel epistemic std",
    "vae_recon_error": "VAE squared reconstruction error at z = mean",
    "vae_neg_elbo": "VAE -ELBO",
    "ae_nll": "VAE decoder alone (one weight setting) -log p(x | z(x))",
}


def evaluate(
    module: Reconstruct, vae: VAE, d: data.Digits, s: Settings
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    sets = {"test": d.x_test, **ood_sets(d, s.noise_rows)}
    per_set = {name: scores(module, vae, x, s) for name, x in sets.items()}
    test = per_set["test"]
    auroc = {
        ood: {
            score: round(metrics.auroc(test[score], per_set[ood][score]), 4)
            for score in SCORE_NAMES
        }
        for ood in sets
        if ood != "test"
    }
    means = {
        name: {score: round(float(v.mean()), 3) for score, v in values.items()}
        for name, values in per_set.items()
    }
    return {
        "ood_auroc": auroc,
        "mean_scores": means,
        "rows": {k: len(v) for k, v in sets.items()},
    }, per_set


# --- docs -------------------------------------------------------------------------------------


def draw_reconstructions(module: Reconstruct, d: data.Digits, s: Settings, path: Path) -> None:
    """Columns: 4 test digits, one inverted, one noise, two letters; rows: input, reconstruction,
    epistemic std, aleatoric std."""
    sets = ood_sets(d, s.noise_rows)
    x = np.concatenate(
        [d.x_test[:4], sets["inverted"][:1], sets["noise"][:1], sets["letters"][[0, 33]]]
    )
    with torch.no_grad():
        mean, var, log_lik = (t.numpy().astype(np.float64) for t in module(torch.from_numpy(x)))
    nll = -posterior_log_px(log_lik)
    panels = [
        ("input", x, 0, LEVELS),
        ("reconstruction", mean.mean(0), 0, LEVELS),
        ("epistemic std", mean.std(0), 0, None),
        ("aleatoric std", np.sqrt(var.mean(0)), 0, None),
    ]
    fig, axes = plt.subplots(len(panels), len(x), figsize=(1.1 * len(x), 1.2 * len(panels)))
    for r, (label, values, low, high) in enumerate(panels):
        top = high if high is not None else float(values.max())
        for c in range(len(x)):
            ax = axes[r, c]
            cmap = "gray_r" if r < 2 else "magma"
            ax.imshow(values[c].reshape(8, 8), cmap=cmap, vmin=low, vmax=top)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=6)
            if r == 0:
                ax.set_title(f"-log p {nll[c]:.0f}", fontsize=6)
    fig.suptitle("bae-digits: test digits | inverted | noise | letters", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


SAMPLE_SEED, SAMPLE_ROWS = 7, 8  # the card page's grid: POST /sample {"seed": 7, "n": 8}


def draw_samples(module: Decode, path: Path) -> None:
    """Columns: samples 0..7 of seed 7 (z from app/noise.py, as the server makes it); rows:
    the mean image over the S decoders, the epistemic std across them, the aleatoric std."""
    z = torch.from_numpy(standard_normal_rows(SAMPLE_SEED, SAMPLE_ROWS, Z_DIM))
    with torch.no_grad():
        mean, var = (t.numpy().astype(np.float64) for t in module(z))
    panels = [
        ("mean over draws", mean.mean(0), LEVELS),
        ("epistemic std", mean.std(0), None),
        ("aleatoric std", np.sqrt(var.mean(0)), None),
    ]
    fig, axes = plt.subplots(len(panels), SAMPLE_ROWS, figsize=(1.1 * SAMPLE_ROWS, 3.6))
    for r, (label, values, high) in enumerate(panels):
        top = high if high is not None else float(values.max())
        for c in range(SAMPLE_ROWS):
            ax = axes[r, c]
            ax.imshow(
                values[c].reshape(8, 8), cmap="gray_r" if r == 0 else "magma", vmin=0, vmax=top
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=6)
            if r:
                ax.set_title(f"mean {values[c].mean():.2f}", fontsize=6)
    fig.suptitle(
        f"bae-digits samples: z ~ N(0, I), seed {SAMPLE_SEED}, through {module.draws} decoders",
        fontsize=8,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_scores(per_set: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """Histograms (log-spaced bins, each set's bars summing to 1) of the BAE's score and of
    the VAE's -ELBO and reconstruction error per set."""
    shown = ("bae_nll", "vae_neg_elbo", "vae_recon_error")
    fig, axes = plt.subplots(1, len(shown), figsize=(11, 3.2))
    for ax, score in zip(axes, shown, strict=True):
        values = {name: np.maximum(v[score], 1e-3) for name, v in per_set.items()}
        pooled = np.concatenate(list(values.values()))
        bins = np.geomspace(pooled.min(), pooled.max(), 50)
        for name, v in values.items():
            share = np.full(len(v), 1.0 / len(v))
            ax.hist(v, bins=bins, weights=share, alpha=0.5, label=f"{name} ({len(v)})")
        ax.set_xscale("log")
        ax.set_ylabel("share of the set", fontsize=7)
        ax.set_title(SCORE_NAMES[score], fontsize=8)
        ax.set_xlabel("higher = more anomalous (log scale)", fontsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- the job ----------------------------------------------------------------------------------


def run(out: Path, docs: Path, smoke: bool = False) -> report.Result:
    s = Settings.smoke() if smoke else Settings()
    torch.manual_seed(SEED)
    start = time.perf_counter()
    d = data.load_digits_split()
    x_fit, x_valid = digits_data.train_valid(d.x_train)
    vae, vae_record = train_vae(x_fit, x_valid, s)
    vae_seconds = time.perf_counter() - start
    with torch.no_grad():
        codes = vae.encode(torch.from_numpy(x_fit))[0]
    sigma, distances = choose_prior(codes, torch.from_numpy(x_fit), s)
    valid_by_sigma = prior_check(vae, x_fit, x_valid, s)
    draws = run_sghmc(vae, x_fit, sigma, s)
    module = Reconstruct(vae, draws).eval()
    sampler_seconds = time.perf_counter() - start - vae_seconds
    evaluated, per_set = evaluate(module, vae, d, s)
    with torch.no_grad():
        _, _, valid_ll = module(torch.from_numpy(x_valid))
        _, _, test_ll = module(torch.from_numpy(d.x_test))
        vae_valid = vae.log_lik(torch.from_numpy(x_valid), vae.encode(torch.from_numpy(x_valid))[0])
    per_chain = valid_ll.numpy().reshape(-1, s.chains, len(x_valid))  # draws are [draw, chain]
    directory = report.model_dir(out, NAME)
    outputs = export_graph(module, d.x_test[:8], directory / "model.onnx")
    decoder = Decode(module).eval()
    decode_outputs = export_decode(decoder, directory / "decode.onnx")
    onnx_ll = posterior_log_px(
        run_graph(directory / "model.onnx", d.x_test)["log_lik"].astype(np.float64)
    )
    docs.mkdir(parents=True, exist_ok=True)
    recon_plot, score_plot = docs / f"{NAME}-reconstructions.png", docs / f"{NAME}-scores.png"
    sample_plot = docs / f"{NAME}-samples.png"
    draw_reconstructions(module, d, s, recon_plot)
    draw_scores(per_set, score_plot)
    draw_samples(decoder, sample_plot)
    seconds = time.perf_counter() - start
    card_metrics = {
        "headline": {
            "test_log_px_nats": round(float(posterior_log_px(test_ll.numpy()).mean()), 3),
            "ood_auroc_bae_nll": {k: v["bae_nll"] for k, v in evaluated["ood_auroc"].items()},
            "ood_auroc_vae_neg_elbo": {
                k: v["vae_neg_elbo"] for k, v in evaluated["ood_auroc"].items()
            },
            "ood_auroc_vae_recon_error": {
                k: v["vae_recon_error"] for k, v in evaluated["ood_auroc"].items()
            },
        },
        "likelihood": (
            "discretised Gaussian per pixel on the 17 levels: P(k) = mass of N(mean, var) on "
            "[k - 1/2, k + 1/2], bins 0 and 16 open-ended; mean = 16 sigmoid(a), std = "
            f"softplus(b) + {FLOOR} decoded per pixel (the aleatoric part); the spread of the "
            "draws' means is the epistemic part"
        ),
        "log_px": (
            "the posterior predictive of the input given its code: log p(x) = logsumexp_s "
            "log p(x | z(x), θ_s) - log S, nats per image (64 pixels); anomaly score = -log p(x). "
            "A reconstruction likelihood, not the marginal p(x) a VAE's ELBO bounds: the two are "
            "not comparable as densities"
        ),
        "validation": {
            "rows": len(x_valid),
            "bae_log_px_nats": round(float(posterior_log_px(valid_ll.numpy()).mean()), 3),
            "vae_decoder_log_px_given_code_nats": round(float(vae_valid.mean()), 3),
            "per_chain_mean_draw_log_lik_nats": [
                round(float(per_chain[:, c].mean()), 3) for c in range(s.chains)
            ],
            "worst_draw_mean_log_lik_nats": round(float(valid_ll.numpy().mean(1).min()), 3),
        },
        "test": {
            "rows": len(d.x_test),
            "bae_log_px_nats_via_onnx": round(float(onnx_ll.mean()), 3),
            "vae_neg_elbo_nats": evaluated["mean_scores"]["test"]["vae_neg_elbo"],
            "vae_decoder_log_px_given_code_nats": -evaluated["mean_scores"]["test"]["ae_nll"],
        },
        "ood": {
            "sets": {
                "test": f"the {len(d.x_test)} test digits (in distribution)",
                "inverted": "the test digits with every level x -> 16 - x",
                "noise": f"{s.noise_rows} rows of uniform integer levels 0..16 "
                f"(np.random.default_rng({SEED + 11}))",
                "letters": f"the {len(d.x_letters)} letters A-Z, a-z of digits-sghmc's card "
                "(Pillow default font, 32x32 bitmap -> 4x4 block counts, clipped to 16)",
            },
            "scores": SCORE_NAMES,
            "auroc": evaluated["ood_auroc"],
            "mean_scores": evaluated["mean_scores"],
        },
        "prior": {
            "family": "N(0, σ² / fan_in) on every weight and bias of decoder layer l",
            "sigma": sigma,
            "rule": (
                "as the paper: the σ whose prior predictive is closest to the data distribution. "
                f"{s.prior_draws} decoders drawn from the prior for each σ in {list(PRIOR_GRID)}, "
                f"each of the {len(x_fit)} training codes z(x) through one of them; sliced "
                f"Wasserstein-2 ({s.projections} directions, level units) between the decoded "
                "means and the training images; smallest wins. Chosen before any test row is seen"
            ),
            "sliced_wasserstein_by_sigma": distances,
            "cross_check_valid_log_px_by_sigma": valid_by_sigma,
            "cross_check": (
                f"not used to choose: the {len(x_valid)} validation rows' mean log p(x) (nats) "
                f"after a shorter SGHMC run at each σ ({s.check_sampler.describe()})"
            ),
        },
        "vae": vae_record,
        "sampler": {
            **s.sampler.describe(),
            "chains": s.chains,
            "minibatch": s.minibatch,
            "start": "every chain at the VAE's decoder",
            "posterior": "p(θ | codes, images) at temperature 1, the encoder fixed",
        },
        "draws": module.draws,
        "sample": (
            "POST /sample: z ~ N(0, I) (the server's seeded noise, app/noise.py) through the "
            f"{module.draws} decoders of graph role `decode` (decode.onnx, the reconstruct "
            "graph's decoder weights); per sample the mean image over the draws, the epistemic "
            "std (across draws) and the aleatoric std (root of the mean decoded variance). The "
            "encoder was trained against the N(0, I) prior (the VAE's ELBO), but the decoder "
            "posterior is conditioned on the training codes z(x) only"
        ),
        "wall_seconds": {
            "vae": round(vae_seconds, 1),
            "prior_and_sghmc": round(sampler_seconds, 1),
            "total": round(seconds, 1),
        },
        "plots": [recon_plot.name, score_plot.name, sample_plot.name],
        "smoke": smoke,
    }
    write_card(
        directory,
        name=NAME,
        kind="autoencoder",
        fmt="onnx",
        graphs={
            "reconstruct": ("model.onnx", ["x"], outputs),
            "decode": ("decode.onnx", ["z"], decode_outputs),
        },
        signature={
            "input_dim": digits_data.DIM,
            "levels": digits_data.LEVELS,
            "image_shape": [digits_data.SIDE, digits_data.SIDE],
            "draws": module.draws,
            "latent_dim": Z_DIM,
            "display_scale": 4,
            "method": "sghmc",
            "likelihood": "discretised_gaussian",
        },
        description=(
            "Bayesian autoencoder for 8x8 digits (pixel levels 0..16): a VAE's encoder and "
            f"{module.draws} SGHMC draws of its decoder's weights in one graph. Per image: the "
            "mean reconstruction, per-pixel epistemic and aleatoric std, log p(x) of the input "
            "and an anomaly score (-log p(x)); samples from z ~ N(0, I) through the same draws "
            "with their uncertainty."
        ),
        seed=SEED,
        data=digits_data.describe("none: pixel levels 0..16 as given (the encoder divides by 16)"),
        metrics=card_metrics,
        command=COMMAND,
    )
    auroc = evaluated["ood_auroc"]
    summary = [
        ("test log p(x) nats", card_metrics["headline"]["test_log_px_nats"]),
        ("prior σ", sigma),
    ]
    summary += [
        (
            f"AUROC {ood} bae/elbo/recon",
            f"{v['bae_nll']} / {v['vae_neg_elbo']} / {v['vae_recon_error']}",
        )
        for ood, v in auroc.items()
    ]
    return report.Result(NAME, directory, card_metrics, None, seconds, summary=summary)


def shipped_sample_uncertainty(
    directory: Path = Path("models") / NAME / "1", seed: int = 0, rows: int = 297
) -> dict[str, float]:
    """The shipped decode graph on the server's z (seed, rows): the samples' mean per-pixel
    epistemic and aleatoric std in levels, as POST /sample summarises them (card page)."""
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(directory / "decode.onnx"), providers=["CPUExecutionProvider"]
    )
    z = standard_normal_rows(seed, rows, Z_DIM)
    mean, var = (v.astype(np.float64) for v in session.run(["mean", "var"], {"z": z}))
    return {
        "epistemic_std": round(float(mean.std(0).mean()), 3),
        "aleatoric_std": round(float(np.sqrt(var.mean(0)).mean()), 3),
    }


def main(argv: Sequence[str] | None = None) -> report.Result:
    parser = argparse.ArgumentParser(prog="python -m training.bayesian.bae", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--docs", type=Path, default=Path("docs/models"))
    parser.add_argument("--smoke", action="store_true", help="seconds (tests)")
    args = parser.parse_args(argv)
    result = run(args.out, args.docs, args.smoke)
    for label, value in [*result.summary, ("wall time s", round(result.seconds, 1))]:
        print(f"{label:<36} {value}")
    return result


if __name__ == "__main__":
    main()

"""Two models of your own, in plain PyTorch on scikit-learn's bundled data sets (no download):
a Bernoulli VAE on the 8x8 digits (its decoder becomes a hanmo `sampler`) and a deep ensemble
of heteroscedastic MLPs on diabetes (a hanmo `predictive` model). Nothing here knows hanmo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes, load_digits
from torch import Tensor, nn

Z_DIM = 8


@dataclass
class Sizes:
    """Training sizes: FULL trains for real (about a minute on a CPU), TINY in seconds (tests).
    The members stop early on purpose: trained longer, a Gaussian-likelihood MLP on 354 rows
    shrinks its variance (measured: 90% intervals covered 66% of the test rows after 300
    epochs of 128 units, 83% after 30 of 50)."""

    hidden: int
    vae_epochs: int
    members: int
    member_hidden: int
    member_epochs: int


FULL = Sizes(hidden=128, vae_epochs=150, members=5, member_hidden=50, member_epochs=30)
TINY = Sizes(hidden=32, vae_epochs=3, members=3, member_hidden=16, member_epochs=5)


# -- the sampler: a VAE whose decoder maps z ~ N(0, I) to pixel probabilities ------------------


class Decoder(nn.Module):
    """z [N, 8] -> the Bernoulli means of the 64 pixels, [N, 8, 8] in [0, 1]."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(Z_DIM, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 64),
        )

    def logits(self, z: Tensor) -> Tensor:
        logits: Tensor = self.net(z)
        return logits

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(z)).reshape(-1, 8, 8)


class Vae(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 2 * Z_DIM))
        self.decoder = Decoder(hidden)

    def loss(self, x: Tensor) -> Tensor:
        """The negative ELBO per image, in nats."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
        recon = F.binary_cross_entropy_with_logits(self.decoder.logits(z), x, reduction="none")
        kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var)
        loss: Tensor = (recon.sum(-1) + kl.sum(-1)).mean()
        return loss


def digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binarised 8x8 digits (level > 7 -> 1): (train, test) rows [n, 64], a seeded split."""
    x = (load_digits().data > 7).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[:1500]], x[order[1500:]]


def train_vae(sizes: Sizes, seed: int) -> tuple[Vae, dict[str, float]]:
    """A VAE trained with Adam; its test negative ELBO as the card's metric."""
    torch.manual_seed(seed)
    train, test = (torch.from_numpy(part) for part in digits())
    vae = Vae(sizes.hidden)
    optimiser = torch.optim.Adam(vae.parameters(), lr=2e-3)
    for _ in range(sizes.vae_epochs):
        for batch in torch.randperm(len(train)).split(100):
            optimiser.zero_grad()
            vae.loss(train[batch]).backward()
            optimiser.step()
    with torch.no_grad():
        test_nelbo = float(vae.loss(test))
    return vae.eval(), {"test_neg_elbo_nats": round(test_nelbo, 4), "epochs": sizes.vae_epochs}


# -- the predictive model: a deep ensemble, each member a Gaussian (mean, var) per row ---------


class Member(nn.Module):
    """x [N, 10] in the data's own units -> (mean, var) [N, 1] in target units. The scaling
    is part of the module (buffers), so the exported graph takes raw rows."""

    x_mean: Tensor
    x_std: Tensor
    y_mean: Tensor
    y_std: Tensor

    def __init__(self, x: np.ndarray, y: np.ndarray, hidden: int) -> None:
        super().__init__()
        self.register_buffer("x_mean", torch.tensor(x.mean(0), dtype=torch.float32))
        self.register_buffer("x_std", torch.tensor(x.std(0) + 1e-6, dtype=torch.float32))
        self.register_buffer("y_mean", torch.tensor(float(y.mean())))
        self.register_buffer("y_std", torch.tensor(float(y.std())))
        self.net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def standardised(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of the standardised target."""
        raw = self.net((x - self.x_mean) / self.x_std)
        return raw[:, :1], F.softplus(raw[:, 1:]) + 1e-3

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, var = self.standardised(x)
        return self.y_mean + self.y_std * mean, self.y_std**2 * var


FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def diabetes(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Diabetes in its original units (age in years, ...): x_train, y_train, x_test, y_test."""
    data = load_diabetes(scaled=False)
    x, y = data.data.astype(np.float32), data.target.astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def train_member(x: np.ndarray, y: np.ndarray, sizes: Sizes, seed: int) -> Member:
    """One member: Gaussian negative log-likelihood, its own seed for weights and batches."""
    torch.manual_seed(seed)
    member = Member(x, y, sizes.member_hidden)
    xs, ys = torch.from_numpy(x), (torch.from_numpy(y)[:, None] - member.y_mean) / member.y_std
    optimiser = torch.optim.Adam(member.net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(sizes.member_epochs):
        for batch in torch.randperm(len(xs)).split(32):
            mean, var = member.standardised(xs[batch])
            optimiser.zero_grad()
            F.gaussian_nll_loss(mean, ys[batch], var).backward()
            optimiser.step()
    return member.eval()


def train_ensemble(
    sizes: Sizes, seed: int
) -> tuple[list[Member], np.ndarray, dict[str, dict[str, float]]]:
    """The members, the training rows (for the card's feature summary) and test metrics of
    the equal-weight mixture (RMSE, 90% interval coverage from a Gaussian with its moments)."""
    x, y, x_test, y_test = diabetes()
    members = [train_member(x, y, sizes, seed + i) for i in range(sizes.members)]
    with torch.no_grad():
        outs = [m(torch.from_numpy(x_test)) for m in members]
    means = torch.stack([mean for mean, _ in outs])[..., 0]
    second = torch.stack([var + mean**2 for mean, var in outs])[..., 0]
    mean = means.mean(0)
    std = (second.mean(0) - mean**2).clamp_min(1e-6).sqrt()
    target = torch.from_numpy(y_test)
    rmse = float((mean - target).pow(2).mean().sqrt())
    covered = float(((target - mean).abs() <= 1.645 * std).float().mean())
    metrics = {"this_model": {"rmse": round(rmse, 3), "picp_90": round(covered, 3)}}
    return members, x, metrics

"""The GP-matched functional prior (Tran, Rossi, Milios & Filippone, "All you need is a good
functional prior for Bayesian deep learning", JMLR 2022), "Gaussian prior" variant, for the
heteroscedastic D-50-2 network of the regression jobs.

The weight prior is W_l ~ N(0, σ_w,l² / fan_in_l) and b_l ~ N(0, σ_b,l²) per layer (four
hyper-parameters for one hidden layer; the last layer's pair covers both output units). The
σ's are fitted so that the prior over the network's mean output, f(x) = raw₀(x), matches a GP
prior GP(0, c · RBF_ARD(ℓ)) whose c and ℓ come from the GP fitted by marginal likelihood on the
split's (standardised) training rows: the latent part of training.bayesian.baselines' GP, its
white noise left out.

The distance minimised is the sliced Wasserstein-1 distance between the two distributions of
function values at a measurement set of M inputs: both sets of n function draws are projected
on K random unit directions of R^M, and each projection's 1-D W1 is the mean absolute
difference of the sorted projections (exact for the empirical distributions); the K values are
averaged. The paper estimates W1 itself through its dual with a Lipschitz critic network; the
sliced distance needs no critic (no inner loop, no gradient penalty), is differentiable
through the sort, and is zero only when every projection agrees. Network draws are
reparametrised (W = σ · ε / √fan_in), so the distance's gradient reaches log σ; Adam on
log σ, a fresh measurement set, fresh draws and fresh directions every step. Measurement
sets: half the points are training rows, half uniform in the box the training rows span
(the paper: training inputs plus random points of the input domain); `widen` can stretch it.

Everything is stacked over splits (hyper-parameters [splits, 4]), as the samplers are."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from training.bayesian import baselines, nets

NAMES = ("sigma_w1", "sigma_b1", "sigma_w2", "sigma_b2")


@dataclass(frozen=True)
class FitConfig:
    steps: int
    lr: float
    measure: int  # M, points per measurement set
    functions: int  # n, function draws from each prior per step
    projections: int  # K
    widen: float = 0.0  # the box of random measurement points: range widened by this each side
    jitter: float = 1e-5  # added to the GP covariance (times c) for its Cholesky
    ard: bool = False  # one σ_w1 per input feature instead of one per layer

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GPPrior:
    """Per split: amplitude c [S], length scales ℓ [S, D] (standardised inputs), noise σ²
    [S] (reported, not matched), all from the marginal-likelihood fit."""

    amplitude: Tensor
    lengthscale: Tensor
    noise: Tensor

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "amplitude": float(c),
                "lengthscale": [round(float(v), 4) for v in ell],
                "noise": float(n),
            }
            for c, ell, n in zip(self.amplitude, self.lengthscale, self.noise, strict=True)
        ]


def gp_prior(models: list[Any]) -> GPPrior:
    """The fitted sklearn GPs' kernels, (c · RBF(ℓ)) + White(σ²), as tensors."""
    amp, ell, noise = [], [], []
    for model in models:
        params = model.kernel_.get_params()
        amp.append(float(params["k1__k1__constant_value"]))
        ell.append(np.atleast_1d(params["k1__k2__length_scale"]).astype(np.float64))
        noise.append(float(params["k2__noise_level"]))
    return GPPrior(
        torch.tensor(amp, dtype=torch.float64),
        torch.tensor(np.stack(ell), dtype=torch.float64),
        torch.tensor(noise, dtype=torch.float64),
    )


def fit_gps(xs: list[np.ndarray], ys: list[np.ndarray], seed: int) -> list[Any]:
    """The baselines' GP (constant × ARD RBF + white, marginal likelihood) per split."""
    return [baselines.fit_gp(x, y, seed + i) for i, (x, y) in enumerate(zip(xs, ys, strict=True))]


def gp_draws(gp: GPPrior, x: Tensor, n: int, jitter: float, generator: torch.Generator) -> Tensor:
    """n draws of the latent GP at x [S, M, D] -> [S, n, M] (float64 Cholesky)."""
    z = x.double() / gp.lengthscale[:, None, :]
    sq = (z[:, :, None, :] - z[:, None, :, :]).pow(2).sum(-1)
    cov = gp.amplitude[:, None, None] * torch.exp(-0.5 * sq)
    eye = torch.eye(x.shape[1], dtype=torch.float64)
    chol = torch.linalg.cholesky(cov + jitter * gp.amplitude[:, None, None] * eye)
    eps = torch.randn(x.shape[0], x.shape[1], n, generator=generator, dtype=torch.float64)
    draws: Tensor = (chol @ eps).transpose(1, 2).float()
    return draws


def stds(sigma: Tensor, sizes: list[int]) -> list[Tensor]:
    """Each parameter's σ for one hidden layer, broadcastable to [S, fan_in, fan_out] and
    [S, fan_out] (the weights' 1/√fan_in not included): σ [S, 4] is (σ_w1, σ_b1, σ_w2,
    σ_b2); σ [S, D + 3] (the ARD variant) has one σ_w1 per input feature, then σ_b1, σ_w2,
    σ_b2."""
    if len(sizes) != 3:
        raise ValueError("the functional prior is written for one hidden layer")
    d = sizes[0]
    first = sigma[:, :1].expand(-1, d) if sigma.shape[1] == len(NAMES) else sigma[:, :d]
    rest = sigma[:, -3:]
    return [first[:, :, None], rest[:, 0, None], rest[:, 1, None, None], rest[:, 2, None]]


def names(width: int, features: list[str]) -> list[str]:
    if width == len(NAMES):
        return list(NAMES)
    return [f"sigma_w1[{f}]" for f in features] + list(NAMES[1:])


def prior_params(
    log_sigma: Tensor, sizes: list[int], n: int, generator: torch.Generator
) -> list[Tensor]:
    """n weight draws per split under the prior (log σ [S, 4] or [S, D + 3]), reparametrised:
    [W1, b1, W2, b2] with shapes [S·n, ...] (split-major)."""
    splits = log_sigma.shape[0]
    ard = log_sigma.shape[1] != len(NAMES)
    sigma = stds(log_sigma.exp(), sizes) if ard else []
    flat = log_sigma.exp()
    params = []
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = torch.randn(splits, n, fan_in, fan_out, generator=generator) / math.sqrt(fan_in)
        b = torch.randn(splits, n, fan_out, generator=generator)
        if ard:
            sw, sb = sigma[2 * layer][:, None], sigma[2 * layer + 1][:, None]
        else:  # one scalar per tensor: its gradient's summation order is the shipped run's
            sw = flat[:, 2 * layer, None, None, None]
            sb = flat[:, 2 * layer + 1, None, None]
        params += [(w * sw).flatten(0, 1), (b * sb).flatten(0, 1)]
    return params


def network_draws(
    log_sigma: Tensor, sizes: list[int], x: Tensor, n: int, generator: torch.Generator
) -> Tensor:
    """Mean-output function values of n prior networks per split at x [S, M, D] -> [S, n, M]."""
    splits, m, _ = x.shape
    params = prior_params(log_sigma, sizes, n, generator)
    inputs = x.repeat_interleave(n, dim=0)  # [S·n, M, D]
    return nets.forward(params, inputs)[..., 0].reshape(splits, n, m)


def sliced_w1(a: Tensor, b: Tensor, projections: int, generator: torch.Generator) -> Tensor:
    """Sliced W1 between the empirical distributions a [S, n, M] and b [S, n, M] (equal n),
    over `projections` random unit directions of R^M per split: [S]."""
    u = torch.randn(a.shape[0], a.shape[2], projections, generator=generator, dtype=a.dtype)
    u = u / u.norm(dim=1, keepdim=True)
    pa = torch.sort(a @ u, dim=1).values
    pb = torch.sort(b @ u, dim=1).values
    return (pa - pb).abs().mean(dim=(1, 2))


def measurement_set(
    x_train: Tensor, lo: Tensor, hi: Tensor, m: int, widen: float, generator: torch.Generator
) -> Tensor:
    """Per split [S, M, D]: M - M//2 training rows, M//2 uniform in the widened box."""
    splits, rows, dim = x_train.shape
    half = m // 2
    idx = torch.randint(0, rows, (splits, m - half), generator=generator)
    picked = x_train[torch.arange(splits)[:, None], idx]
    span = hi - lo
    low = (lo - widen * span)[:, None, :]
    width = ((1 + 2 * widen) * span)[:, None, :]
    uniform = low + width * torch.rand(splits, half, dim, generator=generator)
    return torch.cat([picked, uniform], dim=1)


@dataclass
class Fit:
    log_sigma: Tensor  # [S, 4] or [S, D + 3]
    trace: list[float]  # mean over splits of the step's distance
    names: list[str]

    @property
    def sigma(self) -> Tensor:
        return self.log_sigma.exp()

    def describe(self) -> list[dict[str, float]]:
        return [
            {name: round(float(v), 5) for name, v in zip(self.names, row, strict=True)}
            for row in self.sigma
        ]


def fit(
    gp: GPPrior,
    x_train: Tensor,
    sizes: list[int],
    config: FitConfig,
    generator: torch.Generator,
    start: Tensor | None = None,
) -> Fit:
    """Adam on log σ [S, 4] ([S, D + 3] with config.ard) minimising each split's sliced W1
    to its GP (the splits' losses summed: their parameters are independent)."""
    splits = x_train.shape[0]
    lo, hi = x_train.min(1).values, x_train.max(1).values
    width = sizes[0] + 3 if config.ard else len(NAMES)
    init = torch.zeros(splits, width) if start is None else start.clone()
    log_sigma = init.requires_grad_(True)
    optimiser = torch.optim.Adam([log_sigma], lr=config.lr)
    trace = []
    for _ in range(config.steps):
        x = measurement_set(x_train, lo, hi, config.measure, config.widen, generator)
        target = gp_draws(gp, x, config.functions, config.jitter, generator)
        draws = network_draws(log_sigma, sizes, x, config.functions, generator)
        loss = sliced_w1(draws, target, config.projections, generator)
        optimiser.zero_grad()
        (log_sigma.grad,) = torch.autograd.grad(loss.sum(), [log_sigma])
        optimiser.step()
        trace.append(float(loss.detach().mean()))
    return Fit(log_sigma.detach(), trace, names(width, [f"x{i}" for i in range(sizes[0])]))


def hierarchical_draws(
    sizes: list[int], splits: int, n: int, x: Tensor, shape: float, rate: float, g: torch.Generator
) -> Tensor:
    """The SGHMC models' prior: λ_l ~ Gamma(shape, rate) per layer and network, then every
    weight and bias of layer l ~ N(0, 1/λ_l). Mean-output values at x [S, M, D] -> [S, n, M]."""
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        conc = torch.full((splits * n,), float(shape))
        lam = torch._standard_gamma(conc, generator=g) / rate
        sd = lam.rsqrt()
        params.append(torch.randn(splits * n, fan_in, fan_out, generator=g) * sd[:, None, None])
        params.append(torch.randn(splits * n, fan_out, generator=g) * sd[:, None])
    inputs = x.repeat_interleave(n, dim=0)
    return nets.forward(params, inputs)[..., 0].reshape(splits, n, x.shape[1])


def distances(
    gp: GPPrior,
    x_train: Tensor,
    sizes: list[int],
    fitted: Tensor,
    config: FitConfig,
    hierarchical: tuple[float, float],
    seed: int,
) -> dict[str, Any]:
    """Per split, the sliced W1 to the GP on one fixed evaluation draw (measurement set, GP
    draws, directions: the same for every prior) of the fitted prior, the default N(0, 1/fan_in)
    init (σ = 1), the SGHMC models' hierarchical prior, and a second independent GP draw (the
    estimator's floor at this n); and, as sd_<name>, each one's marginal sd of f over its
    draws, averaged over the measurement set's training rows and over its box points."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = x_train.min(1).values, x_train.max(1).values
    n = config.functions
    with torch.no_grad():
        x = measurement_set(x_train, lo, hi, config.measure, config.widen, g)
        target = gp_draws(gp, x, n, config.jitter, g)
        candidates = {
            "fitted": network_draws(fitted, sizes, x, n, g),
            "unit_sigma": network_draws(torch.zeros_like(fitted), sizes, x, n, g),
            "sghmc_hierarchical": hierarchical_draws(sizes, x.shape[0], n, x, *hierarchical, g),
            "gp_floor": gp_draws(gp, x, n, config.jitter, g),
        }
        state = g.get_state()
        out: dict[str, Any] = {}
        half = config.measure - config.measure // 2  # the training rows come first
        for name, draws in {"gp": target, **candidates}.items():
            sd = draws.std(1)  # [S, M]: each measurement point's sd over function draws
            out[f"sd_{name}"] = {
                "training_rows": [float(v) for v in sd[:, :half].mean(1)],
                "box_points": [float(v) for v in sd[:, half:].mean(1)],
            }
            if name == "gp":
                continue
            g.set_state(state)  # the same directions for every candidate
            out[name] = [float(v) for v in sliced_w1(draws, target, config.projections, g)]
    return out


def fixed_prior(sigma: Tensor, sizes: list[int], chains: int) -> Any:
    """−log p(θ) per network [P] under the fitted Gaussian prior, σ [S, 4] or [S, D + 3]
    repeated over each split's chains (network i·C + c is chain c of split i)."""
    per_net = sigma.repeat_interleave(chains, dim=0)
    if sigma.shape[1] == len(NAMES):  # one precision per tensor and network
        precision = []
        for layer, fan_in in enumerate(sizes[:-1]):
            precision.append(fan_in / per_net[:, 2 * layer] ** 2)
            precision.append(1.0 / per_net[:, 2 * layer + 1] ** 2)

        def prior(theta: list[Tensor]) -> Tensor:
            return sum(  # type: ignore[return-value]
                0.5 * lam * t.pow(2).flatten(1).sum(1)
                for lam, t in zip(precision, theta, strict=True)
            )

        return prior
    fans = [sizes[0], 1, sizes[1], 1]
    full = [fan / sd**2 for fan, sd in zip(fans, stds(per_net, sizes), strict=True)]

    def ard_prior(theta: list[Tensor]) -> Tensor:
        return sum(  # type: ignore[return-value]
            0.5 * (lam * t.pow(2)).flatten(1).sum(1) for lam, t in zip(full, theta, strict=True)
        )

    return ard_prior

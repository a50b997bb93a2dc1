"""Stochastic-gradient Hamiltonian Monte Carlo (Chen, Fox & Guestrin 2014), our own code,
vectorised over independent chains (every parameter tensor has a leading chain axis).

Continuous dynamics with a diagonal mass M and friction C: dθ = M⁻¹r dt,
dr = −∇U dt − C M⁻¹ r dt + N(0, 2C dt), stationary ∝ exp(−U(θ)). Discretised with step ε and
written for the velocity v = ε M⁻¹ r, choosing the friction C = α M / ε (α is then the
fraction of momentum lost per step):

    v ← (1 − α) v − η M⁻¹ ∇Ũ(θ) + N(0, 2 α η M⁻¹),    θ ← θ + v,     η = ε²

∇Ũ is a minibatch estimate of ∇U (the data term scaled by N/B); its own noise is not
subtracted (β̂ = 0), which is the usual choice for small η. M⁻¹ is diagonal: 1/√V with V an
exponential average of squared gradients taken during burn-in only (frozen afterwards, so
the kept draws come from a fixed-mass sampler), as in scale-adapted SGHMC (Springenberg et
al. 2016); or M = I. Draws: after `burn_in` steps, every `thin`-th step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm


@dataclass(frozen=True)
class Config:
    lr: float  # η = ε² (parameter units when preconditioned)
    alpha: float  # momentum decay per step, α = ε C M⁻¹
    burn_in: int
    thin: int
    draws: int  # kept per chain
    precondition: bool = True
    average: float = 0.99  # of the squared-gradient average during burn-in
    hyper_every: int = 0  # call the hyper-parameter update every this many steps (0: never)

    @property
    def steps(self) -> int:
        return self.burn_in + self.thin * self.draws

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "steps": self.steps}


Potential = Callable[[list[Tensor], int], Tensor]
Hyper = Callable[[list[Tensor], int], None]


def sample(
    params: list[Tensor],
    potential: Potential,
    config: Config,
    generator: torch.Generator,
    hyper: Hyper | None = None,
    desc: str = "sghmc",
    progress: bool = True,
) -> list[Tensor]:
    """Run the chains from `params`; `potential(params, step)` returns Ũ summed over chains
    (chains are independent, so its gradient is every chain's own). Returns one tensor per
    parameter with the draws stacked on a new leading axis: [draws, chains, ...]."""
    theta = [p.detach().clone() for p in params]
    velocity = [torch.zeros_like(p) for p in theta]
    square: list[Tensor] | None = None
    minv = [torch.ones_like(p) for p in theta]
    kept: list[list[Tensor]] = [[] for _ in theta]
    for step in tqdm(range(config.steps), desc=desc, leave=False, disable=not progress):
        if hyper is not None and config.hyper_every and step % config.hyper_every == 0:
            hyper(theta, step)
        for p in theta:
            p.requires_grad_(True)
        grads = torch.autograd.grad(potential(theta, step), theta)
        with torch.no_grad():
            if config.precondition and step < config.burn_in:
                if square is None:
                    square = [g * g for g in grads]
                else:
                    for s, g in zip(square, grads, strict=True):
                        s.mul_(config.average).addcmul_(g, g, value=1 - config.average)
                minv = [1.0 / (s.sqrt() + 1e-6) for s in square]
            theta = [p.detach() for p in theta]
            for p, v, g, m in zip(theta, velocity, grads, minv, strict=True):
                noise = torch.randn(p.shape, generator=generator)
                v.mul_(1 - config.alpha).sub_(config.lr * m * g)
                v.add_(noise * torch.sqrt(2 * config.alpha * config.lr * m))
                p.add_(v)
            done = step + 1 - config.burn_in
            if done > 0 and done % config.thin == 0:
                for store, p in zip(kept, theta, strict=True):
                    store.append(p.clone())
    return [torch.stack(store) for store in kept]


def gibbs_precisions(
    params: list[Tensor], shape: float, rate: float, generator: torch.Generator
) -> Tensor:
    """One Gibbs draw of a Gaussian prior precision per (layer, chain) under a Gamma(shape,
    rate) hyperprior: λ | w ~ Gamma(shape + n/2, rate + Σw²/2), weights and bias of a layer
    sharing one λ. Returns [layers, chains]."""
    out = []
    for i in range(0, len(params), 2):
        sq = params[i].pow(2).flatten(1).sum(1) + params[i + 1].pow(2).flatten(1).sum(1)
        n = params[i][0].numel() + params[i + 1][0].numel()
        conc = torch.full_like(sq, shape + n / 2)
        gamma = torch._standard_gamma(conc, generator=generator)  # type: ignore[call-arg]
        out.append(gamma / (rate + sq / 2))
    return torch.stack(out)

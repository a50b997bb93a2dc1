"""Full-batch Hamiltonian Monte Carlo, our own code, vectorised over independent chains (every
parameter tensor has a leading chain axis P; the potential returns one value per chain).

Each iteration: momentum r ~ N(0, M) with a diagonal mass M, `leapfrog` steps of size ε, a
Metropolis accept/reject per chain on the energy error (a trajectory whose energy is NaN or
inf, or rises by more than 1000, is rejected: a divergence). The chains move in lockstep, so all
P chains cost one batched gradient per leapfrog step; ε differs per chain and is jittered by
±`jitter` each iteration (against periodic trajectories), the number of steps is shared.

Warmup as Stan does it (Hoffman & Gelman 2014; Stan reference manual, "HMC algorithm
parameters"): ε by dual averaging towards `target_accept` throughout; M⁻¹ set to each chain's
regularised per-coordinate variance at the end of slow windows that double in length, between
a first and a last fast window; dual averaging restarts after each mass update. After warmup ε
is frozen at its dual-averaged value and every iteration is a draw."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

Potential = Callable[[list[Tensor]], Tensor]  # params -> U per chain [P]
Hook = Callable[[list[Tensor], int], None]  # (params, iteration) -> None


@dataclass(frozen=True)
class Config:
    warmup: int
    draws: int  # iterations kept per chain after warmup
    leapfrog: int  # steps per trajectory
    target_accept: float = 0.8
    jitter: float = 0.2
    init_buffer: int = 75  # Stan's defaults for the fast / slow adaptation windows
    term_buffer: int = 50
    base_window: int = 25

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "gradients_per_chain": (self.warmup + self.draws) * self.leapfrog}


def slow_windows(config: Config) -> list[tuple[int, int]]:
    """The [start, end) iterations whose positions estimate M⁻¹, set at each end (Stan's
    windowing; 15% / 75% / 10% when the warmup is too short for the default buffers)."""
    init, term, base = config.init_buffer, config.term_buffer, config.base_window
    if init + term + base > config.warmup:
        init, term = int(0.15 * config.warmup), int(0.1 * config.warmup)
        base = config.warmup - init - term
    windows, start, size = [], init, base
    last = config.warmup - term
    while start < last:
        end = start + size
        if end + 2 * size > last:  # the next window would not fit: this one takes the rest
            end = last
        windows.append((start, end))
        start, size = end, 2 * size
    return windows


@dataclass
class DualAveraging:
    """Nesterov dual averaging of log ε per chain (Hoffman & Gelman 2014, section 3.2)."""

    step: Tensor  # ε [P]
    target: float
    gamma: float = 0.05
    t0: float = 10.0
    kappa: float = 0.75
    mu: Tensor = field(init=False)
    h_bar: Tensor = field(init=False)
    log_bar: Tensor = field(init=False)
    t: int = 0

    def __post_init__(self) -> None:
        self.mu = torch.log(10 * self.step)
        self.h_bar = torch.zeros_like(self.step)
        self.log_bar = torch.zeros_like(self.step)

    def update(self, accept: Tensor) -> Tensor:
        self.t += 1
        w = 1 / (self.t + self.t0)
        self.h_bar = (1 - w) * self.h_bar + w * (self.target - accept)
        log_step = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        eta = self.t**-self.kappa
        self.log_bar = eta * log_step + (1 - eta) * self.log_bar
        self.step = log_step.exp()
        return self.step

    @property
    def final(self) -> Tensor:
        return self.log_bar.exp()


@dataclass
class Stats:
    """What the run did, per chain: the final ε, the mean acceptance probability and the
    divergences among the kept iterations, and M⁻¹."""

    step: Tensor
    accept: Tensor
    divergent: Tensor
    inverse_mass: list[Tensor]
    warmup_divergent: Tensor

    def describe(self) -> dict[str, Any]:
        scale = torch.cat([m.flatten(1) for m in self.inverse_mass], 1).sqrt()
        return {
            "step_size": _spread(self.step),
            "accept_prob": _spread(self.accept),
            "divergent_kept": int(self.divergent.sum()),
            "divergent_warmup": int(self.warmup_divergent.sum()),
            "posterior_sd_median_from_mass": _spread(scale.median(1).values),
        }


def _spread(values: Tensor) -> dict[str, float]:
    return {
        "min": float(values.min()),
        "median": float(values.median()),
        "max": float(values.max()),
    }


def _per_chain(values: Tensor, like: Tensor) -> Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


class Sampler:
    """One set of P chains: the current position, its potential and gradient, ε and M⁻¹."""

    def __init__(self, params: list[Tensor], potential: Potential, generator: torch.Generator):
        self.potential = potential
        self.generator = generator
        self.theta = [p.detach().clone() for p in params]
        self.inverse_mass = [torch.ones_like(p) for p in self.theta]
        self.u, self.grads = self.gradient(self.theta)

    def gradient(self, theta: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        leaves = [p.detach().requires_grad_(True) for p in theta]
        u = self.potential(leaves)
        grads = torch.autograd.grad(u.sum(), leaves)
        return u.detach(), [g.detach() for g in grads]

    def kinetic(self, momentum: list[Tensor]) -> Tensor:
        return sum(  # type: ignore[return-value]
            0.5 * (r * r * m).flatten(1).sum(1)
            for r, m in zip(momentum, self.inverse_mass, strict=True)
        )

    def momentum(self) -> list[Tensor]:
        return [
            torch.randn(p.shape, generator=self.generator, dtype=p.dtype) / m.sqrt()
            for p, m in zip(self.theta, self.inverse_mass, strict=True)
        ]

    def transition(self, step: Tensor, leapfrog: int) -> tuple[Tensor, Tensor]:
        """One HMC iteration with per-chain ε [P]. Returns (acceptance probability, divergent)."""
        r = self.momentum()
        h0 = self.u + self.kinetic(r)
        theta, u, grads = self.theta, self.u, self.grads
        for _ in range(leapfrog):
            r = [ri - 0.5 * _per_chain(step, g) * g for ri, g in zip(r, grads, strict=True)]
            theta = [
                t + _per_chain(step, t) * m * ri
                for t, m, ri in zip(theta, self.inverse_mass, r, strict=True)
            ]
            u, grads = self.gradient(theta)
            r = [ri - 0.5 * _per_chain(step, g) * g for ri, g in zip(r, grads, strict=True)]
        error = u + self.kinetic(r) - h0
        divergent = ~torch.isfinite(error) | (error > 1000)
        log_accept = torch.where(divergent, torch.full_like(error, -math.inf), -error)
        accept = log_accept.clamp(max=0).exp()
        uniform = torch.rand(accept.shape, generator=self.generator, dtype=accept.dtype)
        take = uniform < accept
        self.theta = [
            torch.where(_per_chain(take, t), t, t0) for t, t0 in zip(theta, self.theta, strict=True)
        ]
        self.grads = [
            torch.where(_per_chain(take, g), g, g0) for g, g0 in zip(grads, self.grads, strict=True)
        ]
        self.u = torch.where(take, u, self.u)
        return accept, divergent

    def initial_step(self, start: float = 0.1) -> Tensor:
        """Per chain, halve or double ε from `start` until a single leapfrog step's acceptance
        crosses 1/2 (Hoffman & Gelman 2014, algorithm 4), without moving the chains."""
        p = self.u.shape[0]
        step = torch.full((p,), start, dtype=self.u.dtype)
        saved = (self.theta, self.u, self.grads)
        first = self.transition(step, 1)[0]
        self.theta, self.u, self.grads = saved
        up = first > 0.5
        active = torch.ones(p, dtype=torch.bool)
        for _ in range(40):
            trial = torch.where(active, torch.where(up, step * 2, step / 2), step)
            accept = self.transition(trial, 1)[0]
            self.theta, self.u, self.grads = saved
            crossed = torch.where(up, accept <= 0.5, accept > 0.5)
            step = torch.where(active & ~crossed, trial, step)
            active &= ~crossed
            if not active.any():
                break
        return step


class Moments:
    """Running per-coordinate sums of the positions in a slow window (float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.first: list[Tensor] = []
        self.second: list[Tensor] = []

    def add(self, theta: list[Tensor]) -> None:
        values = [t.double() for t in theta]
        if not self.n:
            self.first = [torch.zeros_like(v) for v in values]
            self.second = [torch.zeros_like(v) for v in values]
        self.n += 1
        for f, s, v in zip(self.first, self.second, values, strict=True):
            f.add_(v)
            s.add_(v * v)

    def inverse_mass(self, like: list[Tensor]) -> list[Tensor]:
        """The window's variance shrunk towards 1e-3 as Stan does:
        (n / (n + 5)) var + 1e-3 · 5 / (n + 5)."""
        n = self.n
        out = []
        for f, s, t in zip(self.first, self.second, like, strict=True):
            var = ((s - f * f / n) / max(n - 1, 1)).clamp(min=0)
            out.append(((n / (n + 5)) * var + 1e-3 * (5 / (n + 5))).to(t.dtype))
        return out


def sample(
    params: list[Tensor],
    potential: Potential,
    config: Config,
    generator: torch.Generator,
    record: Hook | None = None,
    desc: str = "hmc",
    progress: bool = True,
) -> tuple[list[Tensor], Stats]:
    """Run the chains from `params`; `record(params, k)` sees the k-th kept position of every
    chain. Returns the final positions and the run's Stats."""
    sampler = Sampler(params, potential, generator)
    windows = slow_windows(config)
    adapt = DualAveraging(sampler.initial_step(), config.target_accept)
    moments = Moments()
    kept_accept, kept_div = [], []
    warm_div = torch.zeros(sampler.u.shape[0], dtype=torch.long)
    step = adapt.step
    for it in tqdm(
        range(config.warmup + config.draws), desc=desc, leave=False, disable=not progress
    ):
        warm = it < config.warmup
        base = adapt.step if warm else step
        spread = 1 + config.jitter * (2 * torch.rand(base.shape, generator=generator) - 1)
        accept, divergent = sampler.transition(base * spread.to(base.dtype), config.leapfrog)
        if not warm:
            kept_accept.append(accept)
            kept_div.append(divergent)
            if record is not None:
                record(sampler.theta, it - config.warmup)
            continue
        warm_div += divergent.long()
        adapt.update(accept)
        if any(start <= it < end for start, end in windows):
            moments.add(sampler.theta)
        if any(it + 1 == end for _, end in windows):
            sampler.inverse_mass = moments.inverse_mass(sampler.theta)
            moments = Moments()
            adapt = DualAveraging(sampler.initial_step(), config.target_accept)
        if it + 1 == config.warmup:
            step = adapt.final
    stats = Stats(
        step=step,
        accept=torch.stack(kept_accept).mean(0) if kept_accept else torch.zeros_like(step),
        divergent=torch.stack(kept_div).sum(0) if kept_div else torch.zeros_like(step),
        inverse_mass=sampler.inverse_mass,
        warmup_divergent=warm_div,
    )
    return sampler.theta, stats

"""python -m training.bayesian.hmc_job --out models --docs docs/models [--smoke] [--splits N]
[--only concrete,diabetes]: the full-batch HMC reference (issue 51, item 1).

The same model as concrete-sghmc / diabetes-sghmc: a heteroscedastic D-50-2 MLP (softplus
variance with the same floor), N(0, 1/λ_l) on every weight and bias of layer l, λ_l ~
Gamma(1, 1), on the same 20 seeded 90/10 splits, standardised on each training part. What
differs is the sampler: every gradient is over the full training part (no minibatch noise) and
every trajectory passes a Metropolis test, so the chains target the exact posterior.

λ_l is integrated out rather than Gibbs-sampled as SGHMC does: with n_l weights in the layer
the marginal prior is ∝ (b + |θ_l|²/2)^−(a + n_l/2) (a multivariate Student-t), so HMC samples
the weights' exact marginal posterior, the same one the SGHMC joint has. In a pilot on split 0
HMC within Gibbs drifted: λ and the weights' norm move each other only a little per iteration,
and the training log-likelihood kept rising over 200 kept iterations (its R-hat 1.99 against
1.28 with λ held fixed). The λ_l reported on the card are draws from λ_l | θ at each kept
iteration (a separate generator, so recording does not change the chains).

All splits × chains run as one vectorised sampler (chain c of split i is network i·C + c).
Each chain starts from its own short full-batch Adam fit (different random inits, so chains
can land in different modes: R-hat then shows it). Kept draws: every iteration after warmup;
the protocol and the shipped graph use every `thin`-th per chain; the reference predictive on
split 0 (distances to SGHMC) uses all of them. Shipped: concrete-hmc, split 0's draws."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from training.bayesian import diagnostics, hmc, hmc_cards, metrics, nets, regression, sghmc
from training.bayesian.regression import Dataset, Split

SEED = regression.SEED
FLOOR = regression.SGHMC_FLOOR
KEYS = ("concrete", "diabetes")
WATCHED = ("W1[0,0]", "b1[0]", "W2[0,mean]", "b2[mean]")  # a few raw weights for R-hat


@dataclass(frozen=True)
class Settings:
    splits: int
    chains: int
    sampler: hmc.Config
    thin: int  # protocol / shipped draws: every thin-th kept iteration per chain
    init_steps: int  # full-batch Adam steps from each chain's random init
    init_lr: float

    @property
    def shipped_draws(self) -> int:
        return self.chains * (self.sampler.draws // self.thin)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "sampler": self.sampler.describe()}


def settings(smoke: bool, splits: int | None, key: str) -> Settings:
    """Full runs fit a shared 2-core machine: diabetes (398 training rows) gets 40,000
    gradients per chain; concrete (927 rows, each gradient ~4x dearer over 80 networks) gets
    18,000 and a shorter Adam start."""
    if smoke:
        config = hmc.Config(warmup=40, draws=20, leapfrog=4)
        return Settings(splits or 2, 4, config, 5, 50, 1e-2)
    if key == "concrete":
        config = hmc.Config(warmup=150, draws=150, leapfrog=60)
        return Settings(splits or 20, 4, config, 5, 500, 1e-2)
    config = hmc.Config(warmup=200, draws=200, leapfrog=100)
    return Settings(splits or 20, 4, config, 5, 1500, 1e-2)


@dataclass
class Trace:
    """Per kept iteration (k) and network (p), everything the card needs."""

    test_mean: list[Tensor]  # [P, N_test] standardised
    test_var: list[Tensor]
    loglik: list[Tensor]  # [P] total training log-likelihood
    watched: list[Tensor]  # [P, len(WATCHED)]
    precision: list[Tensor]  # [P, layers]
    shipped: list[list[Tensor]]  # every thin-th: params

    @classmethod
    def empty(cls) -> Trace:
        return cls([], [], [], [], [], [])

    def per_chain(self, values: list[Tensor], split: int, chains: int) -> np.ndarray:
        """[chains, kept, ...] of split i from a list of [P, ...]."""
        stack = torch.stack(values)[:, split * chains : (split + 1) * chains]
        return stack.transpose(0, 1).double().numpy()


def watched(theta: list[Tensor]) -> Tensor:
    return torch.stack(
        [theta[0][:, 0, 0], theta[1][:, 0], theta[2][:, 0, 0], theta[3][:, 0]], dim=1
    )


def marginal_prior(theta: list[Tensor]) -> Tensor:
    """−log p(θ) up to a constant with each layer's λ ~ Gamma(a, b) integrated out:
    Σ_l (a + n_l / 2) log(b + |θ_l|² / 2), per network [P]."""
    a, b = regression.PRIOR_SHAPE, regression.PRIOR_RATE
    total = torch.zeros(theta[0].shape[0], dtype=theta[0].dtype)
    for i in range(0, len(theta), 2):
        n = theta[i][0].numel() + theta[i + 1][0].numel()
        total = total + (a + n / 2) * torch.log(b + 0.5 * nets.l2(theta[i : i + 2]))
    return total


class Model:
    """The stacked networks of every split and chain, with their data and prior precisions."""

    def __init__(self, ds: Dataset, splits: list[Split], chains: int) -> None:
        self.x = regression.stacked([sp.z_train for sp in splits], chains)
        self.y = regression.stacked([sp.t_train for sp in splits], chains)
        self.x_test = regression.stacked(
            [(sp.x_test - sp.x_shift) / sp.x_scale for sp in splits], chains
        )

    def nll(self, theta: list[Tensor]) -> Tensor:
        mean, var = nets.hetero(nets.forward(theta, self.x), FLOOR)
        return nets.gaussian_nll(mean, var, self.y).sum(1)

    def potential(self, theta: list[Tensor]) -> Tensor:
        return self.nll(theta) + marginal_prior(theta)

    def initial(self, sizes: list[int], s: Settings, generator: torch.Generator) -> list[Tensor]:
        """Each network from its own random init after `init_steps` full-batch Adam steps on
        U / n."""
        theta = [p.requires_grad_(True) for p in nets.init_mlp(self.x.shape[0], sizes, generator)]
        optimiser = torch.optim.Adam(theta, lr=s.init_lr)
        for _ in range(s.init_steps):
            optimiser.zero_grad()
            loss = self.potential(theta).sum() / self.x.shape[1]
            grads = torch.autograd.grad(loss, theta)
            for p, g in zip(theta, grads, strict=True):
                p.grad = g
            optimiser.step()
        return [p.detach() for p in theta]


def sample_all(
    ds: Dataset, splits: list[Split], s: Settings, progress: bool = True
) -> tuple[Trace, hmc.Stats]:
    """The one vectorised run over every split and chain."""
    model = Model(ds, splits, s.chains)
    generator = torch.Generator().manual_seed(SEED)
    hyper = torch.Generator().manual_seed(SEED + 1)
    trace = Trace.empty()

    def record(theta: list[Tensor], k: int) -> None:
        with torch.no_grad():
            mean, var = nets.hetero(nets.forward(theta, model.x_test), FLOOR)
            trace.test_mean.append(mean)
            trace.test_var.append(var)
            trace.loglik.append(-model.nll(theta))
            trace.watched.append(watched(theta))
            shape, rate = regression.PRIOR_SHAPE, regression.PRIOR_RATE
            trace.precision.append(sghmc.gibbs_precisions(theta, shape, rate, hyper).T)
            if (k + 1) % s.thin == 0:
                trace.shipped.append([t.clone() for t in theta])

    start = model.initial(ds.sizes, s, generator)
    _, stats = hmc.sample(
        start, model.potential, s.sampler, generator, record, f"{ds.key} hmc", progress
    )
    return trace, stats


@dataclass
class SplitRun:
    """One split's outcome: the shipped module, the all-draw test predictive in target units
    [S_all, N_test], and its convergence diagnostics."""

    module: Any
    ref_mean: np.ndarray
    ref_var: np.ndarray
    chain_mean: np.ndarray  # [C, K, N_test] per-draw predictive means, target units
    chain_var: np.ndarray
    convergence: dict[str, dict[str, float]]


def per_split(trace: Trace, split: Split, i: int, s: Settings) -> SplitRun:
    c = s.chains
    mean = split.y_shift + split.y_scale * trace.per_chain(trace.test_mean, i, c)
    var = split.y_scale**2 * trace.per_chain(trace.test_var, i, c)
    convergence = {
        "predictive_mean_test_rows": diagnostics.summary(mean),
        "train_loglik": diagnostics.summary(trace.per_chain(trace.loglik, i, c)),
        "prior_precisions": diagnostics.summary(trace.per_chain(trace.precision, i, c)),
        "raw_weights": diagnostics.summary(trace.per_chain(trace.watched, i, c)),
    }
    params = [
        torch.stack([d[j][i * c : (i + 1) * c] for d in trace.shipped], 1).flatten(0, 1)
        for j in range(len(trace.shipped[0]))
    ]  # [C · kept/thin, ...], chain-major
    module = regression.module(split, params, params[0].shape[0], FLOOR)
    return SplitRun(
        module,
        mean.reshape(-1, mean.shape[2]),
        var.reshape(-1, var.shape[2]),
        mean,
        var,
        convergence,
    )


def run_dataset(ds: Dataset, s: Settings, out: Path, docs: Path, smoke: bool) -> dict[str, Any]:
    splits = regression.prepare(ds, s.splits)
    start = time.perf_counter()
    trace, stats = sample_all(ds, splits, s)
    seconds = time.perf_counter() - start
    runs = [per_split(trace, sp, i, s) for i, sp in enumerate(splits)]
    protocol = [regression.evaluate(r.module, sp) for r, sp in zip(runs, splits, strict=True)]
    summary = metrics.summarise(protocol)
    context = hmc_cards.Context(ds, s.describe(), stats.describe(), seconds, smoke, out, docs)
    return hmc_cards.write_all(context, splits[0], runs, summary, s.shipped_draws)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.bayesian.hmc_job", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--docs", type=Path, default=Path("docs/models"))
    parser.add_argument("--smoke", action="store_true", help="seconds (tests)")
    parser.add_argument("--splits", type=int, default=None, help="UCI splits (default 20)")
    parser.add_argument("--only", default=",".join(KEYS), help=f"comma-separated: {KEYS}")
    args = parser.parse_args(argv)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    if set(args.only) - set(KEYS):
        parser.error(f"choose datasets from {', '.join(KEYS)}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    args = parse(argv)
    torch.manual_seed(SEED)
    results = {}
    for key in args.only:
        s = settings(args.smoke, args.splits, key)
        results[key] = run_dataset(regression.DATASETS[key], s, args.out, args.docs, args.smoke)
        hmc_cards.print_summary(key, results[key])
    return results


if __name__ == "__main__":
    main()

"""MCMC convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat": the rank-normalised split
R-hat (the larger of the bulk and the folded-tail value) and the bulk effective sample size
(Geyer's initial monotone sequence over the chains' combined autocorrelation, as Stan computes
it). Draws are arrays [chains, draws, ...] (any trailing axes are separate quantities)."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata


def split(draws: np.ndarray) -> np.ndarray:
    """Each chain cut into its two halves (a middle draw of an odd count dropped):
    [2·chains, draws // 2, ...]."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half :]], axis=0)


def rank_normalise(draws: np.ndarray) -> np.ndarray:
    """Φ⁻¹((rank − 3/8) / (S + 1/4)) over all chains' draws pooled, per quantity."""
    flat = draws.reshape(-1, *draws.shape[2:])
    ranks = rankdata(flat, axis=0)
    z: np.ndarray = np.asarray(ndtri((ranks - 0.375) / (flat.shape[0] + 0.25)))
    return z.reshape(draws.shape)


def _basic_rhat(draws: np.ndarray) -> np.ndarray:
    n = draws.shape[1]
    within = draws.var(axis=1, ddof=1).mean(axis=0)
    between = n * draws.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.sqrt(((n - 1) / n * within + between / n) / within)
    return out


def rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat per quantity: max(bulk, folded)."""
    halves = split(np.asarray(draws, np.float64))
    bulk = _basic_rhat(rank_normalise(halves))
    folded = np.abs(halves - np.median(halves.reshape(-1, *halves.shape[2:]), axis=0))
    out: np.ndarray = np.maximum(bulk, _basic_rhat(rank_normalise(folded)))
    return out


def _autocovariance(draws: np.ndarray) -> np.ndarray:
    """Per chain and lag, by FFT: [chains, draws, ...]."""
    n = draws.shape[1]
    centred = draws - draws.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov: np.ndarray = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n
    return acov


def _basic_ess(draws: np.ndarray) -> np.ndarray:
    """Stan's ESS of [chains, draws, Q] (flattened quantities)."""
    chains, n = draws.shape[:2]
    acov = _autocovariance(draws)
    chain_var = acov[:, 0] * n / (n - 1)
    within = chain_var.mean(axis=0)
    var_plus = within * (n - 1) / n
    if chains > 1:
        var_plus = var_plus + draws.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1 - (within - acov.mean(axis=0)) / var_plus  # [n, Q]
    rho[0] = 1.0
    return np.array([_geyer(rho[:, q], chains * n) for q in range(rho.shape[1])])


def _geyer(rho: np.ndarray, total: int) -> float:
    """Sum autocorrelations over pairs of lags while the pair sums stay positive, forced
    monotone (Geyer 1992); τ = −1 + 2 Σ pairs, ESS = total / τ."""
    if not np.all(np.isfinite(rho)):
        return float("nan")
    pairs = rho[:-1:2] + rho[1::2]
    positive = pairs > 0
    count = int(np.argmin(positive)) if not positive.all() else len(pairs)
    pairs = np.minimum.accumulate(pairs[:count]) if count else pairs[:0]
    tau = max(-1 + 2 * float(pairs.sum()), 1 / float(np.log10(total)))
    return total / tau


def ess(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size per quantity (rank-normalised split chains)."""
    draws = np.asarray(draws, np.float64)
    trailing = draws.shape[2:]
    z = rank_normalise(split(draws)).reshape(2 * draws.shape[0], draws.shape[1] // 2, -1)
    return _basic_ess(z).reshape(trailing)


def summary(draws: np.ndarray) -> dict[str, float]:
    """R-hat (max, median) and bulk ESS (min, median) over the quantities of [C, N, ...]."""
    r, e = rhat(draws).ravel(), ess(draws).ravel()
    return {
        "rhat_max": float(np.nanmax(r)),
        "rhat_median": float(np.nanmedian(r)),
        "ess_bulk_min": float(np.nanmin(e)),
        "ess_bulk_median": float(np.nanmedian(e)),
        "quantities": int(r.size),
        "draws": int(draws.shape[0] * draws.shape[1]),
    }

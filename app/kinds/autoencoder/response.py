"""The response side of the `autoencoder` kind: per row, S draws of the decoded means and
variances and of the input's log-likelihood become the posterior predictive reconstruction,
its per-pixel epistemic and aleatoric std, log p(x) and the anomaly score (-log p(x))."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from app.images import png_bytes, to_uint8
from app.kinds.sampler.response import SHEET, display_images, render_images
from app.kinds.spec import Finished, Raw


def summarize(mean: np.ndarray, var: np.ndarray, log_lik: np.ndarray) -> dict[str, np.ndarray]:
    """mean, var [N, S, D], log_lik [N, S] -> per row and pixel: reconstruction, epistemic,
    aleatoric std [N, D]; per row: log p(x) [N] (the mixture over the S draws)."""
    ll = log_lik.astype(np.float64)
    top = ll.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        log_px = (top + np.log(np.exp(ll - top).mean(axis=1, keepdims=True)))[:, 0]
    return {**over_draws(mean, var), "log_likelihood": log_px}


def over_draws(mean: np.ndarray, var: np.ndarray) -> dict[str, np.ndarray]:
    """mean, var [N, S, D] -> per row and pixel [N, D]: the mean over draws, the epistemic std
    (of the draws' means), the aleatoric std (root of the mean variance) and their total."""
    mu = mean.astype(np.float64)
    epistemic = mu.var(axis=1)
    aleatoric = np.maximum(var.astype(np.float64), 0.0).mean(axis=1)
    return {
        "reconstruction": mu.mean(axis=1),
        "epistemic_std": np.sqrt(epistemic),
        "aleatoric_std": np.sqrt(aleatoric),
        "std": np.sqrt(epistemic + aleatoric),
    }


def _png(values: np.ndarray, top: float, shape: list[int]) -> str:
    image = to_uint8(values.reshape(shape) / top)
    return base64.b64encode(png_bytes(image)).decode()


def render(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
) -> dict[str, Any] | Raw:
    assert outcome.tensors is not None
    if meta["op"] == "sample":
        return render_sample(meta, job_id, outcome, accept)
    draws = int(meta["draws"])
    t = {name: value[:, :draws] for name, value in outcome.tensors.items()}
    s = summarize(t["mean"], t["var"], t["log_lik"])
    top = float(meta["levels"]) - 1
    shape = meta.get("image_shape")
    rows = []
    for i in range(len(s["log_likelihood"])):
        ll = float(s["log_likelihood"][i])
        row: dict[str, Any] = {
            "row": i,
            **{k: s[k][i].tolist() for k in ("reconstruction", "epistemic_std", "aleatoric_std")},
            "std": s["std"][i].tolist(),
            "log_likelihood": ll,
            "anomaly_score": -ll,
            "mean_epistemic_std": float(s["epistemic_std"][i].mean()),
            "mean_aleatoric_std": float(s["aleatoric_std"][i].mean()),
        }
        if meta["heatmaps"] and shape:
            row["heatmaps"] = {
                "reconstruction": _png(s["reconstruction"][i], top, shape),
                "epistemic_std": _png(s["epistemic_std"][i], top / 2, shape),
                "aleatoric_std": _png(s["aleatoric_std"][i], top / 2, shape),
            }
        rows.append(row)
    return {
        "job_id": job_id,
        **{
            k: meta[k]
            for k in (
                "model",
                "version",
                "alias",
                "sha256",
                "method",
                "likelihood",
                "levels",
                "image_shape",
                "draws_total",
                "draws",
            )
        },
        "runtime": outcome.info.get("runtime", ""),
        "provider": outcome.info.get("provider", ""),
        "reconstructions": rows,
    }


SAMPLE_FIELDS = ("model", "version", "alias", "sha256", "op", "seed", "n", "temperature")


def render_sample(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
) -> dict[str, Any] | Raw:
    """Per sample: the mean image over the first `draws` decoders (`samples` or `grid`, as
    the sampler kind gives them; the raw PNG sheet on Accept: image/png) and its per-pixel
    epistemic and aleatoric std, in levels."""
    assert outcome.tensors is not None
    draws, shape = int(meta["draws"]), [int(d) for d in meta["sample_shape"]]
    s = over_draws(outcome.tensors["mean"][:, :draws], outcome.tensors["var"][:, :draws])
    n, top = len(s["reconstruction"]), float(meta["levels"]) - 1
    mean = s["reconstruction"].reshape(n, *shape)
    provider = outcome.info.get("provider", "")
    body: dict[str, Any] = {
        "job_id": job_id,
        **{k: meta[k] for k in SAMPLE_FIELDS},
        "labels": None,
        "format": meta["format"],
        "sample_shape": shape,
        "runtime": outcome.info.get("runtime", ""),
        "provider": provider,
        "deterministic": provider.startswith("CPU"),
        "draws_total": meta["draws_total"],
        "draws": draws,
        "epistemic_std": s["epistemic_std"].reshape(n, *shape).tolist(),
        "aleatoric_std": s["aleatoric_std"].reshape(n, *shape).tolist(),
    }
    images = display_images(mean / top, meta) if len(shape) == 2 else None
    return render_images(body, mean, images, meta, accept, ("samples", "grid"), SHEET)

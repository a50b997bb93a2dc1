"""The request side of the `autoregressive` kind: a sample request becomes one row per sample
(the prefix, the first position to draw, each step's uniform from the seed, the temperature,
the label); rows to score become a log-prob job. Pure: no web framework here."""

from __future__ import annotations

import math
import secrets
from typing import Any

import numpy as np
from hanmo_client.schemas import MAX_SEED, LogProbRequest, SampleRequest

from app.errors import InvalidInput
from app.kinds.sampler.request import _labels
from app.kinds.spec import Inputs, JobMeta, Served
from app.noise import uniform_rows

MAX_ROWS = 64  # samples per request: every one runs prod(shape) sequential steps


def signature(served: Served) -> dict[str, Any]:
    found: dict[str, Any] = served.card.get("signature", {})
    return found


def shape(sig: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in sig["shape"])


def is_image(sig: dict[str, Any]) -> bool:
    return bool(sig.get("image", True)) and len(sig["shape"]) == 2


def _shown(sig: dict[str, Any]) -> dict[str, Any]:
    """What the response side needs to draw samples: the shape, the levels, the upscaling."""
    return {
        "sample_shape": list(shape(sig)),
        "vocabulary": int(sig["vocabulary"]),
        "display_scale": int(sig.get("display_scale", 1)),
        "image": is_image(sig),
    }


def prepare(served: Served, request: SampleRequest, max_rows: int) -> tuple[Inputs, JobMeta]:
    """Validate against the card, make each step's uniform from the seed; inputs and meta."""
    sig = signature(served)
    limit = min(MAX_ROWS, max_rows)
    if request.n > limit:
        raise InvalidInput(
            f"n must be at most {limit} for an autoregressive model", errors=[{"field": "n"}]
        )
    if request.format != "array" and not is_image(sig):
        raise InvalidInput(
            f"model {served.model!r} makes arrays, not images: use format=array",
            errors=[{"field": "format"}],
        )
    classes = int(sig.get("classes") or 0)
    labels = _labels({"num_labels": classes}, request.labels, request.n)
    total = math.prod(shape(sig))
    prefix = prefix_levels(sig, request.prefix)
    seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    x = np.zeros((request.n, total), np.int64)
    x[:, : len(prefix)] = prefix
    inputs: Inputs = {
        "x": x,
        "start": np.full(request.n, len(prefix), np.int64),
        "u": uniform_rows(seed, request.n, total),
        "temperature": np.full(request.n, request.temperature, np.float64),
    }
    if labels is not None:
        inputs["label"] = np.asarray(labels, dtype=np.int64)
    meta = JobMeta.of(
        served,
        "sample",
        request,
        seed=seed,
        n=request.n,
        temperature=request.temperature,
        labels=labels,
        prefix_length=len(prefix),
        steps=total - len(prefix),
        format=request.format,
        **_shown(sig),
    )
    return inputs, meta


def prefix_levels(sig: dict[str, Any], prefix: list[list[int]] | None) -> np.ndarray:
    """The prefix as the first k positions (int64 [k]): rows of the sample's last axis, each
    complete but the last (which may stop early), every value a level 0..V-1."""
    if not prefix:
        return np.zeros(0, np.int64)
    dims = shape(sig)
    width, height = dims[-1], math.prod(dims[:-1])
    vocabulary = int(sig["vocabulary"])
    where = [{"field": "prefix"}]
    if len(prefix) > height:
        raise InvalidInput(f"prefix has {len(prefix)} rows; a sample has {height}", errors=where)
    if any(len(row) != width for row in prefix[:-1]) or not 1 <= len(prefix[-1]) <= width:
        raise InvalidInput(
            f"prefix rows must hold {width} levels each (the last may hold 1-{width})",
            errors=where,
        )
    flat = [v for row in prefix for v in row]
    if not all(0 <= v < vocabulary for v in flat):  # before numpy: a huge int would overflow
        raise InvalidInput(f"prefix levels must be in [0, {vocabulary - 1}]", errors=where)
    return np.asarray(flat, dtype=np.int64)


def prepare_log_prob(served: Served, request: LogProbRequest) -> tuple[Inputs, JobMeta]:
    """Complete samples (flattened, P levels each) scored in one pass of the step graph."""
    sig = signature(served)
    total, vocabulary = math.prod(shape(sig)), int(sig["vocabulary"])
    if sig.get("classes"):
        raise InvalidInput(
            f"model {served.model!r} is conditional: /log-prob serves unconditional "
            "autoregressive models only"
        )
    where = [{"field": "rows"}]
    if any(len(row) != total for row in request.rows):
        raise InvalidInput(f"each row needs {total} levels (a whole sample)", errors=where)
    x = np.asarray(request.rows, dtype=np.float64)
    if (x != np.round(x)).any() or x.min() < 0 or x.max() > vocabulary - 1:
        raise InvalidInput(f"values must be integer levels in [0, {vocabulary - 1}]", errors=where)
    meta = JobMeta.of(
        served,
        "log_prob",
        request,
        n=len(request.rows),
        input_dim=total,
        levels=vocabulary,
    )
    return {"x": x.astype(np.int64)}, meta

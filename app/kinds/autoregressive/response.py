"""The response side of the `autoregressive` kind: the sampler kind's answers (arrays, PNGs or
one grid, the raw PNG grid on Accept: image/png; log-likelihoods in nats and bits/dim), the
samples' values being level / (V-1), with the levels themselves. Pure: no web framework."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.kinds.sampler.response import render as render_drawn
from app.kinds.spec import Finished, Raw


@dataclass(frozen=True, slots=True)
class _Values:
    """A finished sample job with its levels as the values the sampler kind renders."""

    tensors: dict[str, np.ndarray] | None
    info: dict[str, Any] = field(default_factory=dict)


def values(levels: np.ndarray, vocabulary: int) -> np.ndarray:
    """Served values in [0, 1] (float32) of levels 0..V-1."""
    out: np.ndarray = (levels.astype(np.float32) / np.float32(vocabulary - 1)).astype(np.float32)
    return out


def render(
    meta: dict[str, Any], job_id: str, outcome: Finished, accept: str | None
) -> dict[str, Any] | Raw:
    """The JSON body (or the PNG grid, when the client accepts image/png) for a finished job."""
    assert outcome.tensors is not None
    if meta["op"] == "log_prob":
        return render_drawn(meta, job_id, outcome, accept)
    levels = outcome.tensors["levels"]
    drawn = _Values({"x": values(levels, int(meta["vocabulary"]))}, outcome.info)
    rendered = render_drawn(meta, job_id, drawn, accept)
    if isinstance(rendered, dict):
        rendered["levels"] = levels.tolist()
    return rendered

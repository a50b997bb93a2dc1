"""A sampler's card signature, typed: what the api needs to make noise and show samples."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, StrictInt

from app.kinds.signature import Count, Signature


class LogProb(Signature):
    input_dim: Count = Field(description="the density's input width D: rows are x [N, D]")
    levels: Count | None = Field(
        default=None, description="discrete pixel levels: inputs must lie in [0, levels - 1]"
    )
    graph: str = Field(default="log_prob", description="the graph role that computes it")


class SamplerSignature(Signature):
    """`graphs.sample` takes noise `z` [N, z_dim] float32 (and `label` [N] int64 when
    conditional) and gives `x` [N, ...] reshaped to `sample_shape`; noise is made by the api
    from the request's seed, never in the graph."""

    z_dim: Count = Field(description="the noise width: z is [N, z_dim] float32, >= 1")
    num_labels: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None,
        description="classes of a conditional sampler (input `label` [N] int64), else null",
    )
    sample_shape: list[Count] = Field(
        default_factory=list,
        description="the shape of one sample, e.g. [28, 28]; a flat `x` is reshaped to it",
    )
    image: StrictBool = Field(
        default=False, description="samples are greyscale images in [0, 1] (PNG and GIF answers)"
    )
    display_scale: Count = Field(default=1, description="pixel upscaling of rendered images")
    log_prob: LogProb | None = Field(
        default=None, description="the model also exports a density: graph role `log_prob`"
    )

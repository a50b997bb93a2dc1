"""An autoregressive model's card signature, typed: the sample's shape, its vocabulary (levels
per position), the order positions are drawn in, and its classes when conditional."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from app.kinds.signature import Count, Signature


class AutoregressiveSignature(Signature):
    """`graphs.step` takes `x` [N, P] int64 (the partial sample in levels, P = prod(shape);
    positions not drawn yet hold 0) and, when `classes` is set, `label` [N] int64; it gives
    `logits` [N, P, V] float32: for every position p the logits of x[p] given x[<p]."""

    shape: list[Count] = Field(
        min_length=1, description="the shape of one sample, e.g. [8, 8]; P = its product"
    )
    vocabulary: Count = Field(
        description="V: each position takes a level 0..V-1 (served value = level / (V-1))"
    )
    order: Literal["raster"] = Field(
        default="raster", description="positions are drawn row-major over the flattened shape"
    )
    classes: Count | None = Field(
        default=None, description="classes of a conditional model (input `label` [N]), else null"
    )
    image: StrictBool = Field(
        default=True, description="samples are greyscale images (PNG answers) when 2-D"
    )
    display_scale: Count = Field(default=1, description="pixel upscaling of rendered images")

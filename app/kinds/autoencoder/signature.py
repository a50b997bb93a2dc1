"""An autoencoder's card signature, typed."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from app.kinds.signature import Count, Signature


class AutoencoderSignature(Signature):
    """`graphs.reconstruct` takes `x` [N, input_dim] float32 (pixel levels 0..levels-1) and gives,
    for all S posterior draws of the decoder at once, the decoded `mean` and `var` [S, N, D] and
    `log_lik` [S, N], the log-likelihood of the input under each draw. An optional
    `graphs.decode` takes `z` [N, latent_dim] float32 and gives the same draws' `mean` and `var`
    [S, N, input_dim]: POST /sample."""

    input_dim: Count = Field(description="the row width D: x is [N, D] float32")
    draws: Count = Field(description="S, the decoder's posterior draws the graph gives per row")
    levels: Annotated[StrictInt, Field(ge=2, le=65_536)] = Field(
        description="pixels are integer levels 0..levels-1"
    )
    image_shape: list[Count] | None = Field(
        default=None, description="[H, W] with H x W = input_dim: rows are images (PNG heatmaps)"
    )
    latent_dim: Count | None = Field(
        default=None, description="the code's width; z [N, latent_dim] of `graphs.decode`"
    )
    display_scale: Count | None = Field(
        default=None, description="sampled PNGs are upscaled by this (nearest neighbour)"
    )
    method: str | None = Field(default=None, description="how the posterior was drawn: sghmc, ...")
    likelihood: str | None = Field(default=None, description="the pixels' likelihood, shown as is")

"""Samplers: /sample, /interpolate and /log-prob, requests and answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from hanmo_client.schemas.common import (
    MAX_ROW_WIDTH,
    MAX_SEED,
    FiniteFloat,
    InferenceOptions,
    Provenance,
    Real,
    StrictInt,
)

MAX_SAMPLE_ROWS = 1024
MAX_LOG_PROB_ROWS = 1024
MAX_LATENT_DIM = 4096
MAX_PREFIX_WIDTH = 1024  # rows of a prefix, and levels in each


class SampleRequest(InferenceOptions):
    n: StrictInt = Field(default=1, ge=1, le=MAX_SAMPLE_ROWS, description="samples to draw")
    seed: StrictInt | None = Field(
        default=None, ge=0, le=MAX_SEED, description="chosen and echoed when absent"
    )
    temperature: float = Field(
        default=1.0, gt=0.0, le=2.0, allow_inf_nan=False, description="scales the prior noise"
    )
    labels: StrictInt | Annotated[list[StrictInt], Field(max_length=MAX_SAMPLE_ROWS)] | None = (
        Field(default=None, description="conditional models: one label per sample, or one for all")
    )
    format: Literal["png", "array", "grid"] = Field(
        default="png", description="`png` per sample, `array` of values, or one `grid` PNG"
    )
    prefix: (
        Annotated[
            list[Annotated[list[StrictInt], Field(min_length=1, max_length=MAX_PREFIX_WIDTH)]],
            Field(min_length=1, max_length=MAX_PREFIX_WIDTH),
        ]
        | None
    ) = Field(
        default=None,
        description="autoregressive models: the first rows of every sample, in levels (the "
        "last row may stop early); the model completes them",
    )
    draws: StrictInt | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="autoencoder models: use the first draws (<= S) of the decoder's posterior",
    )


class SamplerAnswer(Provenance):
    """What every sampler answer carries besides its own fields."""

    op: Literal["sample", "interpolate", "log_prob"]
    deterministic: bool = Field(
        description="true on the CPU provider, where rows are bit-identical across batches"
    )


class Drawn(SamplerAnswer):
    """An answer drawn from the prior: samples, or frames along a path."""

    temperature: float
    sample_shape: list[int] = Field(description="the shape of one sample")


class SampleResponse(Drawn):
    op: Literal["sample"] = "sample"
    seed: int
    n: int
    labels: list[int] | None
    format: Literal["png", "array", "grid"]
    samples: list[Any] | None = Field(
        default=None, description="base64 PNGs (`png`) or nested values (`array`)"
    )
    grid: str | None = Field(default=None, description="one base64 PNG of every sample (`grid`)")
    # autoregressive models only
    levels: list[Any] | None = Field(
        default=None, description="autoregressive models: each sample in levels 0..V-1"
    )
    vocabulary: int | None = Field(default=None, description="autoregressive models: V")
    prefix_length: int | None = Field(
        default=None, description="autoregressive models: positions given by `prefix`"
    )
    steps: int | None = Field(default=None, description="autoregressive models: positions drawn")
    # autoencoder models only (`samples`/`grid` hold the mean image over the decoder's draws)
    draws_total: int | None = Field(
        default=None, description="autoencoder models: S, the decoder draws the model holds"
    )
    draws: int | None = Field(default=None, description="autoencoder models: the draws used")
    epistemic_std: list[Any] | None = Field(
        default=None,
        description="autoencoder models: per sample and pixel, the std of the draws' means "
        "(levels; [n, *sample_shape])",
    )
    aleatoric_std: list[Any] | None = Field(
        default=None,
        description="autoencoder models: per sample and pixel, the root of the mean decoded "
        "variance (levels; [n, *sample_shape])",
    )


class InterpolateRequest(InferenceOptions):
    seeds: list[Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="two seeds: the ends are sample 0 of each seed's noise",
    )
    latents: list[Annotated[list[FiniteFloat], Field(max_length=MAX_LATENT_DIM)]] | None = Field(
        default=None, min_length=2, max_length=2, description="or two latent codes"
    )
    steps: StrictInt = Field(default=8, ge=2, le=64, description="frames, ends included")
    method: Literal["slerp", "linear"] = "slerp"
    labels: StrictInt | None = Field(default=None, description="conditional models: the label")
    temperature: float = Field(default=1.0, gt=0.0, le=2.0, allow_inf_nan=False)
    format: Literal["png", "gif", "array"] = Field(
        default="png", description="`png` per frame, one animated `gif`, or `array`"
    )


class InterpolateResponse(Drawn):
    op: Literal["interpolate"] = "interpolate"
    seeds: list[int] | None
    steps: int
    method: Literal["slerp", "linear"]
    labels: int | None
    format: Literal["png", "gif", "array"]
    frames: list[Any] | None = Field(
        default=None, description="base64 PNGs (`png`) or nested values (`array`)"
    )
    animation: str | None = Field(default=None, description="one base64 GIF (`gif`)")


class LogProbRequest(InferenceOptions):
    rows: list[Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_ROW_WIDTH)]] = Field(
        min_length=1, max_length=MAX_LOG_PROB_ROWS, description="data rows to score"
    )


class LogProbResponse(SamplerAnswer):
    op: Literal["log_prob"] = "log_prob"
    n: int
    input_dim: int
    levels: int | None = Field(description="pixel levels of a discrete density, else null")
    log_prob: list[Real] = Field(description="log-density of each row, in nats")
    bits_per_dim: list[Real]

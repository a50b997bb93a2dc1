"""Request and response bodies of the public API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from app.noise import MAX_SEED

StrictInt = Annotated[int, Strict()]
ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_SAMPLE_ROWS = 1024
MAX_VERSION = 2**31 - 1  # versions and ids fit a 32-bit SQL INTEGER


class InferenceOptions(BaseModel):
    """Routing and deadline options every inference endpoint accepts."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="pin a version"
    )
    alias: str | None = Field(
        default=None, pattern=ALIAS_PATTERN, description="route by alias (default `production`)"
    )
    timeout_ms: StrictInt | None = Field(
        default=None, ge=1, le=3_600_000, description="deadline for the result"
    )
    routing_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="keeps a caller on one side of a canary split (default: the seed)",
    )


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


class SampleResponse(BaseModel):
    job_id: str
    model: str
    version: int
    alias: str | None
    sha256: str
    seed: int
    n: int
    temperature: float
    labels: list[int] | None
    format: str
    sample_shape: list[int]
    runtime: str
    provider: str
    deterministic: bool
    samples: list[Any] | None = None
    grid: str | None = None


class JobAccepted(BaseModel):
    job_id: str
    status: str
    href: str


class JobRead(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    model: str
    version: int
    created_ms: int
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    progress: float | None = Field(default=None, description="long jobs (fonts): 0–1 while running")


MAX_LOG_PROB_ROWS = 1024
MAX_ROW_WIDTH = 4096
MAX_LATENT_DIM = 4096
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


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


class LogProbRequest(InferenceOptions):
    rows: list[Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_ROW_WIDTH)]] = Field(
        min_length=1, max_length=MAX_LOG_PROB_ROWS, description="data rows to score"
    )


MAX_PREDICT_ROWS = 4096
MAX_LEVELS = 9
Level = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)]


class PredictRequest(InferenceOptions):
    inputs: (
        list[Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_ROW_WIDTH)]]
        | list[Annotated[dict[str, FiniteFloat], Field(min_length=1, max_length=MAX_ROW_WIDTH)]]
    ) = Field(
        min_length=1,
        max_length=MAX_PREDICT_ROWS,
        description="rows of features in the card's order, or objects of named features",
    )
    interval: Level | Annotated[list[Level], Field(min_length=1, max_length=MAX_LEVELS)] = Field(
        default=0.9, description="central interval level(s), each in (0, 1)"
    )
    draws: StrictInt | None = Field(
        default=None, ge=1, le=1_000_000, description="use the first draws (<= S) of the posterior"
    )
    return_draws: bool = Field(default=False, description="include each draw's outputs")


class Observation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(pattern=r"^[0-9a-f]{24}$", description="a /predict response's id")
    row: StrictInt = Field(ge=0, lt=MAX_PREDICT_ROWS, description="the row's index in it")
    value: FiniteFloat | None = Field(default=None, description="regression: the observed value")
    label: StrictInt | Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="classification: class index or name"
    )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: list[Observation] = Field(min_length=1, max_length=1024)


# -- style transfer ----------------------------------------------------------------------------

MAX_REFERENCES = 16
MAX_TEXT = 256
MAX_IMAGE_B64 = 4 * 1024 * 1024  # characters of base64 per reference image


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, max_length=MAX_IMAGE_B64, description="base64 PNG/JPEG/WebP")
    char: str = Field(min_length=1, max_length=1, description="the character the image shows")


class StyleSource(BaseModel):
    """Where a style comes from: 1–16 reference glyphs, or a saved style's id."""

    references: list[Reference] | None = Field(
        default=None, min_length=1, max_length=MAX_REFERENCES, description="1–16 glyph images"
    )
    style_id: str | None = Field(default=None, pattern=r"^st_[0-9a-f]{24}$")


class StyleTransferRequest(InferenceOptions, StyleSource):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="the characters to write")
    formats: list[Literal["png", "svg"]] = Field(default=["png"], min_length=1, max_length=2)
    size: StrictInt = Field(default=128, ge=16, le=512, description="glyph PNG/SVG size in px")
    sheet: bool = Field(default=False, description="also return the whole text as one PNG")
    on_stale: Literal["recompute", "fail"] = Field(
        default="recompute",
        description="a saved style made by another version: recompute it from its stored "
        "references, or answer 409",
    )


class StyleCreate(InferenceOptions):
    model: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$", description="a style_transfer model"
    )
    references: list[Reference] | None = Field(
        default=None, min_length=1, max_length=MAX_REFERENCES, description="or multipart images"
    )
    ttl_s: StrictInt | None = Field(
        default=None,
        ge=60,
        le=366 * 86_400,
        description="expiry (default 30 days); DELETE ends it sooner",
    )


class FontRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chars: str | None = Field(
        default=None, min_length=1, max_length=8000, description="default: GB2312 level 1"
    )
    family: str = Field(default="hanmo", pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{0,47}$")
    timeout_ms: StrictInt | None = Field(default=None, ge=1, le=3_600_000)

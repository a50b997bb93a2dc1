"""Request and response bodies of the public API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from app.noise import MAX_SEED

StrictInt = Annotated[int, Strict()]
ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_SAMPLE_ROWS = 1024


class InferenceOptions(BaseModel):
    """Routing and deadline options every inference endpoint accepts."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt | None = Field(default=None, ge=1, description="pin a version")
    alias: str | None = Field(
        default=None, pattern=ALIAS_PATTERN, description="route by alias (default `production`)"
    )
    timeout_ms: StrictInt | None = Field(
        default=None, ge=1, le=3_600_000, description="deadline for the result"
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

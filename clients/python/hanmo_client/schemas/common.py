"""What every part of the API shares: names, limits, number types and the routing options."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

StrictInt = Annotated[int, Strict()]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# A summary the server computed in floating point: null where it is not finite (the server
# writes NaN and ±inf as null), e.g. for inputs far outside what a model was trained on.
Real = float | None

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEFAULT_ALIAS = "production"  # what a request that names neither alias nor version follows
MAX_VERSION = 2**31 - 1  # versions and ids fit a 32-bit SQL INTEGER
MAX_SEED = 2**63 - 1  # seeds key a counter-based generator with a 64-bit word
MAX_ROW_WIDTH = 4096  # values in one input row


class InferenceOptions(BaseModel):
    """Routing and deadline options every inference endpoint accepts."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="pin a version"
    )
    alias: str | None = Field(
        default=None,
        pattern=ALIAS_PATTERN,
        description=f"route by alias (default `{DEFAULT_ALIAS}`)",
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


class Provenance(BaseModel):
    """Which job and model version answered, and on what runtime: part of every inference
    answer, so a result can be traced and reproduced."""

    job_id: str
    model: str
    version: int
    alias: str | None = Field(description="the alias that routed the request; null when pinned")
    sha256: str = Field(description="the version's digest over its files")
    runtime: str = Field(description="e.g. `onnxruntime 1.31.1`")
    provider: str = Field(description="the execution provider, e.g. `CPUExecutionProvider`")

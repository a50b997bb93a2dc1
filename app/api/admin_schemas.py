"""Request and response bodies of the admin API (also used by `app.client`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import ALIAS_PATTERN, MAX_VERSION
from app.registry.cards import NAME_PATTERN

MAX_TAGS = 32


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    kind: Literal["sampler", "predictive", "style_transfer"]
    description: str = Field(default="", max_length=4000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=MAX_TAGS)


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=4000)
    tags: dict[str, str] | None = Field(default=None, max_length=MAX_TAGS)


class ModelInfo(BaseModel):
    name: str
    kind: str
    description: str
    tags: dict[str, str]
    created_at: str
    updated_at: str
    aliases: dict[str, int] | None = None
    versions: int | None = None


class ModelPage(BaseModel):
    models: list[ModelInfo]
    total: int
    next_offset: int | None


class RegisterByUri(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(
        min_length=1,
        max_length=2048,
        description="file:// (inside the configured roots) or s3:// artifact directory",
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="expected version digest (the card's digest over its files)",
    )


class VersionInfo(BaseModel):
    model: str
    version: int
    kind: str
    format: str
    status: Literal["PENDING", "READY", "FAILED", "ARCHIVED"]
    status_message: str
    sha256: str
    artifact_uri: str
    created_at: str
    metrics: dict[str, Any]


class Canary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION)
    weight: float = Field(gt=0.0, lt=1.0, description="share of the alias's traffic")


class AliasPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_VERSION)
    canary: Canary | None = None


class AliasTarget(BaseModel):
    version: int | None
    canary: int | None
    canary_weight: float
    since: str | None = None


class AliasInfo(BaseModel):
    model: str
    alias: str
    version: int | None
    canary: int | None
    canary_weight: float
    pending: AliasTarget | None
    state: Literal["ready", "pending", "failed"]
    last_error: str
    updated_at: str


class AliasEventInfo(BaseModel):
    id: int
    alias: str
    action: str
    actor: str
    from_: dict[str, Any] = Field(alias="from")
    to: dict[str, Any]
    message: str
    at: str

    model_config = ConfigDict(populate_by_name=True)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["admin", "infer"]
    name: str = Field(default="", max_length=128)
    expires_in_s: int | None = Field(default=None, ge=1, le=10 * 366 * 86_400)


class KeyInfo(BaseModel):
    key_id: str
    scope: str
    name: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    key: str | None = Field(default=None, description="the secret: shown once, at creation")


class AuditPage(BaseModel):
    events: list[dict[str, Any]]
    next_before: int | None


ALIAS_PATH_PATTERN = ALIAS_PATTERN

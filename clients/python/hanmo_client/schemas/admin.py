"""The admin API under /admin: models, versions, aliases, workers, queues, keys, audit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hanmo_client.schemas.common import MAX_VERSION, NAME_PATTERN
from hanmo_client.schemas.models import Kind, ModelRead, VersionStatus

MAX_TAGS = 32


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    kind: Kind
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
    status: VersionStatus
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


class AdminModelRead(ModelRead):
    """GET /admin/models/{name}: the public view with tags and each alias's state."""

    tags: dict[str, str]
    alias_states: list[AliasInfo]


class AliasEventTarget(BaseModel):
    version: int | None
    canary: int | None
    canary_weight: float | None


class AliasEventInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    alias: str
    action: str
    actor: str
    from_: AliasEventTarget = Field(alias="from")
    to: AliasEventTarget
    message: str
    at: str


class WorkerInfo(BaseModel):
    id: str
    host: str
    pid: int
    device: str
    models: dict[str, dict[str, Any]] = Field(description="`model:version` -> provider and stats")
    failed_loads: dict[str, Any]
    last_error: str
    beat_age_s: float


class WorkerList(BaseModel):
    workers: list[WorkerInfo]


class QueueInfo(BaseModel):
    model: str
    version: int
    depth: int = Field(description="jobs waiting in the version's stream")
    pending: int = Field(description="entries a worker holds unacknowledged")


class QueueReport(BaseModel):
    queues: list[QueueInfo]
    checks: int = Field(description="version checks waiting for a worker")


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


class AuditEntry(BaseModel):
    id: int
    key_id: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: str


class AuditPage(BaseModel):
    events: list[AuditEntry]
    next_before: int | None

"""The served models: GET /v1/models and GET /v1/models/{name}."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

VersionStatus = Literal["PENDING", "READY", "FAILED", "ARCHIVED"]


class ModelVersionRead(BaseModel):
    version: int
    status: VersionStatus
    format: str
    sha256: str
    created_at: str
    signature: dict[str, Any] = Field(description="the kind's I/O signature from the card")
    metrics: dict[str, Any]
    card: dict[str, Any] = Field(description="the whole model card")


# The kinds a model can be (the server's app/kinds/catalog.py serves each; a test keeps them equal).
Kind = Literal["sampler", "predictive", "style_transfer", "autoencoder", "autoregressive"]


class ModelRead(BaseModel):
    name: str
    kind: Kind
    description: str
    aliases: dict[str, int] = Field(description="alias -> the version it routes to")
    versions: list[ModelVersionRead]


class ModelList(BaseModel):
    models: list[ModelRead]

"""The published model contract: GET /v1/kinds, one entry per kind the server serves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TensorRead(BaseModel):
    name: str
    dtype: str = Field(description="numpy dtype name, e.g. float32, int64")
    shape: list[str | int] = Field(
        description="axes: N rows, S posterior draws, T glyphs, B styles; other names are card "
        "signature fields (`z_dim`), `...sample_shape` its sizes; (F) an optional axis"
    )
    description: str
    optional: str = Field(description="when the tensor exists only sometimes: the condition")


class RoleRead(BaseModel):
    role: str = Field(description="the key of card.json `graphs`")
    inputs: list[TensorRead]
    outputs: list[TensorRead]
    description: str
    optional: str = Field(description="when the role is needed only sometimes: the condition")


class KindRead(BaseModel):
    kind: str = Field(description="card.json `kind`")
    noun: str
    description: str
    routes: list[str] = Field(description="the HTTP routes that serve models of this kind")
    roles: list[RoleRead]
    card_schema: dict[str, Any] = Field(description="JSON Schema of this kind's card.json")
    signature_schema: dict[str, Any] = Field(
        description="JSON Schema of card.json `signature` for this kind"
    )
    card_fields_read: dict[str, str] = Field(
        description="card fields the api and the page read, and what for"
    )


class KindList(BaseModel):
    kinds: list[KindRead]

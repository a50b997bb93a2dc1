"""Read the served models: GET /v1/models, GET /v1/models/{name}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from hanmo_client.schemas import NAME_PATTERN, ModelList, ModelRead

from app.api.deps import StateDep
from app.registry import service

router = APIRouter(prefix="/v1/models", tags=["models"])
ModelName = Path(pattern=NAME_PATTERN, max_length=128)


@router.get("", response_model=ModelList)
async def list_models(state: StateDep) -> dict[str, Any]:
    """Every registered model with its versions, aliases and card."""
    return {"models": await state.registry.call(service.describe_all)}


@router.get("/{name}", response_model=ModelRead)
async def get_model(state: StateDep, name: str = ModelName) -> dict[str, Any]:
    """One model: versions (status, sha256, signature, metrics, card) and aliases."""
    result: dict[str, Any] = await state.registry.call(service.describe, name)
    return result

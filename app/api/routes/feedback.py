"""Calibration feedback: POST /v1/models/{name}/feedback, GET /v1/models/{name}/calibration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from hanmo_client.schemas import (
    ALIAS_PATTERN,
    MAX_VERSION,
    NAME_PATTERN,
    Calibration,
    FeedbackRequest,
    FeedbackResponse,
)

from app.api.deps import StateDep
from app.api.json_body import JsonLimitedRoute
from app.api.state import State
from app.errors import InvalidInput
from app.services import feedback

router = APIRouter(prefix="/v1/models", tags=["uncertainty"], route_class=JsonLimitedRoute)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)


@router.post("/{name}/feedback", response_model=FeedbackResponse)
async def create_feedback(
    body: FeedbackRequest, state: StateDep, name: str = ModelName
) -> dict[str, Any]:
    """Observed outcomes for rows a /predict answered (its prediction_id and the row index),
    kept for the retention period. All are stored, or none when one is bad. Each is scored
    (PIT and NLL, or NLL and correctness) against that row's draws."""
    result = await feedback.record(state.queue, state.sessions, name, body)
    result["calibration"] = {
        str(version): await _summary(state, name, None, version)
        for version in sorted(result.pop("versions"))
    }
    return result


@router.get("/{name}/calibration", response_model=Calibration)
async def get_calibration(
    state: StateDep,
    name: str = ModelName,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    alias: Annotated[str | None, Query(pattern=ALIAS_PATTERN)] = None,
) -> dict[str, Any]:
    """Running calibration of a version from all its feedback: coverage per interval level
    with the band a calibrated model stays in (and warnings), PIT histogram and NLL
    (regression); accuracy, ECE and a reliability table (classification)."""
    return await _summary(state, name, alias, version)


async def _summary(
    state: State, name: str, alias: str | None, version: int | None
) -> dict[str, Any]:
    served = await state.registry.resolve(name, alias, version, want=False)
    if served.kind != "predictive":
        raise InvalidInput(f"model {name!r} is a {served.kind}, not a predictive model")
    stats: dict[str, Any] = await state.registry.call(feedback.summary, served)
    state.metrics.observe_calibration(stats)
    return stats

"""Samplers: POST /v1/models/{name}/sample, /interpolate and /log-prob."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Path, Request
from hanmo_client.schemas import (
    NAME_PATTERN,
    InterpolateRequest,
    InterpolateResponse,
    JobAccepted,
    LogProbRequest,
    LogProbResponse,
    SampleRequest,
    SampleResponse,
)
from starlette.responses import Response

from app.api.deps import AcceptDep, IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import infer
from app.api.json_body import JsonLimitedRoute
from app.kinds.sampler import request as samplers

router = APIRouter(prefix="/v1/models", tags=["sampling"], route_class=JsonLimitedRoute)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
ASYNC_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted (Prefer: respond-async)", "model": JobAccepted}
}


@router.post(
    "/{name}/sample",
    response_model=SampleResponse,
    responses={**ASYNC_RESPONSE, 200: {"content": {"image/png": {}}}},
)
async def create_sample(
    request: Request,
    body: SampleRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    accept: AcceptDep = None,
    name: str = ModelName,
) -> Response:
    """Draw `n` samples; sample i depends only on (model version, seed, i).
    `Accept: image/png` returns all samples as one PNG sheet."""
    max_rows = state.settings.max_sample_rows
    return await infer(
        state,
        request,
        name,
        body,
        "sampler",
        partial(samplers.prepare, request=body, max_rows=max_rows),
        body.n,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=accept,
    )


@router.post(
    "/{name}/interpolate",
    response_model=InterpolateResponse,
    responses={**ASYNC_RESPONSE, 200: {"content": {"image/gif": {}}}},
)
async def create_interpolation(
    request: Request,
    body: InterpolateRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    accept: AcceptDep = None,
    name: str = ModelName,
) -> Response:
    """Frames along a latent path between two seeds (or two codes), `slerp` or `linear`.
    `Accept: image/gif` returns the animation."""
    return await infer(
        state,
        request,
        name,
        body,
        "sampler",
        partial(samplers.prepare_interpolation, request=body),
        body.steps,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=accept,
    )


@router.post("/{name}/log-prob", response_model=LogProbResponse, responses=ASYNC_RESPONSE)
async def create_log_prob(
    request: Request,
    body: LogProbRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    name: str = ModelName,
) -> Response:
    """Log-density (nats) and bits/dim of each row, for samplers that export a density."""
    return await infer(
        state,
        request,
        name,
        body,
        "sampler",
        partial(samplers.prepare_log_prob, request=body),
        len(body.rows),
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=None,
    )

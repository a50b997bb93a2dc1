"""Samplers: POST /v1/models/{name}/sample, /interpolate and /log-prob."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api import samplers
from app.api.deps import AcceptDep, IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import off_loop, run_job
from app.api.schemas import InterpolateRequest, LogProbRequest, SampleRequest, SampleResponse
from app.api.state import State
from app.errors import InvalidInput
from app.registry.cards import NAME_PATTERN
from app.registry.service import ServedVersion

router = APIRouter(prefix="/v1/models", tags=["sampling"])
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
ASYNC_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted (Prefer: respond-async)"}
}


async def _sampler(
    state: State, name: str, alias: str | None, version: int | None
) -> ServedVersion:
    served = await state.registry.resolve(name, alias, version)
    if served.kind != "sampler":
        raise InvalidInput(f"model {name!r} is a {served.kind}, not a sampler")
    return served


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
    served = await _sampler(state, name, body.alias, body.version)
    inputs, meta = await off_loop(
        body.n, samplers.prepare, served, body, state.settings.max_sample_rows
    )
    return await run_job(
        state,
        request.url.path,
        served,
        inputs,
        meta,
        timeout_ms=body.timeout_ms,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=accept,
    )


@router.post(
    "/{name}/interpolate", responses={**ASYNC_RESPONSE, 200: {"content": {"image/gif": {}}}}
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
    served = await _sampler(state, name, body.alias, body.version)
    inputs, meta = samplers.prepare_interpolation(served, body)
    return await run_job(
        state,
        request.url.path,
        served,
        inputs,
        meta,
        timeout_ms=body.timeout_ms,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=accept,
    )


@router.post("/{name}/log-prob", responses=ASYNC_RESPONSE)
async def create_log_prob(
    request: Request,
    body: LogProbRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    name: str = ModelName,
) -> Response:
    """Log-density (nats) and bits/dim of each row, for samplers that export a density."""
    served = await _sampler(state, name, body.alias, body.version)
    inputs, meta = samplers.prepare_log_prob(served, body)
    return await run_job(
        state,
        request.url.path,
        served,
        inputs,
        meta,
        timeout_ms=body.timeout_ms,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=None,
    )

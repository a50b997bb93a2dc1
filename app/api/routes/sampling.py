"""POST /v1/models/{name}/sample: seeded, reproducible samples from a `sampler`."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api import samplers
from app.api.deps import AcceptDep, IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import run_job
from app.api.schemas import SampleRequest, SampleResponse
from app.errors import InvalidInput
from app.registry.cards import NAME_PATTERN

router = APIRouter(prefix="/v1/models", tags=["sampling"])


@router.post(
    "/{name}/sample",
    response_model=SampleResponse,
    responses={
        202: {"description": "accepted (Prefer: respond-async)"},
        200: {"content": {"image/png": {}}},
    },
)
async def create_sample(
    request: Request,
    body: SampleRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    accept: AcceptDep = None,
    name: str = Path(pattern=NAME_PATTERN, max_length=128),
) -> Response:
    """Draw `n` samples; sample i depends only on (model version, seed, i)."""
    served = await state.registry.resolve(name, body.alias, body.version)
    if served.kind != "sampler":
        raise InvalidInput(f"model {name!r} is a {served.kind}; only samplers sample")
    inputs, meta = samplers.prepare(served, body, state.settings.max_sample_rows)
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

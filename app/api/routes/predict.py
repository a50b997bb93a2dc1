"""POST /v1/models/{name}/predict: the posterior predictive of a `predictive` model."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api import predictive
from app.api.deps import IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import off_loop, run_job
from app.api.routes.sampling import ASYNC_RESPONSE
from app.api.schemas import PredictRequest
from app.errors import InvalidInput
from app.registry.cards import NAME_PATTERN

router = APIRouter(prefix="/v1/models", tags=["uncertainty"])


@router.post("/{name}/predict", responses=ASYNC_RESPONSE)
async def create_prediction(
    request: Request,
    body: PredictRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    name: str = Path(pattern=NAME_PATTERN, max_length=128),
) -> Response:
    """Per row: the predictive mean, std split into epistemic and aleatoric parts, intervals
    from the mixture of the draws (regression), or class probabilities with entropy, expected
    entropy and mutual information (classification)."""
    served = await state.registry.resolve(name, body.alias, body.version)
    if served.kind != "predictive":
        raise InvalidInput(f"model {name!r} is a {served.kind}, not a predictive model")
    inputs, meta = await off_loop(len(body.inputs), predictive.prepare, served, body)
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

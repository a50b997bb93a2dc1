"""POST /v1/models/{name}/predict: the posterior predictive of a `predictive` model."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Path, Request
from hanmo_client.schemas import NAME_PATTERN, PredictRequest, PredictResponse
from starlette.responses import Response

from app.api.deps import IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import infer
from app.api.json_body import JsonLimitedRoute
from app.api.routes.sampling import ASYNC_RESPONSE
from app.kinds.predictive import request as predictive

router = APIRouter(prefix="/v1/models", tags=["uncertainty"], route_class=JsonLimitedRoute)


@router.post("/{name}/predict", response_model=PredictResponse, responses=ASYNC_RESPONSE)
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
    return await infer(
        state,
        request,
        name,
        body,
        "predictive",
        partial(predictive.prepare, request=body),
        len(body.inputs),
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=None,
    )

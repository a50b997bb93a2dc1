"""POST /v1/models/{name}/reconstruct: an `autoencoder` model's reconstructions with per-pixel
uncertainty, the input's log-likelihood and an anomaly score."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Path, Request
from hanmo_client.schemas import NAME_PATTERN
from hanmo_client.schemas.autoencoder import ReconstructRequest, ReconstructResponse
from starlette.responses import Response

from app.api.deps import IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import infer
from app.api.json_body import JsonLimitedRoute
from app.api.routes.sampling import ASYNC_RESPONSE
from app.kinds.autoencoder import request as autoencoder

router = APIRouter(prefix="/v1/models", tags=["uncertainty"], route_class=JsonLimitedRoute)


@router.post("/{name}/reconstruct", response_model=ReconstructResponse, responses=ASYNC_RESPONSE)
async def create_reconstruction(
    request: Request,
    body: ReconstructRequest,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    name: str = Path(pattern=NAME_PATTERN, max_length=128),
) -> Response:
    """Per row: the mean reconstruction over the decoder's posterior draws, the per-pixel
    epistemic std (across draws) and aleatoric std (the decoded pixel noise), log p(x) of the
    input under the posterior predictive and the anomaly score -log p(x); PNG heatmaps of the
    uncertainty with `heatmaps: true`."""
    rows = len(body.inputs if body.inputs is not None else body.images or [])
    return await infer(
        state,
        request,
        name,
        body,
        "autoencoder",
        partial(autoencoder.prepare, request=body),
        rows,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=None,
    )

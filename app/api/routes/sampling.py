"""Samplers: POST /v1/models/{name}/sample, /interpolate and /log-prob (/sample and
/log-prob serve autoregressive models too: app/kinds/autoregressive; /sample serves
autoencoders with a decode graph: app/kinds/autoencoder)."""

from __future__ import annotations

from dataclasses import replace
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

from app.api import glyph_events, row_events
from app.api.deadlines import wants_async
from app.api.deps import AcceptDep, IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import JobRunner, deadline_ms, infer, prepare_job
from app.api.json_body import JsonLimitedRoute
from app.api.sse import EVENT_STREAM, slots, wants_events
from app.errors import InvalidInput
from app.kinds.autoencoder import request as autoencoder
from app.kinds.autoregressive import request as ar
from app.kinds.sampler import request as samplers
from app.kinds.spec import Inputs, JobMeta
from app.registry.service import ServedVersion

router = APIRouter(prefix="/v1/models", tags=["sampling"], route_class=JsonLimitedRoute)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
ASYNC_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted (Prefer: respond-async)", "model": JobAccepted}
}
DRAWN = ("sampler", "autoregressive")  # the kinds /sample and /log-prob serve
SAMPLED = (*DRAWN, "autoencoder")  # /sample: an autoencoder's decode graph too


@router.post(
    "/{name}/sample",
    response_model=SampleResponse,
    responses={**ASYNC_RESPONSE, 200: {"content": {"image/png": {}, EVENT_STREAM: {}}}},
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
    `Accept: image/png` returns all samples as one PNG sheet. An autoregressive model also
    takes `prefix` (the first rows of every sample, completed by the model), and with
    `Accept: text/event-stream` streams each image row as it is completed (`row` events, then
    `done` with the JSON answer, or `failed`: app/api/row_events.py). An autoencoder with a
    decode graph gives each sample's mean image over the decoder's draws (`draws` <= S of
    them) with its per-pixel epistemic and aleatoric std."""
    streamed = wants_events(accept) and not wants_async(prefer)
    if streamed:
        slots(request)  # no place for the stream: 503 before any work
    max_rows = state.settings.max_sample_rows

    def prepare(served: ServedVersion) -> tuple[Inputs, JobMeta]:
        if served.kind == "autoencoder":
            return autoencoder.prepare_sample(served, body, max_rows)
        if body.draws is not None:
            raise InvalidInput(
                f"model {served.model!r} is a {served.kind}: `draws` is for autoencoder models",
                errors=[{"field": "draws"}],
            )
        if served.kind == "autoregressive":
            inputs, job = ar.prepare(served, body, max_rows)
            if wants_events(accept):  # its worker writes rows as they are completed
                job = replace(job, fields={**job.fields, "partials": True})
            return inputs, job
        if body.prefix is not None:
            raise InvalidInput(
                f"model {served.model!r} is a sampler: `prefix` is for autoregressive models",
                errors=[{"field": "prefix"}],
            )
        return samplers.prepare(served, body, max_rows)

    served, inputs, job = await prepare_job(state, name, body, SAMPLED, prepare, body.n)
    runner = JobRunner(state, request)
    deadline = deadline_ms(state, body.timeout_ms, wants_async(prefer))
    if streamed and served.kind == "autoregressive":
        return await glyph_events.post_stream(
            runner, served, inputs, job, deadline, idempotency_key, row_events.events
        )
    return await runner.answer(
        served, inputs, job, deadline, prefer=prefer, idempotency_key=idempotency_key, accept=accept
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
    """Log-density (nats) and bits/dim of each row, for samplers that export a density; an
    autoregressive model's exact log-likelihood of complete samples (rows of levels, one
    pass of its step graph)."""

    def prepare(served: ServedVersion) -> tuple[Inputs, JobMeta]:
        if served.kind == "autoregressive":
            return ar.prepare_log_prob(served, body)
        return samplers.prepare_log_prob(served, body)

    return await infer(
        state,
        request,
        name,
        body,
        DRAWN,
        prepare,
        len(body.rows),
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=None,
    )

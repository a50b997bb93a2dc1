"""The path every inference request takes after validation: enqueue, then answer now
(wait for the result) or later (202 + Location), and render the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import numpy as np
import orjson
from hanmo_client.schemas import (
    FontResult,
    InferenceOptions,
    InterpolateResponse,
    JobAccepted,
    LogProbResponse,
    PredictResponse,
    SampleResponse,
    StyleCode,
    StyleTransferResponse,
)
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from app.api import predictive, samplers, style
from app.api.auth import owner_of
from app.api.problems import problem_response
from app.api.state import State
from app.errors import DeadlineExceeded, HanmoError, InvalidInput
from app.queue import keys
from app.queue.client import now_ms
from app.queue.results import Outcome
from app.registry.service import ServedVersion

T = TypeVar("T")
INLINE_ROWS = 64  # work on more rows than this (noise, summaries) runs off the event loop

Renderer = Callable[[dict[str, Any], str, Outcome, str | None], dict[str, Any] | samplers.Raw]
RENDERERS: dict[str, Renderer] = {
    "sampler": samplers.render,
    "predictive": predictive.render,
    "style_transfer": style.render,
}
Validate = Callable[[Any], object]
# The published answer of each job (kind, op): its JSON body is checked against it when sent.
ANSWERS: dict[tuple[str, str], Validate] = {
    ("sampler", "sample"): SampleResponse.model_validate,
    ("sampler", "interpolate"): InterpolateResponse.model_validate,
    ("sampler", "log_prob"): LogProbResponse.model_validate,
    ("predictive", "predict"): TypeAdapter(PredictResponse).validate_python,
    ("style_transfer", "generate"): StyleTransferResponse.model_validate,
    ("style_transfer", "encode"): StyleCode.model_validate,
    ("style_transfer", "font"): FontResult.model_validate,
}


async def off_loop(
    rows: int, fn: Callable[..., T], *args: Any, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """Run small work inline and large work in a thread (at most `limiter`'s tokens at once),
    so a big request does not stall every other request on this process."""
    if rows <= INLINE_ROWS:
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


def render_rows(meta: dict[str, Any], accept: str | None) -> int:
    """What rendering a finished job costs, in the rows `off_loop` counts."""
    if meta["kind"] == "style_transfer":
        return style.render_rows(meta, accept)
    return int(meta.get("n", 1))


async def render_off_loop(
    state: State, path: str, meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> Response:
    """`render_outcome`, in a thread bounded by `state.renders` unless the result is small:
    a 256-character sheet at 512 px held the event loop (and /livez) 15-17 s inline."""
    rows = render_rows(meta, accept) if outcome.ok else 1
    return await off_loop(
        rows, render_outcome, path, meta, job_id, outcome, accept, limiter=state.renders
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def checked_response(
    validate: Validate,
    body: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """`body` as JSON once `validate` (the route's published answer model, the one clients
    parse with) accepts it: a body that breaks the model is a 500 here, not a surprise in a
    client. The dict is encoded, not the model, so the bytes are those the body always had.
    The check costs 0.2 ms for 1,024 PNG samples and 10-30 ms for 4,096 predicted rows (2-3%
    of that request), measured 2026-12-07 on the 2-core dev machine."""
    validate(body)
    return json_response(body, status, headers)


def wants_async(prefer: str | None) -> bool:
    return prefer is not None and "respond-async" in prefer.lower()


def deadline_ms(state: State, timeout_ms: int | None, is_async: bool) -> int:
    """A request's absolute deadline (epoch ms), set once: every job it submits carries it."""
    settings = state.settings
    default = settings.max_timeout_ms if is_async else settings.default_timeout_ms
    return now_ms() + min(timeout_ms or default, settings.max_timeout_ms)


def check_time_left(deadline: int, job: str) -> None:
    """A request's next job is not submitted once the request's deadline has passed: a
    later step gets what the earlier ones left, never a fresh timeout (issue 46)."""
    if deadline <= now_ms():
        raise DeadlineExceeded(f"the request's deadline passed before its {job} job was submitted")


KIND_NOUNS = {
    "sampler": "sampler",
    "predictive": "predictive model",
    "style_transfer": "style-transfer model",
}
Prepare = Callable[[ServedVersion], tuple[dict[str, np.ndarray], dict[str, Any]]]


async def infer(
    state: State,
    request: Request,
    name: str,
    body: InferenceOptions,
    kind: str,
    prepare: Prepare,
    rows: int,
    *,
    prefer: str | None,
    idempotency_key: str | None,
    accept: str | None,
) -> Response:
    """What every inference route does: resolve the version (by alias or pin), check its kind,
    turn the request into job inputs (off the event loop when large), run the job."""
    seed = getattr(body, "seed", None)
    key = body.routing_key or (None if seed is None else f"seed:{seed}")
    served = await state.registry.resolve(name, body.alias, body.version, key)
    if served.kind != kind:
        raise InvalidInput(f"model {name!r} is a {served.kind}, not a {KIND_NOUNS[kind]}")
    inputs, meta = await off_loop(rows, prepare, served)
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
        owner=owner_of(request, state),
    )


async def run_job(
    state: State,
    path: str,
    served: ServedVersion,
    inputs: dict[str, np.ndarray],
    meta: dict[str, Any],
    *,
    timeout_ms: int | None,
    prefer: str | None,
    idempotency_key: str | None,
    accept: str | None,
    owner: str | None = None,
    deadline: int | None = None,
) -> Response:
    """Enqueue one job; answer 202 for async requests, else wait and render the outcome.
    `deadline` is the request's own when an earlier step set it; else it is set here."""
    is_async = wants_async(prefer)
    if deadline is None:
        deadline = deadline_ms(state, timeout_ms, is_async)
    if owner:
        meta = {**meta, "owner": owner}
        if idempotency_key:  # one key's Idempotency-Key never names another key's job
            idempotency_key = f"{owner}:{idempotency_key}"
    try:
        check_time_left(deadline, meta["op"])
        stream = keys.stream(served.model, served.version)
        submitted = await state.queue.submit(
            stream, inputs, meta, deadline, idempotency_key, will_wait=not is_async
        )
        outcome = None if is_async else await state.queue.wait(submitted, deadline)
    except HanmoError as error:  # queue full, Redis away, deadline passed
        state.metrics.failures.labels(served.model, error.slug).inc()
        raise
    if outcome is None:
        href = f"/v1/jobs/{submitted.job_id}"
        return checked_response(
            JobAccepted.model_validate,
            {"job_id": submitted.job_id, "status": "queued", "href": href},
            status=202,
            headers={"Location": href},
        )
    return await render_off_loop(state, path, meta, submitted.job_id, outcome, accept)


def render_outcome(
    path: str, meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> Response:
    """The response for a finished job (metrics were counted when its reply arrived)."""
    if not outcome.ok:
        assert outcome.problem is not None
        return problem_response(outcome.problem, path)
    headers = outcome_headers(meta, job_id)
    rendered = RENDERERS[meta["kind"]](meta, job_id, outcome, accept)
    if isinstance(rendered, tuple):
        content, media_type = rendered
        return Response(content, media_type=media_type, headers=headers)
    return checked_response(ANSWERS[meta["kind"], meta["op"]], rendered, headers=headers)


def outcome_headers(meta: dict[str, Any], job_id: str) -> dict[str, str]:
    """The headers that name what answered a finished job."""
    headers = {
        "X-Hanmo-Model": meta["model"],
        "X-Hanmo-Version": str(meta["version"]),
        "X-Hanmo-Sha256": meta["sha256"],
        "X-Hanmo-Job": job_id,
    }
    if "seed" in meta:
        headers["X-Hanmo-Seed"] = str(meta["seed"])
    return headers

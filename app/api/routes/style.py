"""Style transfer: POST /v1/models/{name}/style-transfer, and saved styles under /v1/styles
(create, read, delete, and a whole TrueType font as an async job)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Request
from hanmo_client.schemas import (
    NAME_PATTERN,
    STYLE_ID_PATTERN,
    FontRequest,
    InferenceOptions,
    JobAccepted,
    StyleCreate,
    StyleRead,
    StyleTransferRequest,
    StyleTransferResponse,
)
from starlette.responses import Response

from app.api import glyph_events
from app.api.auth import may_see, owner_of
from app.api.deadlines import wants_async
from app.api.deps import AcceptDep, IdempotencyKeyDep, PreferDep, StateDep
from app.api.inference import (
    JobRunner,
    checked_response,
    deadline_ms,
    off_loop,
    resolve_kind,
    step_key,
)
from app.api.json_body import JsonLimitedRoute
from app.api.routes.sampling import ASYNC_RESPONSE
from app.api.routes.style_body import parse, reference_body
from app.api.sse import EVENT_STREAM, slots, wants_events
from app.api.state import State
from app.errors import Conflict, InvalidInput
from app.kinds.style_transfer import request as st
from app.kinds.style_transfer.response import confidence_of
from app.registry.service import ServedVersion
from app.services import styles as store

router = APIRouter(tags=["style transfer"], route_class=JsonLimitedRoute)
ModelName = Path(pattern=NAME_PATTERN, max_length=128)
StyleId = Path(pattern=STYLE_ID_PATTERN)


async def _encode(
    runner: JobRunner,
    served: ServedVersion,
    refs: np.ndarray,
    chars: str,
    body: InferenceOptions,
    deadline: int,
    idempotency_key: str | None = None,
    then_glyphs: int = 0,
) -> tuple[np.ndarray, float]:
    """The references' style code; `then_glyphs`: how many glyphs the request generates next
    (admission counts that step too, app/queue/scripts.py ENQUEUE)."""
    job = st.job_meta(served, "encode", body, references=len(chars))
    inputs = st.encode_inputs(refs, chars)
    out = await runner.step(served, inputs, job, deadline, idempotency_key, then_glyphs)
    return out["style"][0], confidence_of(float(out["confidence"][0]))


def _visible(request: Request, state: State) -> Callable[[str], bool]:
    return lambda owner: may_see(request, state, owner)


async def _saved_style(
    request: Request,
    runner: JobRunner,
    served: ServedVersion,
    style_id: str,
    body: StyleTransferRequest,
    deadline: int,
) -> tuple[np.ndarray, float, dict[str, Any]]:
    state = runner.state
    record = await store.load(state.redis, style_id, _visible(request, state))
    if record.model != served.model:
        raise Conflict(f"style {style_id} belongs to model {record.model!r}, not {served.model!r}")
    info: dict[str, Any] = {"style_id": style_id, "version": record.version, "recomputed": False}
    if record.version == served.version and record.sha256 == served.sha256:
        return record.style, record.confidence, info
    if body.on_stale == "fail":
        raise Conflict(
            f"style {style_id} was computed by version {record.version}; this request is served "
            f"by version {served.version} (send on_stale=recompute to recompute it from its "
            "stored references)",
            style_version=record.version,
            served_version=served.version,
        )
    size, _ = st.frame(served)
    if record.refs.shape[1] != size or any(c not in st.charset(served) for c in record.chars):
        raise Conflict(
            f"style {style_id} cannot be recomputed by version {served.version}: its references "
            "do not fit that version (glyph size or characters); create the style again"
        )
    refs = st.refit(record.ref_glyphs(), record.em_ratio, served)  # into this version's frame
    style, confidence = await _encode(runner, served, refs, record.chars, body, deadline)
    record.style, record.confidence = style, confidence
    record.version, record.sha256 = served.version, served.sha256
    await store.replace_code(state.redis, record)
    info.update(version=served.version, recomputed=True)
    return style, confidence, info


@router.post(
    "/v1/models/{name}/style-transfer",
    response_model=StyleTransferResponse,
    responses={**ASYNC_RESPONSE, 200: {"content": {"image/png": {}, EVENT_STREAM: {}}}},
    openapi_extra=reference_body(StyleTransferRequest),
)
async def style_transfer(
    request: Request,
    state: StateDep,
    prefer: PreferDep = None,
    idempotency_key: IdempotencyKeyDep = None,
    accept: AcceptDep = None,
    name: str = ModelName,
) -> Response:
    """Write `text` in the style of 1–16 reference glyphs (or a saved `style_id`): one PNG
    (and optional SVG) per distinct character, the characters the model cannot write in
    `unsupported`, and with `sheet` (or `Accept: image/png`) the whole text as one PNG.
    Both jobs (encode, then generate) share one deadline, `timeout_ms` after the body is read.
    `Accept: text/event-stream`: each glyph as a Server-Sent Event as soon as it is made, then
    `done` or `failed` (app/api/glyph_events.py)."""
    streamed = wants_events(accept) and not wants_async(prefer)
    if streamed:
        slots(request)  # no place for the stream: 503 before any work
    body, uploads = await parse(request, StyleTransferRequest)
    deadline = waited = deadline_ms(state, body.timeout_ms, False)
    if wants_async(prefer):  # the style is still encoded before the 202: by the sync deadline
        deadline = max(waited, deadline_ms(state, body.timeout_ms, True))
    sources = sum(x is not None for x in (body.references or uploads, body.style_id))
    if sources != 1:
        raise InvalidInput(
            "give either references (1–16 images with their characters) or a style_id",
            errors=[{"field": "references"}],
        )
    served = await resolve_kind(state, name, body, "style_transfer")
    runner = JobRunner(state, request)
    write, unsupported = st.plan_text(body.text, served)
    if not write:
        raise InvalidInput(
            "no character of the text can be written by this model",
            unsupported=unsupported,
            errors=[{"field": "text"}],
        )
    if body.style_id is not None:
        style, confidence, info = await _saved_style(
            request, runner, served, body.style_id, body, waited
        )
    else:
        given = uploads or body.references or []
        encode = st.job_meta(served, "encode", body, references=len(given))
        key = step_key(idempotency_key, encode.op)
        await runner.check(served, encode, waited, idempotency_key=key, then_cost=len(write))
        refs, chars = await off_loop(65, st.decode_references, given, served)
        style, confidence = await _encode(
            runner, served, refs, chars, body, waited, idempotency_key, len(write)
        )
        info = {"style_id": None, "references": len(chars), "chars": chars}
    job = st.job_meta(
        served,
        "generate",
        body,
        n=len(write),
        chars=write,
        text=body.text,
        formats=body.formats,
        size=body.size,
        sheet=body.sheet,
        unsupported=unsupported,
        confidence=confidence,
        style=info,
        **({"partials": True} if wants_events(accept) else {}),  # rows as they finish
    )
    inputs = st.generate_inputs(write, style)
    if streamed:  # each glyph as Server-Sent Events (app/api/glyph_events.py)
        return await glyph_events.post_stream(
            runner, served, inputs, job, deadline, idempotency_key
        )
    return await runner.answer(
        served,
        inputs,
        job,
        deadline,
        prefer=prefer,
        idempotency_key=idempotency_key,
        accept=accept,
    )


@router.post(
    "/v1/styles",
    status_code=201,
    response_model=StyleRead,
    openapi_extra=reference_body(StyleCreate),
)
async def create_style(request: Request, state: StateDep) -> Response:
    """Save a style: the references' pooled style code, computed once by the model version
    the request resolves to and tied to it; kept for `ttl_s` (default 30 days) or until
    deleted. The normalised references are kept too, so a later version can recompute it."""
    body, uploads = await parse(request, StyleCreate)
    if not (uploads or body.references):
        raise InvalidInput(
            "give 1–16 references (JSON `references`, or multipart `images` with `chars`)",
            errors=[{"field": "references"}],
        )
    served = await resolve_kind(state, body.model, body, "style_transfer")
    deadline = deadline_ms(state, body.timeout_ms, False)
    runner = JobRunner(state, request)
    given = uploads or body.references or []
    encode = st.job_meta(served, "encode", body, references=len(given))
    await runner.check(served, encode, deadline)  # a refusal costs no image decoding
    refs, chars = await off_loop(65, st.decode_references, given, served)
    style, confidence = await _encode(runner, served, refs, chars, body, deadline)
    ttl = body.ttl_s or store.DEFAULT_TTL_S
    created = store.now_ms()
    record = store.StyleRecord(
        style_id=store.new_id(),
        model=served.model,
        version=served.version,
        sha256=served.sha256,
        style=style,
        refs=np.floor(refs * 255 + 0.5).astype(np.uint8),
        em_ratio=st.frame(served)[1],
        chars=chars,
        confidence=confidence,
        created_ms=created,
        expires_ms=created + ttl * 1000,
        owner=owner_of(request, state) or "",
    )
    await store.save(state.redis, record, ttl)
    location = {"Location": f"/v1/styles/{record.style_id}"}
    return checked_response(StyleRead.model_validate, record.public(), status=201, headers=location)


@router.get("/v1/styles/{style_id}", response_model=StyleRead)
async def read_style(request: Request, state: StateDep, style_id: str = StyleId) -> Response:
    """A saved style: its model and version, references and expiry."""
    record = await store.load(state.redis, style_id, _visible(request, state))
    return checked_response(StyleRead.model_validate, record.public())


@router.delete("/v1/styles/{style_id}", status_code=204)
async def delete_style(request: Request, state: StateDep, style_id: str = StyleId) -> Response:
    await store.load(state.redis, style_id, _visible(request, state))
    await store.delete(state.redis, style_id)
    return Response(status_code=204)


@router.post("/v1/styles/{style_id}/font", status_code=202, response_model=JobAccepted)
async def create_font(
    request: Request, body: FontRequest, state: StateDep, style_id: str = StyleId
) -> Response:
    """Write a TrueType font in a saved style (default: GB2312 level 1, 3,755 characters) as an
    async job run by the workers: poll GET /v1/jobs/{id} for `progress`, then fetch the
    font from the same URL with `Accept: font/ttf`."""
    record = await store.load(state.redis, style_id, _visible(request, state))
    served = await state.registry.resolve(record.model, None, record.version)
    if body.chars is None:
        chars = st.default_font_chars(served)
    else:
        chars = list(dict.fromkeys(c for c in body.chars if not c.isspace()))
        missing = [c for c in chars if c not in st.charset(served)]
        if missing:
            raise InvalidInput(
                f"{len(missing)} characters are not in the model's set",
                unsupported=missing[:64],
                errors=[{"field": "chars"}],
            )
    if not chars:
        raise InvalidInput("no characters to write", errors=[{"field": "chars"}])
    inputs: dict[str, np.ndarray] = {
        "font_codepoints": np.array([[ord(c) for c in chars]], np.int64),
        "font_style": record.style.reshape(1, -1).astype(np.float32),
    }
    options = InferenceOptions(version=record.version, timeout_ms=body.timeout_ms)
    job = st.job_meta(
        served, "font", options, style_id=style_id, family=body.family, n_chars=len(chars)
    )
    deadline = deadline_ms(state, body.timeout_ms, True)
    runner = JobRunner(state, request)
    return await runner.answer(
        served, inputs, job, deadline, prefer="respond-async", idempotency_key=None, accept=None
    )

"""A finished job's expensive rendering (a style sheet as the PNG body) is drawn once: the
bytes are kept beside the job's result, as long as the result, and served on later GETs."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.api.inference import outcome_headers, render_off_loop
from app.api.state import State
from app.kinds.style_transfer import response as style
from app.queue import keys
from app.queue.errors import REDIS_ERRORS
from app.queue.results import Outcome

SHEET = "image/png"


async def render_job(
    state: State, path: str, meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> Response:
    """A finished job's response; a sheet comes from the cache when it was drawn before."""
    if not (outcome.ok and meta["kind"] == "style_transfer" and style.wants_sheet(meta, accept)):
        return await render_off_loop(state, path, meta, job_id, outcome, accept)
    key = keys.rendered(job_id, SHEET)
    cached = await _get(state, key)
    if cached is not None:
        state.metrics.render_cache.labels("hit").inc()
        return Response(cached, media_type=SHEET, headers=outcome_headers(meta, job_id))
    state.metrics.render_cache.labels("miss").inc()
    rendered = await render_off_loop(state, path, meta, job_id, outcome, accept)
    if rendered.media_type == SHEET:
        await _put(state, key, bytes(rendered.body), keys.result(job_id))
    return rendered


async def _get(state: State, key: str) -> bytes | None:
    try:
        blob: bytes | None = await state.redis.get(key)  # type: ignore[assignment]
    except REDIS_ERRORS:
        return None  # Redis is away: draw it again rather than fail
    return blob


async def _put(state: State, key: str, blob: bytes, result_key: str) -> None:
    """Keep `blob` as long as the job's result lives (its remaining TTL), never longer."""
    try:
        ttl_ms = await state.redis.pttl(result_key)
        if ttl_ms > 0:
            await state.redis.set(key, blob, px=ttl_ms)
    except REDIS_ERRORS:
        pass  # a cache that cannot be written costs a redraw, not the response

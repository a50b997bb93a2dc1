"""GET /v1/jobs/{id}/events: a job's life as Server-Sent Events (issue 49, item 2).

Events, each with an `id` that only grows, so a client that reconnects with `Last-Event-ID`
gets nothing twice:
- `progress` (id = progress in thousandths, 0-999): `{"job_id", "status", "progress"}`, sent
  at the start (queued or running) and whenever the worker's reported progress moves;
- `done` (id 1000): `{"job_id", "status": "done", "href"}`, where the result is read;
- `failed` (id 1000): the job's problem document (failed, cancelled, or expired).
The stream ends after the last event, or at the job's deadline plus a grace (a job past it is
answered by the worker). A comment line every KEEPALIVE_S keeps proxies from closing it.
A style-transfer generate job's events are its glyphs instead of progress (ids = glyph
indexes, then done/failed at 1000): app/api/glyph_events.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import StreamingResponse

from app.api import glyph_events, row_events
from app.api.deps import StateDep
from app.api.routes.jobs import JobId, visible_job
from app.api.sse import EVENT_STREAM, FINAL, HEADERS, KEEPALIVE, event, released, slots
from app.api.state import State
from app.errors import InvalidInput, JobNotFound, RedisUnavailable
from app.queue.clock import now_ms
from app.queue.status import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
POLL_S = 0.25
KEEPALIVE_S = 15.0
GRACE_S = 30.0


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {}}, "description": "the job's events"}},
)
async def job_events(
    request: Request,
    state: StateDep,
    job_id: str = JobId,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=8)] = None,
) -> StreamingResponse:
    """The job's progress, then `done` or `failed`, as Server-Sent Events."""
    after = _last_seen(last_event_id)
    fields, meta, _ = await visible_job(request, state, job_id)
    streams = slots(request)
    until = int(fields.get("deadline_ms", now_ms())) / 1000 + GRACE_S
    if glyph_events.carries_glyphs(meta):
        polled = glyph_events.polled(state, job_id, until, POLL_S)
        events = glyph_events.events(state, job_id, meta, polled, after, href=True)
    elif row_events.carries_rows(meta):  # an autoregressive sample's image rows
        polled = glyph_events.polled(state, job_id, until, POLL_S)
        events = row_events.events(state, job_id, meta, polled, after, href=True)
    else:
        events = _events(state, job_id, after, until)
    return StreamingResponse(released(streams, events), media_type=EVENT_STREAM, headers=HEADERS)


def _last_seen(header: str | None) -> int:
    if header is None:
        return -1
    if not header.isdigit() or int(header) > FINAL:
        raise InvalidInput(f"Last-Event-ID is an event id this stream sent (0-{FINAL})")
    return int(header)


async def _events(state: State, job_id: str, after: int, until_s: float) -> AsyncIterator[str]:
    sent, quiet_since = after, time.monotonic()
    while time.time() < until_s:  # a client that leaves cancels this (StreamingResponse)
        try:
            fields, outcome = await state.queue.status(job_id)
        except RedisUnavailable:
            fields, outcome = None, None  # Redis is away: try again at the next poll
        except JobNotFound as gone:
            if sent < FINAL:
                yield event("failed", FINAL, gone.problem())
            return
        if fields is not None and outcome is not None:
            if sent < FINAL:
                yield _final(job_id, fields["status"], outcome.problem)
            return
        if fields is not None:
            progress = float(fields.get("progress", 0.0))
            event_id = min(FINAL - 1, int(progress * FINAL))
            if event_id > sent:
                body = {"job_id": job_id, "status": fields["status"], "progress": progress}
                yield event("progress", event_id, body)
                sent, quiet_since = event_id, time.monotonic()
        if time.monotonic() - quiet_since > KEEPALIVE_S:
            yield KEEPALIVE
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_S)


def _final(job_id: str, status: str, problem: dict[str, Any] | None) -> str:
    if status == JobStatus.DONE and problem is None:
        body = {"job_id": job_id, "status": status, "href": f"/v1/jobs/{job_id}"}
        return event("done", FINAL, body)
    return event("failed", FINAL, problem or {"status": 500, "title": "Job failed"})

"""Server-Sent Events: what every event stream of the api shares (a job's events, a style
request's glyphs): the event format, the final id, and the per-process limit on open streams
(HANMO_MAX_EVENT_STREAMS, then 503)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from app.errors import ServiceUnavailable

EVENT_STREAM = "text/event-stream"
FINAL = 1000  # the id of a stream's last event (done or failed)
KEEPALIVE = ": keep-alive\n\n"  # a comment: proxies see traffic, clients see no event
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_events(accept: str | None) -> bool:
    return accept is not None and EVENT_STREAM in accept.lower()


def event(name: str, event_id: int, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data)}\n\n"


def slots(request: Request) -> asyncio.Semaphore:
    """The process's places for open streams; 503 (poll instead) when none is free."""
    streams: asyncio.Semaphore = request.app.state.event_streams
    if streams.locked():
        raise ServiceUnavailable("too many event streams are open; poll the job", retry_after_s=5)
    return streams


async def released(streams: asyncio.Semaphore, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """The events, holding a place among the open streams while they flow (taken when the
    body starts, so a response that never starts holds none)."""
    async with streams:
        async for item in events:
            yield item

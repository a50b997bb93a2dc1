"""An autoregressive sample request's rows as Server-Sent Events, each image row as soon as
every sample of the request has it (issue 50, item 4). The worker's step lane writes each
completed row to the job's partial stream (app/worker/steps.py, app/queue/partials.py); this
sends them, then the rest from the result. `POST .../sample` with `Accept: text/event-stream`
and `GET /v1/jobs/{id}/events` of such a job send the same events:

- `row`, id = the image row's index (0-based; rows of a prefix come first): `{"row": r,
  "levels": [[level, ...] per sample]}`, the row's levels (0..V-1) in every sample;
- `done`, id 1000 (sse.FINAL): the JSON answer, as the request without the header gets it
  (on a job's event stream also `status` and `href`);
- `failed`, id 1000: the problem document.

Rows, not steps: a step draws one position of every sample, and an image row is `width`
steps; a row per event keeps the events (and the worker's Redis writes) `width` times fewer,
while the api reads partials every glyph_events.WAIT_S anyway. Ids only grow, so a job's
event stream resumed with `Last-Event-ID: k` starts at row k+1. The POST stream is not
resumable: its job stops when its client goes (as a style request's)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from app.api.glyph_events import KEEPALIVE_S, Finished, final
from app.api.sse import FINAL, KEEPALIVE, event
from app.api.state import State
from app.errors import HanmoError
from app.kinds.catalog import KINDS
from app.queue import partials
from app.queue.results import Outcome


def carries_rows(meta: dict[str, Any]) -> bool:
    """Whether a job's events are its image rows: an autoregressive sample job's."""
    return meta.get("kind") == "autoregressive" and meta.get("op") == "sample"


def _rows(rows: np.ndarray, start: int, sent: int) -> list[str]:
    """A `row` event for each image row of `rows` [n, k, width] (rows start..) after `sent`."""
    return [
        event("row", start + k, {"row": start + k, "levels": rows[:, k].tolist()})
        for k in range(max(0, sent + 1 - start), rows.shape[1])
        if start + k < FINAL
    ]


async def events(
    state: State,
    job_id: str,
    meta: dict[str, Any],
    finished: Finished,
    after: int = -1,
    *,
    href: bool = False,
    instance: str | None = None,
) -> AsyncIterator[str]:
    """The image rows after index `after`, then `done` (with `href`: where the result is
    read) or `failed`; nothing once the final event was seen (`after` = FINAL)."""
    sent, entry, quiet_since = after, "0-0", time.monotonic()
    width = int(meta["sample_shape"][-1])
    while sent < FINAL:
        try:
            outcome = await finished()
        except HanmoError as error:
            outcome = Outcome(problem=error.problem())
        if outcome is not None:
            if outcome.ok and outcome.tensors is not None:
                levels = outcome.tensors["levels"]
                for item in _rows(levels.reshape(len(levels), -1, width), 0, sent):
                    yield item
            yield await final(state, meta, job_id, outcome, href, instance, answer)
            return
        chunks, entry = await partials.read(state.redis, job_id, entry)
        for start, tensors in chunks:
            rows = tensors["rows"]
            if start > sent + 1:  # a row missing before it (a failed write): the result has it
                continue
            for item in _rows(rows, start, sent):
                yield item
            sent = max(sent, start + rows.shape[1] - 1)
            quiet_since = time.monotonic()
        if time.monotonic() - quiet_since > KEEPALIVE_S:
            yield KEEPALIVE
            quiet_since = time.monotonic()


def answer(meta: dict[str, Any], job_id: str, outcome: Outcome) -> dict[str, Any]:
    body = KINDS[meta["kind"]].render(meta, job_id, outcome, None)
    assert isinstance(body, dict)
    return body

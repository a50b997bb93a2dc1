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

from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from app.api.glyph_events import Finished, item_events
from app.api.sse import FINAL, event
from app.api.state import State
from app.kinds.catalog import KINDS
from app.queue.results import Outcome


def carries_rows(meta: dict[str, Any]) -> bool:
    """Whether a job's events are its image rows: an autoregressive sample job's."""
    return meta.get("kind") == "autoregressive" and meta.get("op") == "sample"


async def _rows(rows: np.ndarray, start: int, sent: int) -> AsyncIterator[str]:
    """A `row` event for each image row of `rows` [k, n, width] (rows start..) after `sent`."""
    for k in range(max(0, sent + 1 - start), len(rows)):
        if start + k < FINAL:
            yield event("row", start + k, {"row": start + k, "levels": rows[k].tolist()})


def _chunk_rows(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """A partial entry's image rows, [n, k, width] as the worker wrote them, row first."""
    return tensors["rows"].swapaxes(0, 1)


def events(
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
    width = int(meta["sample_shape"][-1])

    def result_rows(tensors: dict[str, np.ndarray]) -> np.ndarray:
        levels = tensors["levels"]
        return levels.reshape(len(levels), -1, width).swapaxes(0, 1)

    return item_events(
        state,
        job_id,
        meta,
        finished,
        after,
        of_result=result_rows,
        of_chunk=_chunk_rows,
        items=_rows,
        answer=answer,
        href=href,
        instance=instance,
    )


def answer(meta: dict[str, Any], job_id: str, outcome: Outcome) -> dict[str, Any]:
    body = KINDS[meta["kind"]].render(meta, job_id, outcome, None)
    assert isinstance(body, dict)
    return body

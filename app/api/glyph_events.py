"""A style-transfer request's glyphs as Server-Sent Events, each sent as soon as the api has
it (issue 49, item 2): the rows its worker wrote chunk by chunk (app/queue/partials.py, for a
job whose meta asks for them), then the rest from the result. `POST .../style-transfer` with
`Accept: text/event-stream` and `GET /v1/jobs/{id}/events` of a generate job send the same
events:

- `glyph`, id = the glyph's index (0-based, in the JSON answer's `glyphs` order): that answer's
  glyph item, byte for byte (its render function made it), and its `index`;
- `done`, id 1000 (sse.FINAL): the JSON answer without `glyphs` (on a job's event stream also
  `status` and `href`);
- `failed`, id 1000: the problem document.

Ids only grow, so a job's event stream resumed with `Last-Event-ID: k` starts at glyph k+1.
The POST stream is not resumable: its job stops when its client goes (JobRunner's cancel)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import numpy as np
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from app.api.inference import JobRunner, outcome_headers
from app.api.problems import problem_document
from app.api.sse import EVENT_STREAM, FINAL, HEADERS, KEEPALIVE, event, released, slots
from app.api.state import State
from app.errors import ClientGone, DeadlineExceeded, HanmoError, RedisUnavailable
from app.kinds.catalog import KINDS
from app.kinds.spec import Inputs, JobMeta
from app.queue import keys, partials
from app.queue.client import Submitted
from app.queue.results import Outcome
from app.registry.service import ServedVersion

WAIT_S = 0.1  # how often a stream looks for newly finished rows while its job runs
KEEPALIVE_S = 15.0
Finished = Callable[[], Awaitable[Outcome | None]]  # the outcome, or None after a short wait


def carries_glyphs(meta: dict[str, Any]) -> bool:
    """Whether a job's events are its glyphs: a style-transfer generate job's."""
    return meta.get("kind") == "style_transfer" and meta.get("op") == "generate"


Block = Callable[[dict[str, np.ndarray]], np.ndarray]  # tensors -> items on axis 0
Items = Callable[[np.ndarray, int, int], AsyncIterator[str]]  # (items, first index, sent)
Answer = Callable[[dict[str, Any], str, Outcome], dict[str, Any]]


async def item_events(
    state: State,
    job_id: str,
    meta: dict[str, Any],
    finished: Finished,
    after: int,
    *,
    of_result: Block,
    of_chunk: Block,
    items: Items,
    answer: Answer,
    href: bool,
    instance: str | None,
) -> AsyncIterator[str]:
    """A job's items after index `after` as they reach its partial stream (`of_chunk`: a
    chunk's items, on axis 0; `items`: their events), then the rest from the result
    (`of_result`) and the final event (`answer`'s body); nothing once the final event was seen
    (`after` = FINAL). Glyphs (below) and autoregressive rows (app/api/row_events.py)."""
    sent, entry, quiet_since = after, "0-0", time.monotonic()
    while sent < FINAL:
        try:
            outcome = await finished()
        except HanmoError as error:
            outcome = Outcome(problem=error.problem())
        if outcome is not None:
            if outcome.ok and outcome.tensors is not None:
                async for item in items(of_result(outcome.tensors), 0, sent):
                    yield item
            yield await final(state, meta, job_id, outcome, href, instance, answer)
            return
        chunks, entry = await partials.read(state.redis, job_id, entry)
        for start, tensors in chunks:
            if start > sent + 1:  # a chunk missing before it (a failed write): the result has it
                continue
            block = of_chunk(tensors)
            async for item in items(block, start, sent):
                yield item
            sent = max(sent, start + len(block) - 1)
            quiet_since = time.monotonic()
        if time.monotonic() - quiet_since > KEEPALIVE_S:
            yield KEEPALIVE
            quiet_since = time.monotonic()


def _glyph_block(tensors: dict[str, np.ndarray]) -> np.ndarray:
    return tensors["glyph"]


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
    """The glyphs after index `after`, then `done` (with `href`: where the result is read) or
    `failed` (with `instance`: the problem document as a response would carry it); nothing
    once the final event was seen (`after` = FINAL)."""
    return item_events(
        state,
        job_id,
        meta,
        finished,
        after,
        of_result=_glyph_block,
        of_chunk=_glyph_block,
        items=partial(_glyphs, state, meta, job_id),
        answer=summary,
        href=href,
        instance=instance,
    )


async def _glyphs(
    state: State, meta: dict[str, Any], job_id: str, ink: np.ndarray, start: int, sent: int
) -> AsyncIterator[str]:
    """A `glyph` event for each row of `ink` (rows start..) after index `sent`, each rendered
    in a thread (bounded by state.renders) and sent as soon as it is."""
    for row in range(max(0, sent + 1 - start), len(ink)):
        index = start + row
        item = await anyio.to_thread.run_sync(
            glyph_item, meta, job_id, ink[row], index, limiter=state.renders
        )
        yield event("glyph", index, item)


def glyph_item(meta: dict[str, Any], job_id: str, ink: np.ndarray, index: int) -> dict[str, Any]:
    """Glyph `index` as the JSON answer's `glyphs[index]` (made by the same render function,
    for one character), with its index."""
    one = {**meta, "chars": [meta["chars"][index]], "sheet": False}
    body = KINDS[meta["kind"]].render(one, job_id, Outcome(tensors={"glyph": ink[None]}), None)
    assert isinstance(body, dict)
    return {"index": index, **body["glyphs"][0]}


def summary(meta: dict[str, Any], job_id: str, outcome: Outcome) -> dict[str, Any]:
    """The JSON answer without its glyphs (the sheet, when asked for, is drawn here)."""
    body = KINDS[meta["kind"]].render({**meta, "formats": []}, job_id, outcome, None)
    assert isinstance(body, dict)
    body.pop("glyphs")
    return body


async def final(
    state: State,
    meta: dict[str, Any],
    job_id: str,
    outcome: Outcome,
    href: bool,
    instance: str | None,
    answer: Answer = summary,
) -> str:
    """The final event: `done` with `answer`'s body (the JSON answer without its glyphs, or
    another kind's), or `failed` with the problem document."""
    if not outcome.ok:
        problem = outcome.problem or {"status": 500, "title": "Job failed"}
        return event("failed", FINAL, problem_document(problem, instance) if instance else problem)
    body = await anyio.to_thread.run_sync(answer, meta, job_id, outcome, limiter=state.renders)
    if href:
        body = {"status": "done", "href": f"/v1/jobs/{job_id}", **body}
    return event("done", FINAL, body)


def polled(state: State, job_id: str, until_s: float, poll_s: float) -> Finished:
    """A job's outcome read from its record every `poll_s` (a job's event stream); past
    `until_s` (its deadline and a grace) a 504."""

    async def finished() -> Outcome | None:
        if time.time() > until_s:
            raise DeadlineExceeded("the job did not finish by its deadline", job_id=job_id)
        try:
            _, outcome = await state.queue.status(job_id)
        except RedisUnavailable:
            outcome = None  # Redis is away: try again at the next poll
        if outcome is None:
            await asyncio.sleep(poll_s)
        return outcome

    return finished


class _Posted:
    """One POST stream's job: its reply awaited (`finished`), and, when its client goes
    before the final event, cancelled (abandoned if running: its worker stops at the next
    chunk) as JobRunner._wait does for a synchronous JSON request."""

    def __init__(
        self, runner: JobRunner, served: ServedVersion, submitted: Submitted, deadline: int
    ) -> None:
        self.runner, self.served, self.submitted = runner, served, submitted
        self.deadline = deadline
        self.waiting: asyncio.Future[Outcome] | None = None
        self.ended = False

    async def finished(self) -> Outcome | None:
        queue = self.runner.state.queue
        if self.waiting is None:
            self.waiting = asyncio.ensure_future(queue.wait(self.submitted, self.deadline))
        done, _ = await asyncio.wait({self.waiting}, timeout=WAIT_S)
        if not done:
            return None
        self.ended = True
        with self.runner.counted(self.served):  # a deadline counts as the JSON route's does
            return self.waiting.result()

    async def stop(self) -> None:
        """After the body (the client gone or not): stop the job if its end was not sent."""
        if self.waiting is not None:
            self.waiting.cancel()
        if self.ended:
            return
        state = self.runner.state
        state.queue.listener.forget(self.submitted.job_id)
        state.metrics.failures.labels(self.served.model, ClientGone.slug).inc()
        stream = keys.stream(self.served.model, self.served.version)
        try:
            await state.queue.cancel(self.submitted.job_id, stream, abandon=True)
        except HanmoError:  # finished, or Redis away: nothing to undo
            pass


async def post_stream(
    runner: JobRunner,
    served: ServedVersion,
    inputs: Inputs,
    job: JobMeta,
    deadline: int,
    idempotency_key: str | None,
    items: Callable[..., AsyncIterator[str]] | None = None,
) -> StreamingResponse:
    """A generate job's glyphs as they are made, then `done` or `failed` (a refusal before the
    job is queued is an ordinary problem response, before any header is sent); `items`: the
    events of another kind's job instead (app/api/row_events.py), called as `events` is."""
    streams = slots(runner.request)
    submitted, meta = await runner.enqueue(served, inputs, job, deadline, idempotency_key)
    posted = _Posted(runner, served, submitted, deadline)
    made = items or events
    body = made(runner.state, submitted.job_id, meta, posted.finished, instance=runner.path)
    return StreamingResponse(
        released(streams, body),
        media_type=EVENT_STREAM,
        headers={**HEADERS, **outcome_headers(meta, submitted.job_id)},
        background=BackgroundTask(posted.stop),
    )

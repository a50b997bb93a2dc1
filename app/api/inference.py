"""The path every inference request takes after validation: enqueue, then answer now
(wait for the result) or later (202 + Location), and render the outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import orjson
from hanmo_client.schemas import InferenceOptions, JobAccepted
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import Response

from app import tracing
from app.api import deadlines
from app.api.auth import owner_of
from app.api.deadlines import check_time_left, wants_async
from app.api.problems import problem_response
from app.api.state import State
from app.errors import ClientGone, HanmoError, InvalidInput
from app.kinds.catalog import KINDS
from app.kinds.spec import Inputs, JobMeta, Validate
from app.queue import keys
from app.queue.client import Submitted
from app.queue.results import Outcome
from app.queue.status import JobStatus
from app.registry.service import ServedVersion

T = TypeVar("T")
INLINE_ROWS = 64  # work on more rows than this (noise, summaries) runs off the event loop


async def off_loop(
    rows: int, fn: Callable[..., T], *args: Any, limiter: anyio.CapacityLimiter | None = None
) -> T:
    """Run small work inline and large work in a thread (at most `limiter`'s tokens at once),
    so a big request does not stall every other request on this process."""
    if rows <= INLINE_ROWS:
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


def render_rows(meta: dict[str, Any], accept: str | None) -> int:
    """What rendering a finished job costs, in the rows `off_loop` counts (the kind says)."""
    return KINDS[meta["kind"]].render_rows(meta, accept)


async def render_off_loop(
    state: State, path: str, meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> Response:
    """`render_outcome`, in a thread bounded by `state.renders` unless the result is small:
    a 256-character sheet at 512 px held the event loop (and /livez) 15-17 s inline."""
    rows = render_rows(meta, accept) if outcome.ok else 1
    started = time.perf_counter()
    with tracing.span("render", {"hanmo.rows": rows}):
        response = await off_loop(
            rows, render_outcome, path, meta, job_id, outcome, accept, limiter=state.renders
        )
    if rows > INLINE_ROWS:  # what the next such answer reserves of its deadline
        state.render_pace.learn(meta["kind"], accept, rows, time.perf_counter() - started)
    return response


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


def deadline_ms(state: State, timeout_ms: int | None, is_async: bool) -> int:
    """A request's absolute deadline (epoch ms), set once: every job it submits carries it."""
    return deadlines.deadline_ms(state.settings, timeout_ms, is_async)


Prepare = Callable[[ServedVersion], tuple[Inputs, JobMeta]]
Kinds = str | tuple[str, ...]  # the kind a route serves, or the kinds


async def resolve_kind(
    state: State, name: str, body: InferenceOptions, kind: Kinds, key: str | None = None
) -> ServedVersion:
    """The version that serves this request (by pin, or by alias and routing key), refused
    unless it is of the kind (or one of the kinds) the route serves."""
    served = await state.registry.resolve(name, body.alias, body.version, key)
    kinds = (kind,) if isinstance(kind, str) else kind
    if served.kind not in kinds:
        nouns = " or ".join(KINDS[k].noun for k in kinds)
        raise InvalidInput(f"model {name!r} is a {served.kind}, not a {nouns}")
    return served


async def prepare_job(
    state: State, name: str, body: InferenceOptions, kind: Kinds, prepare: Prepare, rows: int
) -> tuple[ServedVersion, Inputs, JobMeta]:
    """Resolve the version (by pin, or by alias and routing key: the seed when no key is
    given), check its kind, and turn the request into job inputs (off the event loop when
    large): the first half of `infer`, which the Open Inference Protocol's route shares."""
    seed = getattr(body, "seed", None)
    key = body.routing_key or (None if seed is None else f"seed:{seed}")
    with tracing.span("validate", {"hanmo.model": name, "hanmo.rows": rows}):
        served = await resolve_kind(state, name, body, kind, key)
        inputs, job = await off_loop(rows, prepare, served)
    return served, inputs, job


async def infer(
    state: State,
    request: Request,
    name: str,
    body: InferenceOptions,
    kind: Kinds,
    prepare: Prepare,
    rows: int,
    *,
    prefer: str | None,
    idempotency_key: str | None,
    accept: str | None,
) -> Response:
    """What every one-step inference route does: resolve the version (by alias or pin), check
    its kind, turn the request into job inputs (off the event loop when large), run the job."""
    served, inputs, job = await prepare_job(state, name, body, kind, prepare, rows)
    runner = JobRunner(state, request)
    deadline = deadline_ms(state, body.timeout_ms, wants_async(prefer))
    return await runner.answer(
        served, inputs, job, deadline, prefer=prefer, idempotency_key=idempotency_key, accept=accept
    )


class RemoteProblem(HanmoError):
    """A job's problem object, raised again on the api side."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(str(problem.get("detail", "")))
        self._problem = problem

    def problem(self) -> dict[str, Any]:
        return dict(self._problem)


class JobRunner:
    """Submits and awaits every job of one request, one way: the caller's key owns the job
    (and scopes its Idempotency-Key), no job starts once the request's deadline has passed,
    and a refusal (queue full, Redis away, deadline) is counted in the failure metrics."""

    def __init__(self, state: State, request: Request) -> None:
        self.state = state
        self.request = request
        self.path = request.url.path
        self.owner = owner_of(request, state)

    async def submit(
        self,
        served: ServedVersion,
        inputs: Inputs,
        job: JobMeta,
        deadline: int,
        *,
        idempotency_key: str | None = None,
        wait: bool = True,
        then_cost: float = 0.0,
        wait_until: int | None = None,
    ) -> tuple[str, dict[str, Any], Outcome | None]:
        """(job id, stored meta, outcome: None when not waited for). `then_cost`: what the
        next step costs (admission counts it); `wait_until`: the wait's end, if not `deadline`."""
        submitted, meta = await self.enqueue(
            served, inputs, job, deadline, idempotency_key, wait=wait, then_cost=then_cost
        )
        with self.counted(served):
            stream = keys.stream(served.model, served.version)
            until = wait_until or deadline
            outcome = await self._wait(submitted, stream, until) if wait else None
        return submitted.job_id, meta, outcome

    async def enqueue(
        self,
        served: ServedVersion,
        inputs: Inputs,
        job: JobMeta,
        deadline: int,
        idempotency_key: str | None = None,
        *,
        wait: bool = True,
        then_cost: float = 0.0,
    ) -> tuple[Submitted, dict[str, Any]]:
        """`submit`'s first half: the job enqueued (with `wait`, its reply awaited: `wait` on
        the queue must follow) and its stored meta."""
        meta = job.wire(owner=self.owner) if self.owner else job.wire()
        idempotency_key = self._owned(idempotency_key)
        with self.counted(served):
            check_time_left(deadline, job.op)
            # the job carries this span's traceparent: the worker's spans are its children
            with tracing.span("enqueue", enqueue_attributes(served, job), SpanKind.PRODUCER):
                submitted = await self.state.queue.submit(
                    keys.stream(served.model, served.version),
                    inputs,
                    meta,
                    deadline,
                    idempotency_key,
                    will_wait=wait,
                    cost=KINDS[job.kind].cost(job),
                    then_cost=then_cost,
                    forget=wait and self._forgettable(job, idempotency_key),
                )
        return submitted, meta

    def _forgettable(self, job: JobMeta, idempotency_key: str | None) -> bool:
        """Whether a synchronous job expires soon after it finishes (its waiter has it; the
        queue's FORGET_AFTER_S): not when a retry may name it (an Idempotency-Key), its kind
        keeps results (predictions, for feedback), or the settings keep them
        (HANMO_KEEP_SYNC_RESULTS)."""
        keep = self.state.settings.keep_sync_results or KINDS[job.kind].keeps_results
        return idempotency_key is None and not keep

    async def check(
        self,
        served: ServedVersion,
        job: JobMeta,
        deadline: int,
        *,
        idempotency_key: str | None = None,
        then_cost: float = 0.0,
    ) -> None:
        """Raise now what `submit` would raise for this job (429, 503), before a route does the
        costly part of reading its request: under a flood, refusals cost the api little."""
        with self.counted(served):
            check_time_left(deadline, job.op)
            await self.state.queue.check(
                keys.stream(served.model, served.version),
                deadline,
                self._owned(idempotency_key),
                cost=KINDS[job.kind].cost(job),
                then_cost=then_cost,
            )

    def _owned(self, idempotency_key: str | None) -> str | None:
        """The key as stored: one API key's Idempotency-Key never names another's job."""
        return (
            f"{self.owner}:{idempotency_key}" if self.owner and idempotency_key else idempotency_key
        )

    @contextmanager
    def counted(self, served: ServedVersion) -> Iterator[None]:
        """Count a refusal or failure of this model's job in the failure metrics."""
        try:
            yield
        except HanmoError as error:
            self.state.metrics.failures.labels(served.model, error.slug).inc()
            raise

    async def _wait(self, submitted: Submitted, stream: str, deadline: int) -> Outcome:
        """The job's outcome; if the client disconnects first, the job is cancelled (a worker
        that has not started it drops it: no work for nobody), or marked abandoned if running
        (its worker stops between chunks once its whole batch is), and ClientGone is raised."""
        waiting = asyncio.ensure_future(self.state.queue.wait(submitted, deadline))
        gone = asyncio.ensure_future(self._disconnected())
        try:
            await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if waiting.done():
            return waiting.result()
        waiting.cancel()
        try:
            await self.state.queue.cancel(submitted.job_id, stream, abandon=True)
        except HanmoError:  # started already, finished, or Redis away: nothing to undo
            pass
        raise ClientGone("the client closed the connection before the answer")

    async def _disconnected(self) -> None:
        """Returns when the client disconnects (the request's body was read already, so the
        next ASGI message is the disconnect)."""
        while (await self.request.receive())["type"] != "http.disconnect":
            pass

    async def step(
        self,
        served: ServedVersion,
        inputs: Inputs,
        job: JobMeta,
        deadline: int,
        idempotency_key: str | None = None,
        then_cost: float = 0.0,
    ) -> Inputs:
        """One step of a multi-step request, run to its end by the request's deadline; its
        problem (from the worker, or 504 at the deadline) ends the request with that problem.
        A step's Idempotency-Key is the request's, suffixed with the step's op. `then_cost`:
        what the steps after it cost (admission counts them, app/queue/scripts.py)."""
        key = step_key(idempotency_key, job.op)
        _, _, outcome = await self.submit(
            served, inputs, job, deadline, idempotency_key=key, then_cost=then_cost
        )
        assert outcome is not None
        if not outcome.ok or outcome.tensors is None:
            raise RemoteProblem(outcome.problem or {"status": 500, "title": "Job failed"})
        return outcome.tensors

    async def answer(
        self,
        served: ServedVersion,
        inputs: Inputs,
        job: JobMeta,
        deadline: int,
        *,
        prefer: str | None,
        idempotency_key: str | None,
        accept: str | None,
    ) -> Response:
        """The request's last job: 202 + Location when the client prefers async, else its
        rendered outcome."""
        is_async = wants_async(prefer)
        job_deadline = deadline
        if not is_async:  # the answer's render, here after the job, shares the deadline
            with self.counted(served):
                spec = KINDS[job.kind]
                rows = spec.render_rows(job.wire(), accept)
                rows = rows if rows > INLINE_ROWS else 0  # renders inline are not reserved
                pace, prior = self.state.render_pace, spec.render_prior_s
                job_deadline = pace.job_deadline(job.kind, accept, rows, deadline, prior)
        job_id, meta, outcome = await self.submit(
            served,
            inputs,
            job,
            job_deadline,
            idempotency_key=idempotency_key,
            wait=not is_async,
            wait_until=deadline,
        )
        if outcome is None:
            href = f"/v1/jobs/{job_id}"
            return checked_response(
                JobAccepted.model_validate,
                {"job_id": job_id, "status": JobStatus.QUEUED, "href": href},
                status=202,
                headers={"Location": href},
            )
        return await render_off_loop(self.state, self.path, meta, job_id, outcome, accept)


def enqueue_attributes(served: ServedVersion, job: JobMeta) -> dict[str, Any] | None:
    """The enqueue span's attributes; not built while tracing is off."""
    if tracing.tracer() is None:
        return None
    return {"hanmo.model": served.model, "hanmo.version": served.version, "hanmo.op": job.op}


def step_key(idempotency_key: str | None, op: str) -> str | None:
    """A step's Idempotency-Key: the request's, suffixed with the step's op."""
    return f"{idempotency_key}:{op}" if idempotency_key else None


def render_outcome(
    path: str, meta: dict[str, Any], job_id: str, outcome: Outcome, accept: str | None
) -> Response:
    """The response for a finished job (metrics were counted when its reply arrived)."""
    if not outcome.ok:
        assert outcome.problem is not None
        return problem_response(outcome.problem, path)
    headers = outcome_headers(meta, job_id)
    kind = KINDS[meta["kind"]]
    rendered = kind.render(meta, job_id, outcome, accept)
    if isinstance(rendered, tuple):
        content, media_type = rendered
        return Response(content, media_type=media_type, headers=headers)
    return checked_response(kind.answers[meta["op"]], rendered, headers=headers)


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

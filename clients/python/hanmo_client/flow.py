"""The transport-neutral core that the sync and the async client share.

An API call is a *flow*: a generator that yields what it needs done and gets the outcome
back. It yields a `Call` (one HTTP exchange; it gets the parsed answer back) or a float
(seconds to sleep). `Steps` runs a flow one step at a time, turning each `Call` into
sends of its request, retried as a `Retry` allows, and raising `ApiError` for a refusal.
The clients only send requests and sleep, each in its own way (`httpx.Client` and
`time.sleep`, or `httpx.AsyncClient` and `asyncio.sleep`), so everything else, from the
request bodies to the retries and the polling loops, is written once."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from hanmo_client.errors import ApiError
from hanmo_client.retry import REFUSED, Retry

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP exchange: the request, which refusals may be retried, how to read the answer."""

    method: str
    path: str
    read: Callable[[bytes], T]
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    files: Any = None
    data: dict[str, Any] | None = None
    retry_on: frozenset[int] = field(default=REFUSED)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request, built by `http` (its base URL, headers and timeout). Built anew for
        every try: a multipart body rewinds its files when it is rendered again."""
        return http.build_request(
            self.method,
            self.path,
            json=self.json,
            params=self.params,
            headers=self.headers,
            files=self.files,
            data=self.data,
        )


Effect = Call[Any] | float  # a call to make, or seconds to sleep
Flow = Generator[Effect, Any, T]


def single(call: Call[T]) -> Flow[T]:
    """The flow of one call."""
    answer: T = yield call
    return answer


def nothing(_: bytes) -> None:
    """The reader of an answer without a body (204)."""


def attempts(call: Call[T], retry: Retry) -> Generator[Call[Any] | float, Any, T]:
    """Send `call` (yield it, get the response) until it is answered or may not be retried."""
    for attempt in itertools.count():
        response: httpx.Response = yield call
        if response.is_success:
            return call.read(response.content)
        delay = retry.delay_s(attempt, response) if response.status_code in call.retry_on else None
        if delay is None:
            raise ApiError.of(response)
        yield delay
    raise AssertionError("unreachable")  # pragma: no cover


def exchanges(flow: Flow[T], retry: Retry) -> Generator[Call[Any] | float, Any, T]:
    """`flow`, with each of its calls made through `attempts`."""
    outcome: Any = None
    while True:
        try:
            effect = flow.send(outcome)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(effect, Call):
            outcome = yield from attempts(effect, retry)
        else:
            outcome = yield effect


class Steps(Generic[T]):
    """A flow run one effect at a time by a client: while `pending`, do `effect` (send the
    request of a Call, or sleep) and `feed` back what it gave; then read `result`."""

    def __init__(self, flow: Flow[T], retry: Retry) -> None:
        self._flow = flow
        self._steps = exchanges(flow, retry)
        self.pending = True
        self.effect: Call[Any] | float = 0.0
        self.result: T
        self.feed(None)

    def feed(self, outcome: Any) -> None:
        try:
            self.effect = self._steps.send(outcome)
        except StopIteration as done:
            self.pending, self.result = False, done.value

    def __enter__(self) -> Steps[T]:
        return self

    def __exit__(self, *_: object) -> None:
        # a failed send leaves the flow suspended: close it, so its `with` blocks (open
        # upload files) end now rather than when it is collected
        self._steps.close()
        self._flow.close()

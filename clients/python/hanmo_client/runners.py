"""How a client runs a flow (see `hanmo_client.flow`): `SyncRunner` with httpx.Client and
time.sleep, `AsyncRunner` with httpx.AsyncClient and asyncio.sleep. `endpoint` turns a
flow-building function into a method of both, with the function's own signature."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from hanmo_client.flow import Call, Flow, Steps
from hanmo_client.retry import Retry

P = ParamSpec("P")
T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class Runner(Generic[H]):
    def __init__(self, http: H, retry: Retry) -> None:
        self.http: H = http
        self.retry = retry


class SyncRunner(Runner[httpx.Client]):
    """Runs flows with an httpx.Client, sleeping with time.sleep."""

    def run(self, flow: Flow[T]) -> T:
        with Steps(flow, self.retry) as steps:
            while steps.pending:
                steps.feed(self._do(steps.effect))
            return steps.result

    def _do(self, effect: Call[Any] | float) -> httpx.Response | None:
        if isinstance(effect, Call):
            return self.http.send(effect.request(self.http))
        time.sleep(effect)
        return None


class AsyncRunner(Runner[httpx.AsyncClient]):
    """Runs flows with an httpx.AsyncClient, sleeping with asyncio.sleep."""

    async def run(self, flow: Flow[T]) -> T:
        with Steps(flow, self.retry) as steps:
            while steps.pending:
                steps.feed(await self._do(steps.effect))
            return steps.result

    async def _do(self, effect: Call[Any] | float) -> httpx.Response | None:
        if isinstance(effect, Call):
            return await self.http.send(effect.request(self.http))
        await asyncio.sleep(effect)
        return None


class endpoint(Generic[P, T]):
    """A function that builds a flow, as a method of the clients. It is written in a class
    body without `self` (the flow needs no client); read through a sync client it runs the
    flow and returns the answer, through an async one it returns an awaitable of it, with
    the function's signature and docstring either way. `build` is the function itself."""

    def __init__(self, build: Callable[P, Flow[T]]) -> None:
        self.build = build

    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: SyncRunner, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, client: AsyncRunner, owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: SyncRunner | AsyncRunner | None, owner: type) -> Any:
        if client is None:
            return self
        run, build = client.run, self.build

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(build(*args, **kwargs))

        return method

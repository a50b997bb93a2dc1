"""`Hanmo` (sync, httpx.Client) and `AsyncHanmo` (asyncio, httpx.AsyncClient).

Both have the same methods, each defined once as a flow in `hanmo_client.calls` (and
`hanmo_client.admin_calls` for `.admin`); a client only sends requests and sleeps, its own
way (`hanmo_client.runners`). Refusals that did not run (429, 503) are retried as `Retry`
says; any other non-2xx answer raises `ApiError` with the server's problem document."""

from __future__ import annotations

from typing import Any, Generic, Self, TypedDict, TypeVar, Unpack

import httpx

from hanmo_client import __version__
from hanmo_client.admin_calls import AdminCalls
from hanmo_client.calls import Calls
from hanmo_client.retry import Retry
from hanmo_client.runners import AsyncRunner, SyncRunner

Transport = TypeVar("Transport", httpx.BaseTransport, httpx.AsyncBaseTransport)


class Options(TypedDict, Generic[Transport], total=False):
    """The keyword options of both clients."""

    timeout_s: float  # per request (default 60)
    max_retries: int  # tries after a 429/503 refusal (default 3; 0: never retry)
    backoff_s: float  # the first wait when the server names none, doubled per try (0.5)
    max_backoff_s: float  # the longest wait; a longer Retry-After is not waited out (30)
    headers: dict[str, str]  # sent with every request
    transport: Transport  # an httpx transport (tests, proxies, an ASGI app)


def connection(base_url: str, api_key: str | None, options: Options[Transport]) -> dict[str, Any]:
    """The httpx client's settings for these options."""
    headers = {"User-Agent": f"hanmo-client/{__version__}", **options.get("headers", {})}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    timeout = options.get("timeout_s", 60.0)
    return {"base_url": base_url, "headers": headers, "timeout": timeout, **_transport(options)}


def _transport(options: Options[Transport]) -> dict[str, Transport]:
    return {"transport": options["transport"]} if "transport" in options else {}


def retry_of(options: Options[Transport]) -> Retry:
    default = Retry()
    return Retry(
        max_retries=options.get("max_retries", default.max_retries),
        backoff_s=options.get("backoff_s", default.backoff_s),
        max_backoff_s=options.get("max_backoff_s", default.max_backoff_s),
    )


SyncOptions = Options[httpx.BaseTransport]
AsyncOptions = Options[httpx.AsyncBaseTransport]


class Admin(AdminCalls, SyncRunner):
    """`Hanmo.admin`: the admin API on the client's connection."""


class AsyncAdmin(AdminCalls, AsyncRunner):
    """`AsyncHanmo.admin`: the admin API on the client's connection."""


class Hanmo(Calls, SyncRunner):
    """The hanmo API over HTTP, sync (httpx.Client); a context manager, or call `close()`.
    Options: see `Options` (timeout_s, max_retries, backoff_s, max_backoff_s, headers,
    transport)."""

    def __init__(
        self, base_url: str, api_key: str | None = None, **options: Unpack[SyncOptions]
    ) -> None:
        super().__init__(httpx.Client(**connection(base_url, api_key, options)), retry_of(options))
        self.admin = Admin(self.http, self.retry)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()


class AsyncHanmo(Calls, AsyncRunner):
    """The hanmo API over HTTP, async (httpx.AsyncClient): every method returns an awaitable;
    `async with`, or `await aclose()`. Options as `Hanmo`'s."""

    def __init__(
        self, base_url: str, api_key: str | None = None, **options: Unpack[AsyncOptions]
    ) -> None:
        http = httpx.AsyncClient(**connection(base_url, api_key, options))
        super().__init__(http, retry_of(options))
        self.admin = AsyncAdmin(http, self.retry)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

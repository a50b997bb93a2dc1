"""Each request's id (`X-Request-Id`) and its access log line.

The id is the client's `X-Request-Id` when it is 1-128 characters of [A-Za-z0-9._:/+=@~-],
else a new one (32 hex digits); it is sent back in the response's headers, put in every
problem document (app/api/problems.py) and on every log line written while the request is
handled (app/logs.py), travels with the request's jobs to the worker's log lines, and is an
attribute of the request's server span when tracing is on.

The access log (`hanmo.access`, HANMO_ACCESS_LOG, on by default) is one line a request,
written when its last byte is sent: `http.request method=POST route=/v1/models/{name}/sample
status=200 duration_ms=1.234 bytes=512 request_id=...`; the route is the template, as in the
metrics ('unmatched' for none)."""

from __future__ import annotations

import logging
import os
import re
import time

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import tracing
from app.logs import REQUEST_ID

log = logging.getLogger("hanmo.access")
HEADER = b"x-request-id"
VALID_ID = re.compile(rb"[A-Za-z0-9._:/+=@~-]{1,128}")


def request_id(scope: Scope) -> str:
    """The client's X-Request-Id when valid, else a new id."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == HEADER:
            if VALID_ID.fullmatch(value):
                return value.decode()
            break
    return os.urandom(16).hex()


class RequestContext:
    """Pure ASGI middleware, outermost of hanmo's: the request id in force while the request
    is handled, in the response's headers, and the access line once the response is sent.
    An unhandled error's 500 is sent by Starlette's outermost middleware, outside this one:
    the id is left in force for its handler (problems._unexpected), which adds the header."""

    def __init__(self, app: ASGIApp, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        token = REQUEST_ID.set(rid)
        if tracing.tracer() is not None:
            trace.get_current_span().set_attribute("hanmo.request_id", rid)
        header = (HEADER, rid.encode())
        sent = [500, 0]  # status, body bytes

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif message["type"] == "http.response.body":
                sent[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:  # on an error the id stays in force, for the 500's handler
            if self.access_log:
                self._log(scope, sent, time.perf_counter() - started)
        REQUEST_ID.reset(token)

    @staticmethod
    def _log(scope: Scope, sent: list[int], duration_s: float) -> None:
        log.info(
            "http.request method=%s route=%s status=%d duration_ms=%.3f bytes=%d",
            scope["method"],
            getattr(scope.get("route"), "path", "unmatched"),
            sent[0],
            duration_s * 1000,
            sent[1],
        )
